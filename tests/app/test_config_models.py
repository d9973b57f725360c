"""Config parity with the constructs: a `models:` list, `routing:`, and the hand-off report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, load_yaml_dir, validate_objects
from support import CONFIG_INFRA, config_from, named, synth_config

from vllm_doks import ValidationError
from vllm_doks.cli import main
from vllm_doks.config import ArchitectureConfig, load_config, parse_infra_outputs
from vllm_doks.preflight import capacity_plan, kubernetes_problems
from vllm_doks.validation import Problems

TWO_MODELS = """
models:
  - id: Qwen/Qwen2.5-0.5B-Instruct
  - id: Qwen/Qwen2.5-7B-Instruct
    served_name: qwen-7b
    replicas: 1
    quantization: fp8
"""


def test_a_one_entry_models_list_is_byte_identical_to_the_single_model_keys(
    tmp_path: Path,
) -> None:
    listed = config_from(tmp_path, "models:\n  - id: Qwen/Qwen2.5-7B-Instruct\n    replicas: 2\n")
    legacy = ArchitectureConfig(model_id="Qwen/Qwen2.5-7B-Instruct", replicas=2)
    synth_config(tmp_path, listed, "listed")
    synth_config(tmp_path, legacy, "legacy")
    assert (tmp_path / "listed" / "vllm.yaml").read_bytes() == (
        tmp_path / "legacy" / "vllm.yaml"
    ).read_bytes()


def test_two_models_round_robin_one_path_per_model(tmp_path: Path) -> None:
    objs = synth_config(tmp_path, config_from(tmp_path, TWO_MODELS))
    assert set(named(objs, "Deployment")) == {"qwen2-5-0-5b-instruct", "qwen-7b"}
    # Names carry a hash of the Job's template; the smoke test's Job is not a download.
    jobs = sorted(j for j in named(objs, "Job") if j.startswith("model-download"))
    assert len(jobs) == 2 and jobs[1].startswith("model-download-qwen2-5-7b-instruct-")
    routes = named(objs, "HTTPRoute")
    (rule,) = routes["qwen-7b-route"]["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/qwen-7b/v1"}}]
    assert rule["backendRefs"] == [{"name": "qwen-7b", "port": 8000}]
    args = named(objs, "Deployment")["qwen-7b"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--served-model-name") + 1] == "qwen-7b"
    assert args[args.index("--quantization") + 1] == "fp8"
    assert validate_objects(objs) == []


def test_prefix_aware_routing_serves_every_model_under_one_v1(tmp_path: Path) -> None:
    objs = synth_config(tmp_path, config_from(tmp_path, TWO_MODELS + "routing: prefix-aware\n"))
    (route,) = named(objs, "HTTPRoute").values()
    rule, models_rule = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    assert rule["backendRefs"] == [{"name": "vllm-router", "port": 8000}]
    # The router answers GET /v1/models without the API key: that path goes to a pool.
    assert models_rule["matches"] == [{"path": {"type": "Exact", "value": "/v1/models"}}]
    assert "vllm-router" in named(objs, "Deployment")
    # The router may reach both pools (its /v1/models asks each pool's pods).
    policies = named(objs, "NetworkPolicy")
    assert {"vllm-router-to-qwen2-5-0-5b-instruct", "vllm-router-to-qwen-7b"} <= set(policies)
    assert validate_objects(objs) == []


def test_inference_pool_routing_one_pool_per_model(tmp_path: Path) -> None:
    text = TWO_MODELS + "routing: inference-pool\ngateway_class: eg\n"
    text += "inference_gateway_namespace: envoy-gateway-system\n"
    objs = synth_config(tmp_path, config_from(tmp_path, text))
    assert len(named(objs, "InferencePool")) == 2
    refs = [
        ref
        for route in named(objs, "HTTPRoute").values()
        for rule in route["spec"]["rules"]
        for ref in rule["backendRefs"]
    ]
    assert {r.get("kind") for r in refs} == {"InferencePool"}
    assert validate_objects(objs) == []


def test_capacity_plan_has_one_pool_per_model(tmp_path: Path) -> None:
    report = capacity_plan(config_from(tmp_path, TWO_MODELS), CONFIG_INFRA, Problems())
    assert report is not None
    assert [p.name for p in report.pools] == ["qwen2-5-0-5b-instruct", "qwen-7b"]
    assert report.gpu_nodes_needed == {"gpu-h100x1-80gb": 2}


def test_bad_models_are_reported_together_by_field_path(tmp_path: Path) -> None:
    text = """
models:
  - id: Qwen/Qwen2.5-0.5B-Instruct
    modle: typo
    replicas: many
  - served_name: x
"""
    with pytest.raises(ValidationError) as err:
        config_from(tmp_path, text)
    fields = {p.field for p in err.value.problems}
    assert fields == {"models[0].modle", "models[0].replicas", "models[1].id"}


def test_model_checks_name_the_entry(tmp_path: Path) -> None:
    text = """
routing: inference-pool
models:
  - id: not-an-org-id
  - id: Qwen/Qwen2.5-7B-Instruct
    name: same
    gpu_size: gpu-l40sx1-48gb
  - id: Qwen/Qwen2.5-1.5B-Instruct
    name: same
    path_prefix: /nope
"""
    problems = kubernetes_problems(config_from(tmp_path, text), CONFIG_INFRA)
    fields = {p.field for p in problems.items}
    assert {
        "models[0].id",
        "models[1].gpu_node_pool",
        "models[2].name",
        "models[2].path_prefix",
        "inference_gateway_namespace",
    } <= fields, problems.items


def test_models_only_from_the_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="config file only"):
        load_config(env={"VLLM_DOKS_MODELS": "Qwen/Qwen2.5-0.5B-Instruct"})


def test_unknown_routing_is_refused(tmp_path: Path) -> None:
    problems = kubernetes_problems(config_from(tmp_path, "routing: random\n"), CONFIG_INFRA)
    assert [p.field for p in problems.items] == ["routing"]


def test_inference_pool_behind_cilium_is_refused_before_synth(tmp_path: Path) -> None:
    text = "routing: inference-pool\ninference_gateway_namespace: envoy-gateway-system\n"
    problems = kubernetes_problems(config_from(tmp_path, text), CONFIG_INFRA)
    assert [p.field for p in problems.items] == ["routing"]
    assert "gateway_class 'cilium'" in problems.items[0].expected


def test_max_model_len_per_model_falls_back_to_the_top_level_key(tmp_path: Path) -> None:
    config = config_from(tmp_path, TWO_MODELS.replace("replicas: 1", "max_model_len: 8192"))
    assert [m.max_model_len for m in config.served_models()] == ["", "8192"]
    deployments = named(synth_config(tmp_path, config), "Deployment")

    def args(name: str) -> list[str]:
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        return list(container["args"])

    assert "--max-model-len" not in args("qwen2-5-0-5b-instruct")
    assert args("qwen-7b")[args("qwen-7b").index("--max-model-len") + 1] == "8192"
    top = config_from(tmp_path, "max_model_len: 4096\n" + TWO_MODELS)
    assert [m.max_model_len for m in top.served_models()] == ["4096", "4096"]
    bad = config_from(tmp_path, TWO_MODELS.replace("replicas: 1", "max_model_len: lots"))
    assert [p.field for p in kubernetes_problems(bad, CONFIG_INFRA).items] == [
        "models[1].max_model_len"
    ]


# --- the hand-off report ----------------------------------------------------------------------


def test_handoff_prints_what_it_took_and_the_conflicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "infra-outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "vllm-infra": {
                    "nfs_host": "10.200.0.7",
                    "nfs_mount_path": "/123456/abc",
                    "nfs_size_gb": 500,
                    "gpu_node_pool_name": "prod-gpu-h100",
                }
            }
        )
    )
    args = ["synth", "--layer", "k8s", "--k8s-outdir", str(tmp_path / "dist")]
    code = main([*args, "--infra-outputs", str(outputs), "--name-prefix", "my-vllm"], env={})
    out, err = capsys.readouterr()
    assert code == 0, err
    table = out.split("Stack 1 outputs used:\n", 1)[1].splitlines()[:5]
    assert table[0].split() == ["input", "value", "from"]
    assert table[1].split() == ["nfs_host", "10.200.0.7", f"{outputs}:", "vllm-infra.nfs_host"]
    assert table[4].split()[:2] == ["gpu_node_pool_name", "prod-gpu-h100"]
    assert "'prod-gpu-h100'" in err and "'my-vllm-gpu-h100'" in err  # the pool name override
    assert "nfs_size_gb: the outputs' 500 GB" in err and "config's 1000" in err
    assert "EXAMPLES" not in err
    pv = named(load_yaml_dir(tmp_path / "dist"), "PersistentVolume")
    (spec,) = [v["spec"] for v in pv.values()]
    assert spec["capacity"]["storage"] == "500Gi" and spec["nfs"]["server"] == "10.200.0.7"


def test_matching_outputs_report_no_conflict() -> None:
    text = json.dumps(
        {
            "nfs_host": {"value": "10.0.0.9"},
            "nfs_mount_path": {"value": "/9/x"},
            "nfs_size_gb": {"value": 1000},
            "gpu_node_pool_name": {"value": "my-vllm-gpu-h100"},
        }
    )
    outputs = parse_infra_outputs(text, source="out.json")
    assert outputs.conflicts(ArchitectureConfig()) == []
    assert "out.json: nfs_host.value" in outputs.handoff_table()


def test_yaml_example_in_readme_is_a_valid_models_config(tmp_path: Path) -> None:
    """The README's `models:` example loads and passes every check."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("```yaml\n# several models\n", 1)[1].split("```", 1)[0]
    config = config_from(tmp_path, block)
    assert len(config.served_models()) >= 2
    assert not kubernetes_problems(config, CONFIG_INFRA)
    yaml.safe_load(block)
