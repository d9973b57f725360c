"""A Spaces bucket as the model source: the download Job's wiring (the key pair only as Secret
references), the configuration and its checks, and Stack 1's optional bucket with a read-only
key, valid for the real provider (2.99.1, offline mirror) under ``terraform validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import validate_objects
from support import QWEN, STORE, k8s_app

from vllm_doks import ValidationError, contracts
from vllm_doks.cli import main
from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.k8s import NfsModelStore
from vllm_doks.k8s.serving_chart import VllmServingChart
from vllm_doks.preflight import cloud_problems, kubernetes_problems
from vllm_doks.rehearsal.runner import Toolchain
from vllm_doks.weights import SpacesSource

SOURCE = SpacesSource(bucket="my-models", region="ams3", prefix=f"{QWEN}/")


def download_pod(source: SpacesSource | None) -> dict[str, Any]:
    chart = cdk8s.Chart(k8s_app(), "t")
    NfsModelStore(chart, "Models", STORE).add_model(QWEN, source=source)
    objs = list(cdk8s.Testing.synth(chart))
    assert validate_objects(objs) == []
    (job,) = [o for o in objs if o["kind"] == "Job"]
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def test_a_spaces_source_gives_the_job_its_bucket_and_the_key_pair_as_secret_files() -> None:
    pod = download_pod(SOURCE)
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SPACES_BUCKET_URL"]["value"] == "https://my-models.ams3.digitaloceanspaces.com"
    assert env["SPACES_REGION"]["value"] == "ams3"
    assert env["SPACES_PREFIX"]["value"] == f"{QWEN}/"
    # Credentials are references only: no value, and not even an env var (files, like the
    # Hugging Face token); the Secret may be created after apply (optional, see the hint).
    assert all("valueFrom" not in e for e in container["env"])
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"] == {
        "secretName": "spaces-model-source",
        "optional": True,
        "defaultMode": 0o440,
        "items": [
            {"key": contracts.SPACES_ACCESS_KEY_ID_KEY, "path": "access_key_id"},
            {"key": contracts.SPACES_SECRET_ACCESS_KEY_KEY, "path": "secret_access_key"},
        ],
    }
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    assert env["SPACES_CREDENTIALS_DIR"]["value"] == mount["mountPath"]
    assert env["SPACES_SECRET_HINT"]["value"] == SOURCE.secret_command("vllm")
    # No Hugging Face token is mounted for a bucket download.
    assert "HF_TOKEN_PATH" not in env


def test_without_a_source_the_job_asks_the_hub_as_before() -> None:
    pod = download_pod(None)
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert not any(name.startswith("SPACES_") for name in env)
    assert "HF_TOKEN_PATH" in env


def test_a_bad_source_names_every_field() -> None:
    chart = cdk8s.Chart(k8s_app(), "t")
    store = NfsModelStore(chart, "Models", STORE)
    bad = SpacesSource(bucket="My_Models", region="NYC", prefix="/x", credentials_secret="a_b")
    with pytest.raises(ValidationError) as err:
        store.add_model(QWEN, source=bad)
    fields = [p.field for p in err.value.problems]
    assert fields == [
        "source.bucket",
        "source.region",
        "source.prefix",
        "source.credentials_secret",
    ]


def test_the_config_downloads_every_model_from_its_place_in_the_bucket(tmp_path: Path) -> None:
    path = tmp_path / "vllm.yaml"
    path.write_text(
        "model_source_bucket: my-models\n"
        "models:\n"
        f"  - id: {QWEN}\n"
        "  - id: Qwen/Qwen2.5-7B-Instruct\n"
        "    source_prefix: mirror/qwen-7b/\n"
    )
    cfg = load_config(path)
    infra = InfraOutputs.examples_for(cfg)
    assert not kubernetes_problems(cfg, infra)
    chart = VllmServingChart(k8s_app(), "vllm", cfg, infra)
    prefixes = {m.model_id: m.source.prefix for m in chart.store.models if m.source}
    assert prefixes == {QWEN: f"{QWEN}/", "Qwen/Qwen2.5-7B-Instruct": "mirror/qwen-7b/"}
    assert {m.source.region for m in chart.store.models if m.source} == {"nyc3"}


def test_the_default_config_has_no_source() -> None:
    cfg = load_config()
    chart = VllmServingChart(k8s_app(), "vllm", cfg, InfraOutputs.examples_for(cfg))
    assert [m.source for m in chart.store.models] == [None]


def test_bad_source_inputs_name_the_config_keys(tmp_path: Path) -> None:
    cfg = load_config(
        overrides={
            "model_source_bucket": "My_Models",
            "model_source_region": "NYC",
            "model_source_secret": "a_b",
        }
    )
    fields = [p.field for p in kubernetes_problems(cfg, InfraOutputs.examples_for(cfg)).items]
    assert fields == ["model_source_bucket", "model_source_region", "model_source_secret"]
    path = tmp_path / "vllm.yaml"
    path.write_text(
        "model_source_bucket: my-models\nmodels:\n  - id: a/b\n    source_prefix: /abs\n"
    )
    cfg = load_config(path)
    fields = [p.field for p in kubernetes_problems(cfg, InfraOutputs.examples_for(cfg)).items]
    assert "models[0].source_prefix" in fields


# --- Stack 1 ------------------------------------------------------------------------------------


def synth_cloud(tmp_path: Path, stack: str = "vllm-infra", **config: Any) -> dict[str, Any]:
    tmp_path.mkdir(exist_ok=True)
    config_file = tmp_path / "vllm.yaml"
    config_file.write_text(json.dumps(config))
    out = tmp_path / "cdktf.out"
    args = ["synth", "--layer", "cloud", "--config", str(config_file), "--cloud-outdir", str(out)]
    assert main(args) == 0
    doc: dict[str, Any] = json.loads((out / "stacks" / stack / "cdk.tf.json").read_text())
    return doc


def test_no_bucket_unless_asked(tmp_path: Path) -> None:
    doc = synth_cloud(tmp_path, model_source_bucket="my-models")
    assert "digitalocean_spaces_bucket" not in doc["resource"]
    assert not [o for o in doc["output"] if o.startswith("model_bucket")]


def test_stack_1_creates_a_private_bucket_and_a_key_that_only_reads_it(tmp_path: Path) -> None:
    doc = synth_cloud(
        tmp_path,
        create_model_source_bucket=True,
        model_source_bucket="my-models",
        model_source_region="ams3",
    )
    bucket = doc["resource"]["digitalocean_spaces_bucket"]["models"]
    assert (bucket["name"], bucket["region"], bucket["acl"]) == ("my-models", "ams3", "private")
    assert "force_destroy" not in bucket  # the weights outlive a destroy
    key = doc["resource"]["digitalocean_spaces_key"]["models_read"]
    assert key["grant"] == [
        {"bucket": "${digitalocean_spaces_bucket.models.name}", "permission": "read"}
    ]
    outputs = doc["output"]
    assert outputs["model_bucket_endpoint"]["value"] == (
        "https://${digitalocean_spaces_bucket.models.bucket_domain_name}"
    )
    assert outputs["model_bucket_name"]["value"] == "${digitalocean_spaces_bucket.models.name}"
    for name in ("model_bucket_access_key_id", "model_bucket_secret_key"):
        assert outputs[name]["sensitive"] is True
    for name in ("model_bucket_name", "model_bucket_endpoint", "model_bucket_region"):
        assert outputs[name]["sensitive"] is False


def test_stack_2_via_terraform_fills_the_secret_from_stack_1s_sensitive_outputs(
    tmp_path: Path,
) -> None:
    doc = synth_cloud(
        tmp_path,
        "vllm-kubernetes",
        create_model_source_bucket=True,
        model_source_bucket="my-models",
        kubernetes_via_terraform=True,
    )
    secret = doc["resource"]["kubernetes_secret_v1"]["model_bucket_secret"]
    assert secret["metadata"] == {"name": "spaces-model-source", "namespace": "vllm"}
    outputs = "data.terraform_remote_state.infra.outputs"
    assert secret["data"] == {
        "AWS_ACCESS_KEY_ID": f"${{{outputs}.model_bucket_access_key_id}}",
        "AWS_SECRET_ACCESS_KEY": f"${{{outputs}.model_bucket_secret_key}}",
    }
    (job,) = [
        r for a, r in doc["resource"]["kubernetes_manifest"].items() if a.startswith("job-model")
    ]
    assert "kubernetes_secret_v1.model_bucket_secret" in job["depends_on"]
    # Without Stack 1's bucket (a bucket made elsewhere) the user creates the Secret.
    plain = synth_cloud(
        tmp_path / "b", "vllm-kubernetes", model_source_bucket="my-models",
        kubernetes_via_terraform=True,
    )  # fmt: skip
    assert "model_bucket_secret" not in plain["resource"]["kubernetes_secret_v1"]


def test_creating_a_bucket_needs_its_name() -> None:
    cfg = load_config(overrides={"create_model_source_bucket": True})
    problems = cloud_problems(cfg)
    assert [p.field for p in problems.items] == ["model_source_bucket"]
    assert "create_model_source_bucket" in problems.items[0].expected


@pytest.mark.real
def test_the_bucket_and_key_validate_with_the_real_provider(
    toolchain: Toolchain, tmp_path: Path
) -> None:
    from realtier import synth_and_validate

    config = {"create_model_source_bucket": True, "model_source_bucket": "my-vllm-models"}
    verdict = synth_and_validate(toolchain, tmp_path, config, "vllm-infra")
    assert verdict["valid"] is True, verdict["diagnostics"]
