"""LoRA adapters: downloaded like models (the same Job script, run here for real), served by a
worker pool with vLLM's LoRA flags, validated, and counted in the capacity plan."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import REPO, load_yaml_dir, validate_objects
from support import LLAMA, QWEN, Obj, env_with_fake_python, k8s_app, vllm_parse_problems

from vllm_doks import contracts
from vllm_doks.capacity import ClusterPlan, PoolPlan, plan_capacity
from vllm_doks.k8s import (
    LoraAdapter,
    LoraAdapterProps,
    LoraOptions,
    ModelDownload,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.k8s.lora import rank_holding
from vllm_doks.k8s.scripts import DOWNLOAD_MODEL, WAIT_FOR_MODEL, script_text
from vllm_doks.model_arch import lookup_architecture
from vllm_doks.validation import ValidationError

SQL = "acme/qwen2.5-0.5b-sql-lora"
CHAT = "acme/qwen2.5-0.5b-chat-lora"
POOL = "gpu"


def store_props(mount_path: str = "/models") -> NfsModelStoreProps:
    return NfsModelStoreProps(
        nfs_server="10.200.0.5", nfs_path="/1234567/abcd", capacity_gi=100, mount_path=mount_path
    )


def two_adapter_chart(
    mount_path: str = "/models", **lora: Any
) -> tuple[cdk8s.Chart, VllmWorkerPool, tuple[LoraAdapter, LoraAdapter]]:
    chart = cdk8s.Chart(k8s_app(), "test")
    model = NfsModelStore(chart, "Models", store_props(mount_path)).add_model(
        QWEN, node_pool_name=POOL
    )
    sql = LoraAdapter(
        chart,
        "Sql",
        LoraAdapterProps(base_model=model, adapter_id=SQL, name="qwen-sql", rank=16),
    )
    chat = LoraAdapter(
        chart,
        "Chat",
        LoraAdapterProps(base_model=model, adapter_id=CHAT, rank=8, base_model_id=QWEN),
    )
    pool = VllmWorkerPool(
        chart,
        "Workers",
        VllmWorkerPoolProps(
            model=model, gpu_node_pool_name=POOL, lora=LoraOptions(adapters=(sql, chat), **lora)
        ),
    )
    return chart, pool, (sql, chat)


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    (obj,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def pod_spec(objs: list[Obj]) -> Obj:
    return find(objs, "Deployment", "vllm")["spec"]["template"]["spec"]  # type: ignore[no-any-return]


# --- what the pool runs ----------------------------------------------------------------------


def test_two_adapters_are_registered_with_vllm_under_their_names() -> None:
    chart, pool, (sql, chat) = two_adapter_chart()
    objs = list(cdk8s.Testing.synth(chart))
    (vllm,) = [c for c in pod_spec(objs)["containers"] if c["name"] == "vllm"]
    args: list[str] = vllm["args"]
    assert args == pool.vllm_args
    lora = args[args.index(contracts.VLLM_FLAG_ENABLE_LORA) :]
    assert lora == [
        "--enable-lora",
        "--max-loras", "2",  # one slot per adapter: both usable in one batch
        "--max-lora-rank", "16",  # the smallest vLLM value that holds rank 16 (and 8)
        "--lora-modules",
        "qwen-sql=/models/lora/acme--qwen2.5-0.5b-sql-lora",
        "qwen2.5-0.5b-chat-lora=/models/lora/acme--qwen2.5-0.5b-chat-lora",
    ]  # fmt: skip
    assert vllm_parse_problems(args) == []
    # Directories by repository, names as clients send them.
    assert sql.path == "/models/lora/acme--qwen2.5-0.5b-sql-lora"
    assert chat.name == "qwen2.5-0.5b-chat-lora"
    # Fixed adapters unless asked: no runtime load/unload endpoints.
    assert contracts.VLLM_ALLOW_RUNTIME_LORA_UPDATING_ENV not in {e["name"] for e in vllm["env"]}
    assert validate_objects(objs) == []


def test_extra_args_still_come_last_and_win() -> None:
    chart = cdk8s.Chart(k8s_app(), "test")
    model = NfsModelStore(chart, "Models", store_props()).add_model(QWEN)
    sql = LoraAdapter(chart, "Sql", LoraAdapterProps(base_model=model, adapter_id=SQL, rank=16))
    pool = VllmWorkerPool(
        chart,
        "Workers",
        VllmWorkerPoolProps(
            model=model,
            gpu_node_pool_name=POOL,
            lora=LoraOptions(adapters=(sql,)),
            extra_args=("--max-cpu-loras", "4"),
        ),
    )
    assert pool.vllm_args[-2:] == ["--max-cpu-loras", "4"]
    assert pool.vllm_args.index("--lora-modules") < pool.vllm_args.index("--max-cpu-loras")


def test_each_adapter_is_downloaded_by_the_model_download_job_into_its_own_directory() -> None:
    chart, pool, (sql, chat) = two_adapter_chart()
    objs = list(cdk8s.Testing.synth(chart))
    model_job = find(objs, "Job", pool.model.job_name)["spec"]["template"]["spec"]["containers"]
    model_job = model_job[0]
    for adapter in (sql, chat):
        assert isinstance(adapter.download, ModelDownload)
        job = find(objs, "Job", adapter.job_name)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        command = container["command"]
        # The same script text as the model's Job (one script, not a copy), other arguments.
        assert command[2] == script_text(DOWNLOAD_MODEL) == model_job["command"][2]
        assert command[4:6] == [adapter.adapter_id, adapter.path]
        # Same image, node pool and share as the model's download.
        assert container["image"] == model_job["image"]
        assert job["spec"]["template"]["spec"]["nodeSelector"] == {
            contracts.DOKS_NODE_POOL_LABEL: POOL
        }
        assert adapter.job_name.startswith(f"{adapter.base_name}-")
        assert find(objs, "NetworkPolicy", adapter.base_name)
    assert (sql.base_name, chat.base_name) == (
        "lora-download-acme-qwen2-5-0-5b-sql-lora",
        "lora-download-acme-qwen2-5-0-5b-chat-lora",
    )
    # Pods wait for the model and for every adapter before vLLM starts.
    waits = {c["name"]: c["command"] for c in pod_spec(objs)["initContainers"]}
    assert list(waits) == ["wait-for-model", "wait-for-lora-0", "wait-for-lora-1"]
    assert waits["wait-for-lora-0"][2] == script_text(WAIT_FOR_MODEL)
    assert waits["wait-for-lora-0"][4] == sql.marker_path
    assert waits["wait-for-lora-1"][4] == chat.marker_path
    assert sql.marker_path.startswith("/models/lora/acme--qwen2.5-0.5b-sql-lora/")


def test_runtime_updates_set_vllms_switch() -> None:
    chart, _, _ = two_adapter_chart(runtime_updates=True)
    (vllm,) = [
        c for c in pod_spec(list(cdk8s.Testing.synth(chart)))["containers"] if c["name"] == "vllm"
    ]
    assert {"name": contracts.VLLM_ALLOW_RUNTIME_LORA_UPDATING_ENV, "value": "true"} in vllm["env"]


def test_runtime_updates_alone_need_no_adapter() -> None:
    chart = cdk8s.Chart(k8s_app(), "test")
    model = NfsModelStore(chart, "Models", store_props()).add_model(QWEN)
    pool = VllmWorkerPool(
        chart,
        "Workers",
        VllmWorkerPoolProps(
            model=model, gpu_node_pool_name=POOL, lora=LoraOptions(runtime_updates=True)
        ),
    )
    assert pool.vllm_args[-5:] == ["--enable-lora", "--max-loras", "1", "--max-lora-rank", "16"]


@pytest.mark.parametrize(
    ("ranks", "expected"), [((8,), 8), ((8, 16), 16), ((40,), 64), ((300,), 320), ((1,), 1)]
)
def test_default_max_lora_rank_is_the_smallest_vllm_value_that_holds_every_adapter(
    ranks: tuple[int, ...], expected: int
) -> None:
    chart = cdk8s.Chart(k8s_app(), "test")
    model = NfsModelStore(chart, "Models", store_props()).add_model(QWEN)
    adapters = tuple(
        LoraAdapter(
            chart, f"A{i}", LoraAdapterProps(base_model=model, adapter_id=f"acme/a{i}", rank=r)
        )
        for i, r in enumerate(ranks)
    )
    options = LoraOptions(adapters=adapters)
    assert options.resolved_max_lora_rank == expected
    assert expected in contracts.VLLM_MAX_LORA_RANKS
    assert rank_holding(expected) == expected


# --- validation ------------------------------------------------------------------------------


def problems_of(build: Any) -> list[tuple[str, object]]:
    with pytest.raises(ValidationError) as err:
        build()
    return [(p.field, p.value) for p in err.value.problems]


def test_an_adapter_above_max_lora_rank_is_refused_with_the_rank_that_would_hold_it() -> None:
    with pytest.raises(ValidationError) as err:
        two_adapter_chart(max_lora_rank=8)
    (problem,) = err.value.problems
    assert problem.field == "lora.adapters[0].rank" and problem.value == 16
    assert "max_lora_rank 8" in problem.expected and "to 16" in problem.expected


def test_max_lora_rank_must_be_one_of_vllms_values() -> None:
    assert problems_of(lambda: two_adapter_chart(max_lora_rank=24)) == [("lora.max_lora_rank", 24)]
    assert problems_of(lambda: two_adapter_chart(max_loras=0)) == [("lora.max_loras", 0)]


def test_an_adapter_of_another_model_is_refused() -> None:
    chart = cdk8s.Chart(k8s_app(), "test")
    store = NfsModelStore(chart, "Models", store_props())
    qwen, llama = store.add_model(QWEN), store.add_model(LLAMA)
    sql = LoraAdapter(chart, "Sql", LoraAdapterProps(base_model=qwen, adapter_id=SQL, rank=16))
    problems = problems_of(
        lambda: VllmWorkerPool(
            chart,
            "Llama",
            VllmWorkerPoolProps(
                model=llama, gpu_node_pool_name=POOL, lora=LoraOptions(adapters=(sql,))
            ),
        )
    )
    assert problems == [("lora.adapters[0]", "test/Sql")]


def chart_with_qwen() -> tuple[cdk8s.Chart, Any]:
    """A chart with a store holding Qwen (no pool yet), and Qwen's model handle."""
    chart = cdk8s.Chart(k8s_app(), "test")
    return chart, NfsModelStore(chart, "Models", store_props()).add_model(QWEN)


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        pytest.param(
            {"adapter_id": SQL, "rank": 16, "base_model_id": LLAMA},
            [("base_model_id", LLAMA)],
            id="the-declared-base-model-must-be-the-base-model",
        ),
        pytest.param(
            {"adapter_id": "not a repo", "name": "a=b", "rank": 0, "max_workers": 0},
            [("adapter_id", "not a repo"), ("name", "a=b"), ("rank", 0), ("max_workers", 0)],
            id="bad-inputs-are-reported-together",
        ),
        pytest.param(
            {"adapter_id": SQL, "rank": 8, "job_name": "model-download"},
            [("job_name", "model-download")],
            id="a-download-job-name-is-never-shared",
        ),
    ],
)
def test_bad_adapter_props_are_refused_naming_each_field(
    props: dict[str, Any], expected: list[tuple[str, object]]
) -> None:
    chart, qwen = chart_with_qwen()
    adapter = lambda: LoraAdapter(chart, "Sql", LoraAdapterProps(base_model=qwen, **props))  # noqa: E731
    assert problems_of(adapter) == expected


def test_adapter_names_must_be_distinct_and_not_the_served_model_name() -> None:
    chart, qwen = chart_with_qwen()
    a = LoraAdapter(chart, "A", LoraAdapterProps(base_model=qwen, adapter_id=SQL, rank=8))
    b = LoraAdapter(
        chart,
        "B",
        LoraAdapterProps(base_model=qwen, adapter_id=CHAT, name=a.name, rank=8, job_name="b"),
    )
    c = LoraAdapter(
        chart, "C", LoraAdapterProps(base_model=qwen, adapter_id="acme/c", name="qwen", rank=8)
    )
    problems = problems_of(
        lambda: VllmWorkerPool(
            chart,
            "W",
            VllmWorkerPoolProps(
                model=qwen,
                gpu_node_pool_name=POOL,
                served_model_name="qwen",
                lora=LoraOptions(adapters=(a, b, c)),
            ),
        )
    )
    assert problems == [("lora.adapters[1].name", a.name), ("lora.adapters[2].name", "qwen")]


def test_lora_options_without_adapters_or_runtime_updates_are_refused() -> None:
    chart, qwen = chart_with_qwen()
    problems = problems_of(
        lambda: VllmWorkerPool(
            chart, "W", VllmWorkerPoolProps(model=qwen, gpu_node_pool_name=POOL, lora=LoraOptions())
        )
    )
    assert problems == [("lora.adapters", ())]


# --- the download and the wait, run for real --------------------------------------------------

FAKE_PYTHON = """#!/bin/sh
# Stands in for the image's python3 (huggingface_hub): records the call, writes the adapter.
echo "$MODEL_ID $MODEL_DIR" >>"$FAKE_CALLS"
echo '{"r": 16}' >"$MODEL_DIR/adapter_config.json"
echo weights >"$MODEL_DIR/adapter_model.safetensors"
"""


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_the_adapter_jobs_command_downloads_once_and_releases_the_pods_wait(
    tmp_path: Path,
) -> None:
    """The synthesized Job's own command, run with sh against a temporary share: the adapter
    lands in lora/<name> with the marker, a second run does nothing, and the pod's
    wait-for-lora init container (its own command) then passes at once."""
    share = tmp_path / "share"
    share.mkdir()
    env = env_with_fake_python(tmp_path, FAKE_PYTHON)
    calls = Path(env["FAKE_CALLS"])

    chart, _, (sql, _) = two_adapter_chart(mount_path=str(share))
    objs = list(cdk8s.Testing.synth(chart))
    (job,) = find(objs, "Job", sql.job_name)["spec"]["template"]["spec"]["containers"]
    waits = {c["name"]: c["command"] for c in pod_spec(objs)["initContainers"]}

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=30, check=False
        )

    first = run(job["command"])
    assert first.returncode == 0, first.stdout + first.stderr
    adapter_dir = share / "lora" / "acme--qwen2.5-0.5b-sql-lora"
    assert calls.read_text().split() == [SQL, str(adapter_dir)]
    assert (adapter_dir / "adapter_model.safetensors").exists()
    assert Path(sql.marker_path).is_file()
    assert not list(adapter_dir.glob(".vllm-doks-lock*"))

    again = run(job["command"])
    assert again.returncode == 0
    assert len(calls.read_text().splitlines()) == 1, "a complete adapter is not fetched again"

    wait = run([*waits["wait-for-lora-0"][:5], "1", *waits["wait-for-lora-0"][6:]])
    assert wait.returncode == 0 and "complete" in wait.stdout


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_the_pods_wait_blocks_on_a_missing_adapter(tmp_path: Path) -> None:
    chart, _, (_, chat) = two_adapter_chart(mount_path=str(tmp_path))
    waits = {
        c["name"]: c["command"]
        for c in pod_spec(list(cdk8s.Testing.synth(chart)))["initContainers"]
    }
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(waits["wait-for-lora-1"], capture_output=True, timeout=2, check=False)
    assert not Path(chat.marker_path).exists()


# --- memory ----------------------------------------------------------------------------------


def test_adapter_slots_come_out_of_the_kv_cache() -> None:
    """Qwen2.5-0.5B on an H100 with 2 slots of rank 16: vLLM's LoRA buffers, worked out from
    the shapes ``create_lora_weights`` allocates (vllm 0.18.0 lora/layers), here by hand from
    the model's config.json numbers."""
    arch = lookup_architecture(QWEN)
    assert arch is not None
    h, heads, kv, d, inter, layers, vocab = 896, 14, 2, 64, 4864, 24, 151936
    shape = (arch.hidden_size, arch.attention_heads, arch.kv_heads, arch.head_dim)
    assert shape == (h, heads, kv, d)
    assert (arch.intermediate_size, arch.layers, arch.vocab_size) == (inter, layers, vocab)
    per_layer = (
        (3 * h + heads * d + 2 * kv * d)  # qkv: 3 A slices (rank x hidden), B (q, k, v rows)
        + (heads * d + h)  # o_proj: A (rank x q width), B (hidden x rank)
        + (2 * h + 2 * inter)  # gate_up: 2 slices
        + (inter + h)  # down_proj
    )
    elements = layers * per_layer + 2 * (vocab + h)
    expected_gib = 2 * 16 * elements * 2 / 2**30  # slots x rank x elements x bf16
    assert arch.lora_gib_per_gpu(
        max_loras=2, max_lora_rank=16, tensor_parallel_size=1
    ) == pytest.approx(expected_gib)

    def plan(**lora: Any) -> Any:
        pool = PoolPlan(name="qwen", model_id=QWEN, **lora)
        return plan_capacity(ClusterPlan(pools=[pool], gpu_node_count=1, nfs_size_gb=100))

    base = plan().pools[0].vllm
    with_lora = plan(max_loras=2, max_lora_rank=16).pools[0].vllm
    assert with_lora.lora_gib == pytest.approx(expected_gib)
    assert base.available_kv_gib - with_lora.available_kv_gib == pytest.approx(expected_gib)
    assert with_lora.kv_tokens < base.kv_tokens
    # Four times the slots and the rank: sixteen times the memory.
    big = plan(max_loras=8, max_lora_rank=64).pools[0].vllm
    assert big.lora_gib == pytest.approx(16 * expected_gib)
    # Pools without LoRA report exactly what they did before.
    assert "lora_gib" not in plan().to_dict()["pools"][0]["kv"]
    assert plan(max_loras=2).to_dict()["pools"][0]["kv"]["lora_gib"] > 0


def test_many_large_adapter_slots_can_stop_a_model_from_fitting() -> None:
    def plan(**lora: Any) -> Any:
        pool = PoolPlan(name="llama", model_id=LLAMA, max_model_len=8192, **lora)
        return plan_capacity(ClusterPlan(pools=[pool], gpu_node_count=1, nfs_size_gb=500))

    assert plan().pools[0].fits
    assert plan(max_loras=4, max_lora_rank=64).pools[0].fits
    # 32 slots of rank 512 need ~88 GiB on their own (Llama 3.1 8B): more than an H100 has.
    refused = plan(max_loras=32, max_lora_rank=512)
    assert refused.pools[0].vllm.lora_gib > 80
    assert not refused.pools[0].fits
    assert any("LoRA" in p.expected for p in refused.problems().items)


def test_capacity_refuses_a_rank_vllm_does_not_take() -> None:
    pool = PoolPlan(name="qwen", model_id=QWEN, max_loras=1, max_lora_rank=24)
    report = plan_capacity(ClusterPlan(pools=[pool], gpu_node_count=1, nfs_size_gb=100))
    assert [p.field for p in report.problems().items] == ["pools[qwen].max_lora_rank"]


# --- the README's example ----------------------------------------------------------------------


@pytest.mark.parametrize("options", [[], ["--canary-weight", "10"], ["--finish"]])
def test_the_rollout_example_synthesizes_valid_objects(tmp_path: Path, options: list[str]) -> None:
    repo = REPO
    subprocess.run(
        [sys.executable, str(repo / "examples" / "rollout.py"), str(tmp_path), *options],
        check=True,
        capture_output=True,
    )
    objs = load_yaml_dir(tmp_path)
    assert validate_objects(objs) == []
    (deployment, *_) = [o for o in objs if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert vllm_parse_problems(args) == []
    assert args[args.index("--lora-modules") + 1 :][:2] == [
        "sql=/models/lora/acme--qwen2.5-7b-instruct-sql-lora",
        "support=/models/lora/acme--qwen2.5-7b-instruct-support-lora",
    ]
