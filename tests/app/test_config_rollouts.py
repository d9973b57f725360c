"""LoRA adapters and canary rollouts from the config file (`adapters:` and `canary:` on entries
of `models:`): the same objects the Python API makes, the capacity plan counts the adapters,
and bad values are named by their keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import validate_objects
from support import (
    CANARY,
    CONFIG_INFRA,
    README_ADAPTERS_YAML,
    config_from,
    named,
    synth_config,
)

from vllm_doks import ValidationError
from vllm_doks.k8s.serving_chart import synth_serving_chart
from vllm_doks.preflight import capacity_plan
from vllm_doks.validation import Problems

ADAPTERS = README_ADAPTERS_YAML


def vllm_args(objs: list[dict[str, Any]], name: str = "vllm") -> list[str]:
    spec = named(objs, "Deployment")[name]["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "vllm"]
    return container["args"]  # type: ignore[no-any-return]


def test_a_model_with_two_adapters_from_the_config(tmp_path: Path) -> None:
    config = config_from(tmp_path, ADAPTERS)
    objs = synth_config(tmp_path, config)
    assert validate_objects(objs) == []
    args = vllm_args(objs)
    assert args[args.index("--enable-lora") :] == [
        "--enable-lora",
        "--max-loras", "2",
        "--max-lora-rank", "64",
        "--lora-modules",
        "sql=/models/lora/acme--qwen2.5-7b-instruct-sql-lora",
        "support=/models/lora/acme--qwen2.5-7b-instruct-support-lora",
    ]  # fmt: skip
    # One download Job for the model and one per adapter (besides the smoke test's Job).
    jobs = {n: j for n, j in named(objs, "Job").items() if not n.startswith("smoke-test")}
    assert len(jobs) == 3
    # The path stays /v1 and the pool "vllm": one model, whatever its adapters.
    (route,) = named(objs, "HTTPRoute").values()
    assert route["spec"]["rules"][0]["matches"][0]["path"]["value"] == "/v1"
    # The capacity plan counts 2 slots of rank 64 for the 7B model.
    report = capacity_plan(config, CONFIG_INFRA, Problems())
    assert report is not None
    (pool,) = report.pools
    assert pool.vllm is not None and pool.vllm.lora_gib > 0


def test_a_base_model_mismatch_in_the_config_is_refused(tmp_path: Path) -> None:
    config = config_from(
        tmp_path, ADAPTERS.replace("base_model: Qwen/Qwen2.5-7B-Instruct", "base_model: x/y")
    )
    with pytest.raises(ValidationError) as err:
        synth_serving_chart(config, CONFIG_INFRA, tmp_path / "dist")
    assert [p.field for p in err.value.problems] == ["base_model_id"]
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize(("weight", "extra"), [(0, ""), (10, ""), (50, ""), (100, "")])
def test_canary_steps_from_the_config(tmp_path: Path, weight: int, extra: str) -> None:
    objs = synth_config(tmp_path, config_from(tmp_path, CANARY.format(weight=weight, extra=extra)))
    assert validate_objects(objs) == []
    (route,) = named(objs, "HTTPRoute").values()
    assert route["metadata"]["name"] == "vllm-route"
    main, smoke = route["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in main["backendRefs"]] == [
        ("vllm", 100 - weight),
        ("vllm-canary", weight),
    ]
    # The single model's path stays /v1 while a canary runs.
    assert main["matches"][0]["path"]["value"] == "/v1"
    assert [b["name"] for b in smoke["backendRefs"]] == ["vllm-canary"]
    assert set(named(objs, "Deployment")) == {"vllm", "vllm-canary"}


def test_promotion_from_the_config(tmp_path: Path) -> None:
    text = CANARY.format(weight=100, extra=", promoted: true")
    objs = synth_config(tmp_path, config_from(tmp_path, text))
    (route,) = named(objs, "HTTPRoute").values()
    (rule,) = route["spec"]["rules"]
    assert [b["name"] for b in rule["backendRefs"]] == ["vllm-canary"]


def test_canary_mistakes_are_named_by_key(tmp_path: Path) -> None:
    config = config_from(tmp_path, CANARY.format(weight=30, extra=""))
    with pytest.raises(ValidationError) as err:
        synth_serving_chart(config, CONFIG_INFRA, tmp_path / "a")
    assert [(p.field, p.value) for p in err.value.problems] == [("canary.weight", 30)]
    config = config_from(tmp_path, CANARY.format(weight=10, extra="") + "routing: prefix-aware\n")
    with pytest.raises(ValidationError) as err:
        synth_serving_chart(config, CONFIG_INFRA, tmp_path / "b")
    assert [p.field for p in err.value.problems] == ["models[1].canary"]
    config = config_from(tmp_path, CANARY.format(weight=10, extra="").replace("of: vllm", "of: x"))
    with pytest.raises(ValidationError) as err:
        synth_serving_chart(config, CONFIG_INFRA, tmp_path / "c")
    assert [p.field for p in err.value.problems] == ["models[1].canary.of"]


def test_finishing_as_the_readme_says_keeps_the_canary_pool(tmp_path: Path) -> None:
    finished = """
models:
  - id: Qwen/Qwen2.5-7B-Instruct-1M
    served_name: qwen
    name: vllm-canary
"""
    promoted = synth_config(
        tmp_path,
        config_from(tmp_path, CANARY.format(weight=100, extra=", promoted: true")),
        "a",
    )
    done = synth_config(tmp_path, config_from(tmp_path, finished), "b")
    assert set(named(done, "Deployment")) == {"vllm-canary"}
    # The pool that serves is unchanged by the finish: same pod template, no new rollout.
    assert (
        named(done, "Deployment")["vllm-canary"]["spec"]["template"]
        == named(promoted, "Deployment")["vllm-canary"]["spec"]["template"]
    )
    (route,) = named(done, "HTTPRoute").values()
    assert route["spec"]["rules"][0]["matches"][0]["path"]["value"] == "/v1"
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["vllm-canary"]
