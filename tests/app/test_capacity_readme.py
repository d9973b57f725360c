"""The README's capacity examples are the planner's output: each block marked
``<!-- capacity-example:NAME -->`` is regenerated here and must match."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.preflight import capacity_plan
from vllm_doks.validation import Problems

README = REPO / "README.md"
HA: dict[str, object] = {
    "model_id": "Qwen/Qwen2.5-72B-Instruct",
    "quantization": "fp8",
    "replicas": 3,
    "gpu_node_count": 3,
}
CASES: dict[str, dict[str, object]] = {
    "default": {},
    "ha": HA,
    "ha-h200": HA | {"gpu_size": "gpu-h200x1-141gb"},
    "ha-h100-fp8kv": HA
    | {"gpu_memory_utilization": "0.95", "kv_cache_dtype": "fp8", "max_model_len": "12288"},
}


def _blocks() -> dict[str, str]:
    text = README.read_text()
    return dict(re.findall(r"<!-- capacity-example:(\S+) -->\n```\n(.*?)\n```", text, re.S))


@pytest.mark.parametrize("name", sorted(CASES))
def test_readme_capacity_example_is_the_planners_output(name: str) -> None:
    config = load_config(env={}, overrides=CASES[name])
    report = capacity_plan(config, InfraOutputs.examples_for(config), Problems())
    assert report is not None
    assert _blocks()[name] == report.table().rstrip("\n")


def test_readme_ha_example_shows_the_refusal_and_the_working_configurations() -> None:
    blocks = _blocks()
    assert "No available memory for the cache blocks" in blocks["ha"]
    assert "OK: the plan fits." in blocks["ha-h200"]
    assert "OK: the plan fits." in blocks["ha-h100-fp8kv"]
