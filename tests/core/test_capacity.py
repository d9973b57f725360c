"""GPU catalogue and synth-time capacity planning (pure Python: no synth needed)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from vllm_doks.capacity import (
    MODEL_PARAMETERS_B,
    CapacityReport,
    ClusterPlan,
    PoolPlan,
    bytes_per_parameter,
    checkpoint_bytes_per_parameter,
    plan_capacity,
    probe_failure_threshold,
    progress_deadline_seconds,
    startup_window_seconds,
    weights_gb,
)
from vllm_doks.gpu_catalog import (
    AMD_CLUSTER_FLAGS,
    CUDA_VLLM_IMAGE,
    GPU_SIZES,
    ROCM_VLLM_IMAGE,
    GpuSize,
    custom_gpu_size,
    lookup_gpu_size,
    tensor_parallel_size,
)
from vllm_doks.validation import ValidationError

REQUIRED_SLUGS = {
    "gpu-h100x1-80gb",
    "gpu-h100x8-640gb",
    "gpu-h200x1-141gb",
    "gpu-l40sx1-48gb",
    "gpu-6000adax1-48gb",
    "gpu-4000adax1-20gb",
    "gpu-mi300x1-192gb",
    "gpu-mi300x8-1536gb",
}

SEED_DEFAULT = ClusterPlan(
    pools=[PoolPlan(name="vllm", model_id="Qwen/Qwen2.5-0.5B-Instruct")],
    gpu_node_count=2,
    nfs_size_gb=1000,
)
SEED_HA = ClusterPlan(
    pools=[
        PoolPlan(
            name="vllm",
            model_id="Qwen/Qwen2.5-72B-Instruct",
            quantization="fp8",
            replicas=3,
            gpu_size="gpu-h100x1-80gb",
        )
    ],
    gpu_node_count=3,
    nfs_size_gb=1000,
)


def _fields(report: CapacityReport) -> list[str]:
    return [p.field for p in report.problems().items]


# --- GPU catalogue ---------------------------------------------------------------------


def test_catalogue_covers_the_issue_sizes() -> None:
    assert set(GPU_SIZES) >= REQUIRED_SLUGS


@pytest.mark.parametrize("slug", sorted(GPU_SIZES))
def test_every_size_is_consistent(slug: str) -> None:
    size = GPU_SIZES[slug]
    assert size.slug == slug
    assert not size.problems()
    # The slug spells "<model>x<count>-<total memory>gb".
    count = int(slug.split("x")[-1].split("-")[0])
    total = int(slug.rsplit("-", 1)[1].removesuffix("gb"))
    assert size.gpu_count == count
    assert size.total_gpu_memory_gb == pytest.approx(total)
    assert size.resource_name == f"{size.vendor}.com/gpu"
    assert size.toleration_key == size.resource_name
    assert size.toleration() == {
        "key": size.toleration_key,
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    assert size.resource_limits() == {size.resource_name: str(count)}
    assert size.node_selector() == {"doks.digitalocean.com/gpu-brand": size.vendor}
    assert tensor_parallel_size(size) == size.tensor_parallel_size == count
    if size.vendor == "nvidia":
        assert size.vllm_image == CUDA_VLLM_IMAGE == "vllm/vllm-openai:v0.18.0"
        assert size.cluster_flags_dict() == {}


@pytest.mark.parametrize("slug", ["gpu-mi300x1-192gb", "gpu-mi300x8-1536gb"])
def test_amd_sizes_use_rocm_and_amd_resources(slug: str) -> None:
    size = GPU_SIZES[slug]
    assert size.vendor == "amd"
    assert size.resource_name == "amd.com/gpu"
    assert size.vllm_image == ROCM_VLLM_IMAGE
    assert "rocm" in size.vllm_image
    assert size.cluster_flags_dict() == {
        "amd_gpu_device_plugin": {"enabled": True},
        "amd_gpu_device_metrics_exporter_plugin": {"enabled": True},
    }
    assert dict(size.cluster_flags) == dict(AMD_CLUSTER_FLAGS)
    assert "nvidia" not in json.dumps(size.toleration())
    assert "nvidia" not in json.dumps(size.resource_limits())


@pytest.mark.parametrize("slug", ["gpu-h100x8-640gb", "gpu-mi300x8-1536gb"])
def test_x8_sizes_give_tensor_parallel_8(slug: str) -> None:
    assert tensor_parallel_size(lookup_gpu_size(slug)) == 8


def test_unknown_size_lists_known_slugs() -> None:
    with pytest.raises(ValidationError) as err:
        lookup_gpu_size("gpu-b300x1-288gb")
    (problem,) = err.value.problems
    assert problem.value == "gpu-b300x1-288gb"
    for slug in REQUIRED_SLUGS:
        assert slug in problem.expected
    assert "custom=" in problem.expected


def test_custom_size_is_the_escape_hatch() -> None:
    b300 = custom_gpu_size("gpu-b300x1-288gb", vendor="nvidia", gpu_count=1, gpu_memory_gb=288)
    assert lookup_gpu_size("gpu-b300x1-288gb", custom=b300) is b300
    assert b300.resource_name == "nvidia.com/gpu"
    assert b300.vllm_image == CUDA_VLLM_IMAGE
    mi325 = custom_gpu_size("gpu-mi325x8-2048gb", vendor="amd", gpu_count=8, gpu_memory_gb=256)
    assert mi325.vllm_image == ROCM_VLLM_IMAGE and mi325.cluster_flags_dict()
    with pytest.raises(ValidationError, match=r"custom\.slug"):
        lookup_gpu_size("gpu-other", custom=b300)


def test_inconsistent_custom_size_is_rejected() -> None:
    with pytest.raises(ValidationError) as err:
        GpuSize(
            slug="gpu-mi999x1-1gb",
            gpu_count=0,
            gpu_memory_gb=1,
            vendor="amd",
            gpu_model="?",
            resource_name="nvidia.com/gpu",
            toleration_key="nvidia.com/gpu",
            vllm_image="x",
        )
    assert {p.field for p in err.value.problems} == {
        "gpu_count",
        "resource_name",
        "toleration_key",
    }


# --- capacity ----------------------------------------------------------------------------


def test_model_table_has_the_seed_models() -> None:
    assert MODEL_PARAMETERS_B["Qwen/Qwen2.5-0.5B-Instruct"] == 0.49
    assert MODEL_PARAMETERS_B["Qwen/Qwen2.5-7B-Instruct"] == 7.6
    assert MODEL_PARAMETERS_B["Qwen/Qwen2.5-72B-Instruct"] == 72.7
    assert MODEL_PARAMETERS_B["meta-llama/Llama-3.1-8B-Instruct"] == 8.0


@pytest.mark.parametrize(
    ("quantization", "expected"),
    [(None, 2.0), ("", 2.0), ("none", 2.0), ("bf16", 2.0), ("fp8", 1.0), ("int8", 1.0)],
)
def test_bytes_per_parameter(quantization: str | None, expected: float) -> None:
    assert bytes_per_parameter(quantization) == expected


def test_four_bit_costs_half_a_byte_plus_overhead() -> None:
    for q in ("awq", "gptq", "AWQ"):
        assert 0.5 < bytes_per_parameter(q) < 0.7
    with pytest.raises(ValidationError, match="quantization"):
        bytes_per_parameter("fp3")


def test_checkpoint_size_assumption() -> None:
    assert checkpoint_bytes_per_parameter("Qwen/Qwen2.5-72B-Instruct", "fp8") == 2.0
    assert checkpoint_bytes_per_parameter("neuralmagic/Llama-3.1-8B-Instruct-FP8") == 1.0
    assert checkpoint_bytes_per_parameter("Qwen/Qwen2.5-72B-Instruct-AWQ") < 0.7
    assert checkpoint_bytes_per_parameter("someone/model", "gptq") < 0.7


def test_seed_default_passes() -> None:
    report = plan_capacity(SEED_DEFAULT)
    assert not report.problems()
    report.check()
    pool = report.pool("vllm")
    assert pool.parameters_source == "architecture"
    assert pool.weights_gb == pytest.approx(weights_gb(0.494, 2.0), rel=0.01)
    assert pool.weights_gb is not None and pool.weights_gb < 1.0
    # GPU memory as CUDA reports it on an H100 80GB, not the marketing 80.
    assert pool.gpu_memory_per_replica_gb == pytest.approx(79.19)
    assert pool.usable_gb == pytest.approx(79.19 * 0.9)
    assert pool.vllm is not None and pool.vllm.starts
    # vLLM's default length is the model's own (config.json's max_position_embeddings).
    assert pool.vllm.max_model_len == 32768
    assert pool.vllm.kv_tokens > 1_000_000 and pool.vllm.max_concurrency > 30
    assert report.gpu_nodes_needed == {"gpu-h100x1-80gb": 1}
    assert report.gpu_nodes_available == {"gpu-h100x1-80gb": 2}
    assert report.nfs_needed_gb < 2
    assert "OK" in report.table()


def test_seed_ha_example_is_refused_with_fixes() -> None:
    """The seed's HA example (72B, online fp8, one H100 per replica, 0.9) does not start:
    fp8 keeps embed_tokens and lm_head in bf16 (70.0 GiB of weights), and the profile run
    takes the rest of the 71.3 GiB vLLM may use."""
    report = plan_capacity(SEED_HA)
    pool = report.pool("vllm")
    assert pool.tensor_parallel_size == 1
    assert pool.vllm is not None and not pool.vllm.starts
    assert pool.vllm.weights_gib == pytest.approx(70.0, abs=0.1)
    assert pool.vllm.available_kv_gib < 0
    # 80 layers x 8 KV heads x 128 x 2 (K and V) x 2 bytes = 320 KiB per token.
    assert pool.vllm.kv_bytes_per_token == 320 * 1024
    (problem,) = report.problems().items
    assert problem.field == "pools[vllm].gpu_size"
    assert "No available memory for the cache blocks" in problem.expected
    assert "gpu-h200x1-141gb" in problem.expected  # a bigger GPU
    assert "gpu_memory_utilization: 0.95 with kv_cache_dtype: fp8 and max_model_len:" in (
        problem.expected
    )
    table = report.table()
    assert "1 problem(s)" in table and "GPU nodes gpu-h100x1-80gb: need 3, have 3" in table
    print(table, file=sys.stderr)


def test_seed_ha_example_fixes_do_start() -> None:
    """Each fix the planner lists for the HA example does make vLLM start."""
    base = SEED_HA.pools[0]
    fixed = [
        dataclasses.replace(base, gpu_size="gpu-h200x1-141gb"),
        dataclasses.replace(
            base, gpu_memory_utilization=0.95, kv_cache_dtype="fp8", max_model_len=12288
        ),
    ]
    for pool in fixed:
        report = plan_capacity(dataclasses.replace(SEED_HA, pools=[pool])).check()
        estimate = report.pool("vllm")
        assert estimate.vllm is not None and estimate.vllm.starts
        assert estimate.vllm.max_concurrency >= 1


def test_a_length_beyond_the_kv_cache_is_refused_with_the_estimated_length() -> None:
    pool = dataclasses.replace(
        SEED_HA.pools[0], gpu_memory_utilization=0.95, kv_cache_dtype="fp8", max_model_len=32768
    )
    (problem,) = plan_capacity(dataclasses.replace(SEED_HA, pools=[pool])).problems().items
    assert "To serve at least one request with the model's max seq len (32768)" in (
        problem.expected
    )
    assert "max_model_len: 15360" in problem.expected


def test_auto_max_len_fits_the_cache() -> None:
    pool = dataclasses.replace(
        SEED_HA.pools[0], gpu_memory_utilization=0.95, kv_cache_dtype="fp8", max_model_len=-1
    )
    estimate = plan_capacity(dataclasses.replace(SEED_HA, pools=[pool])).check().pool("vllm")
    assert estimate.vllm is not None
    assert 0 < estimate.vllm.max_model_len == estimate.vllm.kv_tokens < 32768


def test_a_length_beyond_the_models_is_refused() -> None:
    pool = dataclasses.replace(SEED_DEFAULT.pools[0], max_model_len=65536)
    (problem,) = plan_capacity(dataclasses.replace(SEED_DEFAULT, pools=[pool])).problems().items
    assert "greater than the derived max_model_len (32768)" in problem.expected
    assert "max_model_len: 32768" in problem.expected


def test_bad_memory_settings_are_reported() -> None:
    pool = dataclasses.replace(SEED_DEFAULT.pools[0], max_model_len=0, kv_cache_dtype="fp4")
    fields = _fields(plan_capacity(dataclasses.replace(SEED_DEFAULT, pools=[pool])))
    assert set(fields) == {"pools[vllm].max_model_len", "pools[vllm].kv_cache_dtype"}


def test_host_ram_and_cost_are_planned() -> None:
    report = plan_capacity(SEED_DEFAULT)
    pool = report.pool("vllm")
    assert pool.host_ram_gb == 240 and pool.host_ram_needed_gb is not None
    assert pool.host_ram_needed_gb < pool.host_ram_gb
    assert pool.cost_per_hour_usd == (3.39, 3.39)
    assert "$3.39/h ($2,475/month) at 1 replica(s)" in report.table()
    data = json.loads(report.to_json())["pools"][0]
    assert data["cost"]["per_month_usd"] == {"max_replicas": 2474.7, "min_replicas": 2474.7}
    assert data["kv"]["verdict"] == "start" and data["kv"]["kv_tokens"] > 0


def test_config_json_gives_an_unknown_model_its_plan(tmp_path: Path) -> None:
    from vllm_doks.model_arch import load_architecture

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_type": "qwen3",
                "num_hidden_layers": 40,
                "num_attention_heads": 40,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "hidden_size": 5120,
                "intermediate_size": 17408,
                "vocab_size": 151936,
                "tie_word_embeddings": False,
                "max_position_embeddings": 40960,
            }
        )
    )
    arch = load_architecture(config)
    pool = PoolPlan(name="x", model_id="Qwen/Qwen3-14B", architecture=arch)
    report = plan_capacity(ClusterPlan(pools=[pool], gpu_node_count=1, nfs_size_gb=100))
    estimate = report.check().pool("x")
    assert estimate.architecture_source == str(config)
    assert estimate.vllm is not None and estimate.vllm.max_model_len == 40960
    bad = tmp_path / "bad.json"
    bad.write_text('{"num_hidden_layers": 0}')
    with pytest.raises(ValidationError, match=r"config\.json:num_hidden_layers"):
        load_architecture(bad)


def test_72b_unquantized_on_h100x1_fails_with_quantize_hint() -> None:
    plan = ClusterPlan(
        pools=[PoolPlan(name="big", model_id="Qwen/Qwen2.5-72B-Instruct", replicas=1)],
        gpu_node_count=1,
        nfs_size_gb=1000,
    )
    report = plan_capacity(plan)
    (problem,) = report.problems().items
    assert problem.field == "pools[big].gpu_size"
    assert "No available memory for the cache blocks" in problem.expected
    assert "gpu-h100x8-640gb" in problem.expected  # a size that would hold it
    with pytest.raises(ValidationError, match="vLLM would refuse"):
        report.check()


def test_72b_unquantized_fits_an_x8_size() -> None:
    plan = ClusterPlan(
        pools=[
            PoolPlan(name="big", model_id="Qwen/Qwen2.5-72B-Instruct", gpu_size="gpu-h100x8-640gb")
        ],
        gpu_node_count=1,
        nfs_size_gb=1000,
    )
    report = plan_capacity(plan).check()
    assert report.pool("big").tensor_parallel_size == 8


def test_more_replicas_than_nodes_fails() -> None:
    plan = ClusterPlan(
        pools=[dataclasses.replace(SEED_HA.pools[0], replicas=4, gpu_size="gpu-h200x1-141gb")],
        gpu_node_count=3,
        nfs_size_gb=1000,
    )
    (problem,) = plan_capacity(plan).problems().items
    assert problem.field == "gpu_node_count"
    assert problem.value == 3
    assert "at least 4" in problem.expected and "anti-affinity" in problem.expected


def test_pools_on_the_same_size_add_up() -> None:
    plan = ClusterPlan(
        pools=[
            PoolPlan(name="a", model_id="Qwen/Qwen2.5-7B-Instruct", replicas=2),
            PoolPlan(name="b", model_id="meta-llama/Llama-3.1-8B-Instruct", replicas=1),
            PoolPlan(name="c", model_id="Qwen/Qwen2.5-0.5B-Instruct", gpu_size="gpu-l40sx1-48gb"),
        ],
        gpu_node_count={"gpu-h100x1-80gb": 2, "gpu-l40sx1-48gb": 1},
        nfs_size_gb=1000,
    )
    report = plan_capacity(plan)
    assert report.gpu_nodes_needed == {"gpu-h100x1-80gb": 3, "gpu-l40sx1-48gb": 1}
    (problem,) = report.problems().items
    assert problem.field == "gpu_node_count[gpu-h100x1-80gb]"
    assert "a (2), b (1)" in problem.expected


def test_several_sizes_need_a_node_count_per_size() -> None:
    plan = ClusterPlan(
        pools=[
            PoolPlan(name="a", model_id="Qwen/Qwen2.5-7B-Instruct"),
            PoolPlan(name="b", model_id="Qwen/Qwen2.5-7B-Instruct", gpu_size="gpu-l40sx1-48gb"),
        ],
        gpu_node_count=4,
        nfs_size_gb=1000,
    )
    assert _fields(plan_capacity(plan)) == ["gpu_node_count"]


def test_two_models_over_a_50_gb_share_fail_with_raise_hint() -> None:
    plan = ClusterPlan(
        pools=[
            PoolPlan(name="qwen", model_id="Qwen/Qwen2.5-14B-Instruct"),
            PoolPlan(
                name="mistral",
                model_id="mistralai/Mistral-Small-24B-Instruct-2501",
                quantization="fp8",
            ),
        ],
        gpu_node_count=2,
        nfs_size_gb=50,
    )
    report = plan_capacity(plan)
    # Each would fit the share alone; together they do not.
    assert all(p.checkpoint_gb is not None and p.checkpoint_gb < 50 for p in report.pools)
    (problem,) = report.problems().items
    assert problem.field == "nfs_size_gb"
    assert f"raise nfs_size_gb to at least {int(report.nfs_needed_gb) + 1}" in problem.expected


def test_one_model_in_two_pools_is_stored_once() -> None:
    pool = PoolPlan(name="a", model_id="Qwen/Qwen2.5-7B-Instruct")
    plan = ClusterPlan(
        pools=[pool, PoolPlan(name="b", model_id=pool.model_id, gpu_size="gpu-h200x1-141gb")],
        gpu_node_count={"gpu-h100x1-80gb": 1, "gpu-h200x1-141gb": 1},
        nfs_size_gb=50,
    )
    report = plan_capacity(plan).check()
    assert report.nfs_needed_gb == pytest.approx(weights_gb(7.6, 2.0) * 1.1, rel=0.01)


def test_unknown_model_without_parameters_fails() -> None:
    plan = ClusterPlan(
        pools=[PoolPlan(name="x", model_id="acme/secret-model")],
        gpu_node_count=1,
        nfs_size_gb=100,
    )
    report = plan_capacity(plan)
    (problem,) = report.problems().items
    assert problem.field == "pools[x].model_config_json"
    assert "config.json" in problem.expected and "parameters_b" in problem.expected
    assert "?" in report.table()
    fixed = ClusterPlan(
        pools=[PoolPlan(name="x", model_id="acme/secret-model", parameters_b=3.0)],
        gpu_node_count=1,
        nfs_size_gb=100,
    )
    assert plan_capacity(fixed).check().pool("x").parameters_source == "prop"


def test_bad_pool_inputs_are_all_reported() -> None:
    plan = ClusterPlan(
        pools=[
            PoolPlan(
                name="x",
                model_id="Qwen/Qwen2.5-7B-Instruct",
                gpu_size="gpu-nope",
                replicas=0,
                quantization="fp3",
                gpu_memory_utilization=1.5,
            )
        ],
        gpu_node_count=1,
        nfs_size_gb=100,
    )
    assert set(_fields(plan_capacity(plan))) == {
        "pools[x].gpu_size",
        "pools[x].replicas",
        "pools[x].gpu_memory_utilization",
        "pools[x].quantization",
    }


def test_custom_gpu_size_in_a_pool() -> None:
    b300 = custom_gpu_size("gpu-b300x1-288gb", vendor="nvidia", gpu_count=1, gpu_memory_gb=288)
    plan = ClusterPlan(
        pools=[PoolPlan(name="big", model_id="Qwen/Qwen2.5-72B-Instruct", gpu_size=b300)],
        gpu_node_count=1,
        nfs_size_gb=200,
    )
    report = plan_capacity(plan).check()
    assert report.pool("big").gpu_size == "gpu-b300x1-288gb"
    assert '"gpu_size": "gpu-b300x1-288gb"' in report.to_json()


def test_startup_window_grows_with_model_size() -> None:
    def window(model: str) -> int:
        pool = plan_capacity(
            ClusterPlan(
                pools=[PoolPlan(name="p", model_id=model, quantization="fp8")],
                gpu_node_count=1,
                nfs_size_gb=1000,
            )
        ).pool("p")
        assert pool.startup_window_seconds is not None
        return pool.startup_window_seconds

    small = window("Qwen/Qwen2.5-0.5B-Instruct")
    mid = window("Qwen/Qwen2.5-7B-Instruct")
    big = window("Qwen/Qwen2.5-72B-Instruct")
    assert big > mid > small
    # 0.5B: a few seconds of reading, then the cold-start budget's cold compile (180 s),
    # engine start (90 s) and one readiness period (10 s): above the seed's 120 s.
    assert small == 4 + 180 + 90 + 10
    assert big >= 600  # a 72B bf16 checkpoint at 250 MiB/s takes minutes


def test_startup_window_arithmetic() -> None:
    assert startup_window_seconds(0) == 120
    assert startup_window_seconds(25, nfs_read_mb_per_s=256) == 220
    assert startup_window_seconds(25, nfs_read_mb_per_s=512, base_seconds=60) == 110
    assert startup_window_seconds(10, nfs_read_mb_per_s=100) > startup_window_seconds(10)
    assert probe_failure_threshold(120) == 12  # the seed's 12 x 10 s
    assert probe_failure_threshold(124) == 13
    assert probe_failure_threshold(675, period=15) == 45
    assert progress_deadline_seconds(240) == 600
    assert progress_deadline_seconds(120 + 10 * 68) == 920
    with pytest.raises(ValidationError):
        startup_window_seconds(1, nfs_read_mb_per_s=0)
    with pytest.raises(ValidationError):
        probe_failure_threshold(100, 0)


def test_json_is_deterministic() -> None:
    plans = [SEED_DEFAULT, SEED_HA]
    first = [plan_capacity(p).to_json() for p in plans]
    second = [plan_capacity(p).to_json() for p in plans]
    assert first == second
    data = json.loads(first[1])
    assert first[1] == json.dumps(data, sort_keys=True, indent=2) + "\n"
    assert [p["field"] for p in data["problems"]] == ["pools[vllm].gpu_size"]
    assert data["pools"][0]["kv"]["verdict"] == "refuse"
    assert data["units"] == "GiB"
    assert data["gpu_nodes"] == {"gpu-h100x1-80gb": {"available": 3, "needed": 3}}
    (pool,) = data["pools"]
    assert pool["quantization"] == "fp8" and pool["tensor_parallel_size"] == 1
    assert pool["kv_headroom_pct"] == round(pool["kv_headroom_pct"], 2)


def test_json_lists_problems() -> None:
    plan = ClusterPlan(
        pools=[PoolPlan(name="big", model_id="Qwen/Qwen2.5-72B-Instruct", replicas=2)],
        gpu_node_count=1,
        nfs_size_gb=50,
    )
    data = json.loads(plan_capacity(plan).to_json())
    assert [p["field"] for p in data["problems"]] == [
        "pools[big].gpu_size",
        "gpu_node_count",
        "nfs_size_gb",
    ]


def test_cost_at_the_autoscaling_bounds() -> None:
    pool = dataclasses.replace(SEED_DEFAULT.pools[0], replicas=2, min_replicas=1, max_replicas=4)
    report = plan_capacity(dataclasses.replace(SEED_DEFAULT, pools=[pool], gpu_node_count=4))
    estimate = report.check().pool("vllm")
    assert estimate.cost_per_hour_usd == pytest.approx((3.39, 4 * 3.39))
    assert "$3.39/h ($2,475/month) at 1 replica(s), $13.56/h ($9,899/month) at 4" in (
        report.table()
    )
