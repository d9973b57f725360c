"""The capacity inputs that reach vLLM: --max-model-len, --kv-cache-dtype and
--gpu-memory-utilization are emitted only when set, and validated (field, value, range)
in the worker pool and in the configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from support import STORE, k8s_app

from vllm_doks import ValidationError
from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.k8s import NfsModelStore, VllmWorkerPool, VllmWorkerPoolProps
from vllm_doks.preflight import capacity_plan, vllm_settings
from vllm_doks.validation import Problems

FLAGS = ("--max-model-len", "--kv-cache-dtype", "--gpu-memory-utilization")


def pool_args(**props: Any) -> list[str]:
    chart = cdk8s.Chart(k8s_app(), "test")
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


def test_model_config_json_plans_a_model_outside_the_table(tmp_path: Path) -> None:
    config_json = tmp_path / "config.json"
    config_json.write_text(
        json.dumps(
            {
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "vocab_size": 128256,
                "max_position_embeddings": 131072,
                "rope_scaling": {"rope_type": "llama3", "factor": 8.0},
            }
        )
    )
    problems = Problems()
    config = load_config(
        env={}, overrides={"model_id": "acme/llama-like", "model_config_json": str(config_json)}
    )
    report = capacity_plan(config, InfraOutputs.examples_for(config), problems)
    assert not problems and report is not None
    pool = report.pool("vllm")
    assert pool.architecture_source == str(config_json)
    # rope type llama3 is not scaled by vLLM: the default length stays 131072.
    assert pool.vllm is not None and pool.vllm.max_model_len == 131072


def test_neither_table_nor_config_json_names_what_to_pass(tmp_path: Path) -> None:
    problems = Problems()
    missing = load_config(
        env={},
        overrides={"model_id": "acme/x", "model_config_json": str(tmp_path / "nope.json")},
    )
    assert capacity_plan(missing, InfraOutputs.examples_for(missing), problems) is None
    (problem,) = problems.items
    assert problem.field == "model_config_json" and "readable config.json" in problem.expected
