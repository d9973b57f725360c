"""The capacity inputs that reach vLLM: --max-model-len, --kv-cache-dtype and
--gpu-memory-utilization are emitted only when set, and validated (field, value, range)
in the worker pool and in the configuration."""

from __future__ import annotations

from typing import Any

import cdk8s
import pytest

from vllm_doks import ValidationError
from vllm_doks.config import load_config
from vllm_doks.k8s import NfsModelStore, NfsModelStoreProps, VllmWorkerPool, VllmWorkerPoolProps
from vllm_doks.preflight import vllm_settings
from vllm_doks.validation import Problems

STORE = NfsModelStoreProps(nfs_server="10.200.0.5", nfs_path="/1234567/abcd", capacity_gi=1000)
FLAGS = ("--max-model-len", "--kv-cache-dtype", "--gpu-memory-utilization")


def pool_args(**props: Any) -> list[str]:
    chart = cdk8s.Chart(cdk8s.Testing.app(), "test")
    model = NfsModelStore(chart, "Models", STORE).add_model("Qwen/Qwen2.5-0.5B-Instruct")
    pool = VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu", **props)
    )
    return pool.vllm_args


def test_memory_flags_are_absent_unless_set() -> None:
    assert not set(FLAGS) & set(pool_args())


@pytest.mark.parametrize(
    ("props", "flag", "value"),
    [
        ({"max_model_len": 8192}, "--max-model-len", "8192"),
        ({"max_model_len": -1}, "--max-model-len", "-1"),
        ({"kv_cache_dtype": "fp8"}, "--kv-cache-dtype", "fp8"),
        ({"gpu_memory_utilization": 0.95}, "--gpu-memory-utilization", "0.95"),
    ],
)
def test_memory_flags_when_set(props: dict[str, Any], flag: str, value: str) -> None:
    args = pool_args(**props)
    assert args[args.index(flag) + 1] == value
    assert sum(f in args for f in FLAGS) == 1


def test_memory_props_are_validated() -> None:
    with pytest.raises(ValidationError) as err:
        pool_args(max_model_len=0, kv_cache_dtype="fp4", gpu_memory_utilization=1.5)
    problems = {p.field: p for p in err.value.problems}
    assert set(problems) == {"max_model_len", "kv_cache_dtype", "gpu_memory_utilization"}
    assert "auto-fit" in problems["max_model_len"].expected
    assert "fp8" in problems["kv_cache_dtype"].expected
    assert "at most 1" in problems["gpu_memory_utilization"].expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, (None, None, None)),
        ({"max_model_len": "auto"}, (-1, None, None)),
        ({"max_model_len": 16384, "kv_cache_dtype": "FP8"}, (16384, "fp8", None)),
        ({"gpu_memory_utilization": "0.95"}, (None, None, 0.95)),
    ],
)
def test_config_settings_parse(values: dict[str, object], expected: tuple[object, ...]) -> None:
    problems = Problems()
    settings = vllm_settings(load_config(env={}, overrides=values), problems)
    assert not problems
    assert (
        settings.max_model_len,
        settings.kv_cache_dtype,
        settings.gpu_memory_utilization,
    ) == expected


def test_bad_config_settings_are_all_reported() -> None:
    problems = Problems()
    config = load_config(
        env={},
        overrides={
            "max_model_len": "long",
            "kv_cache_dtype": "int3",
            "gpu_memory_utilization": "2",
        },
    )
    vllm_settings(config, problems)
    assert {p.field for p in problems.items} == {
        "max_model_len",
        "kv_cache_dtype",
        "gpu_memory_utilization",
    }
