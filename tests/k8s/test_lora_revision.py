"""A LoRA adapter pinned to a commit, like a model: the Python prop and the config key are
checked, the adapter gets the per-revision directory, and the adapter Job's own command,
run for real (sh, python3 with huggingface_hub) against a fake hub on 127.0.0.1, downloads
that commit, verifies it and refuses a hub that answers with another one."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cdk8s
import pytest
from support import QWEN, STORE, FakeHub, fake_hub, find, k8s_app, new_chart, synth

from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.k8s import (
    LoraAdapter,
    LoraAdapterProps,
    LoraOptions,
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.k8s.serving_chart import VllmServingChart
from vllm_doks.rollout_config import AdapterConfig, parse_adapters
from vllm_doks.validation import Problems, ValidationError

SQL = "acme/qwen2.5-0.5b-sql-lora"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "f" * 40
ADAPTER_FILES = {
    "adapter_config.json": b'{"r": 16, "base_model_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct"}\n',
    "adapter_model.safetensors": bytes(range(256)) * 512,
}
#: The download command's arguments after ``/bin/sh -c <script> download-model``.
MODEL_ID_ARG, DIR_ARG, REVISION_ARG = 4, 5, 10


def adapter_chart(
    mount_path: str = "/models", revision: str | None = COMMIT
) -> tuple[cdk8s.Chart, LoraAdapter]:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", dataclasses.replace(STORE, mount_path=mount_path))
    model = store.add_model(QWEN, node_pool_name="gpu")
    sql = LoraAdapter(
        chart,
        "Sql",
        LoraAdapterProps(base_model=model, adapter_id=SQL, name="sql", rank=16, revision=revision),
    )
    VllmWorkerPool(
        chart,
        "Workers",
        VllmWorkerPoolProps(
            model=model, gpu_node_pool_name="gpu", lora=LoraOptions(adapters=(sql,))
        ),
    )
    return chart, sql


def test_a_pinned_adapter_gets_its_own_directory_and_the_job_pins_the_commit() -> None:
    chart, sql = adapter_chart()
    objs = synth(chart)
    assert sql.path == f"/models/lora/acme--qwen2.5-0.5b-sql-lora-{COMMIT[:12]}"
    assert sql.download.revision == COMMIT
    command = find(objs, "Job", sql.base_name)["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    assert command[MODEL_ID_ARG : DIR_ARG + 1] == [SQL, sql.path]
    assert command[REVISION_ARG] == COMMIT
    # vLLM loads the pinned directory, and the pods wait for its marker.
    pod = find(objs, "Deployment", "vllm")["spec"]["template"]["spec"]
    (vllm,) = [c for c in pod["containers"] if c["name"] == "vllm"]
    assert f"sql={sql.path}" in vllm["args"]
    waits = {c["name"]: c["command"] for c in pod["initContainers"]}
    assert sql.marker_path in waits["wait-for-lora-0"]
    # Unpinned: the repository's directory and an empty revision (the hub's default branch).
    _, unpinned = adapter_chart(revision=None)
    assert unpinned.path == "/models/lora/acme--qwen2.5-0.5b-sql-lora"
    assert unpinned.download.revision is None


@pytest.mark.parametrize("revision", ["main", "v1.0", COMMIT.upper(), COMMIT[:12], ""])
def test_a_revision_that_pins_nothing_is_refused(revision: str) -> None:
    with pytest.raises(ValidationError) as err:
        adapter_chart(revision=revision)
    (problem,) = err.value.problems
    assert (problem.field, problem.value) == ("revision", revision)
    assert "40-hex-digit commit" in problem.expected


def test_the_config_key_revision_is_parsed_and_checked() -> None:
    problems = Problems()
    adapters = parse_adapters(
        [{"id": SQL, "revision": COMMIT, "rank": 16}, {"id": "acme/b", "rank": 8}],
        "models[0].adapters",
        problems,
        "vllm.yaml",
    )
    assert not problems
    assert adapters == (
        AdapterConfig(id=SQL, revision=COMMIT, rank=16),
        AdapterConfig(id="acme/b", rank=8),
    )
    bad = Problems()
    assert (
        parse_adapters(
            [
                {"id": SQL, "revision": "main", "rank": 16},
                {"id": "acme/b", "revision": 7, "rank": 8},
            ],
            "models[0].adapters",
            bad,
            "vllm.yaml",
        )
        == ()
    )
    assert [(p.field, p.value) for p in bad.items] == [
        ("models[0].adapters[0].revision", "main"),
        ("models[0].adapters[1].revision", 7),
    ]


def test_the_config_pins_the_adapter_download(tmp_path: Path) -> None:
    config_file = tmp_path / "vllm.yaml"
    config_file.write_text(
        "models:\n"
        f"  - id: {QWEN}\n"
        "    served_name: qwen\n"
        f"    adapters: [{{id: {SQL}, name: sql, rank: 16, revision: {COMMIT}}}]\n"
    )
    config = load_config(config_file)
    chart = VllmServingChart(k8s_app(), "vllm", config, InfraOutputs.examples_for(config))
    (adapter,) = chart.pools[0].props.lora.adapters  # type: ignore[union-attr]
    assert adapter.download.revision == COMMIT
    job = find(synth(chart), "Job", adapter.base_name)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][REVISION_ARG] == COMMIT


# --- the adapter Job's command against a fake hub ---------------------------------------------


needs_hub = pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")


@pytest.fixture
def adapter_hub() -> Iterator[FakeHub]:
    pytest.importorskip("huggingface_hub", reason="needs huggingface_hub (the test extra)")
    with fake_hub(
        FakeHub(
            repo=SQL,
            files=dict(ADAPTER_FILES),
            lfs=frozenset({"adapter_model.safetensors"}),
            commit=COMMIT,
        )
    ) as hub:
        yield hub


def run_job(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@needs_hub
def test_the_adapter_job_downloads_and_verifies_the_pinned_commit(
    tmp_path: Path, adapter_hub: FakeHub
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    chart, sql = adapter_chart(mount_path=str(share))
    command = find(synth(chart), "Job", sql.base_name)["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    env = adapter_hub.environment(tmp_path)
    result = run_job(command, env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    adapter_dir = share / "lora" / f"acme--qwen2.5-0.5b-sql-lora-{COMMIT[:12]}"
    assert Path(sql.path) == adapter_dir
    for name, data in ADAPTER_FILES.items():
        assert (adapter_dir / name).read_bytes() == data
    assert Path(sql.marker_path).is_file()
    manifest = json.loads((adapter_dir / ".vllm-doks-manifest.json").read_text())
    assert manifest["revision"] == COMMIT
    assert set(manifest["files"]) == set(ADAPTER_FILES)
    assert f"verified 2 files of {SQL} at {COMMIT}" in out
    # Only the pinned commit was asked for, never a branch.
    assert set(adapter_hub.revisions_asked) == {COMMIT}


@needs_hub
def test_the_adapter_job_refuses_a_hub_that_resolves_the_pin_elsewhere(
    tmp_path: Path, adapter_hub: FakeHub
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    adapter_hub.commit = OTHER
    adapter_hub.answer_any_revision = True
    chart, sql = adapter_chart(mount_path=str(share))
    command = find(synth(chart), "Job", sql.base_name)["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    result = run_job(command, adapter_hub.environment(tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert f"resolved revision {COMMIT} of {SQL} to {OTHER}; refusing" in out
    assert adapter_hub.downloads == []
    assert not Path(sql.marker_path).exists()
