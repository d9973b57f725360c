"""The smoke test covers every served model (one Job per routed pool, stable names), and Stack 2
via Terraform gives up on a failing one soon after the Job itself gave up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import validate_objects
from support import k8s_app

from vllm_doks.config import ArchitectureConfig, InfraOutputs, load_config
from vllm_doks.k8s.serving_chart import VllmServingChart

THREE_MODELS = """
models:
  - id: Qwen/Qwen2.5-0.5B-Instruct
  - id: Qwen/Qwen2.5-7B-Instruct
    served_name: qwen-7b
  - id: Qwen/Qwen2.5-1.5B-Instruct
    name: green
    served_name: qwen-7b
    canary: {of: qwen-7b, weight: 10}
"""


def config_from(tmp_path: Path, text: str, **overrides: Any) -> ArchitectureConfig:
    path = tmp_path / "vllm.yaml"
    path.write_text(text)
    return load_config(path, overrides=overrides or None)


def chart_for(cfg: ArchitectureConfig) -> VllmServingChart:
    return VllmServingChart(k8s_app(), "vllm", cfg, InfraOutputs.examples_for(cfg))


def smoke_jobs(chart: VllmServingChart) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o
        for o in cdk8s.Testing.synth(chart)
        if o["kind"] == "Job" and o["metadata"]["labels"].get("app") == "smoke-test"
    }


def test_every_routed_model_gets_its_own_smoke_test(tmp_path: Path) -> None:
    chart = chart_for(config_from(tmp_path, THREE_MODELS))
    assert validate_objects(list(cdk8s.Testing.synth(chart))) == []
    # The canary is tested on its own, through the canary header (chart.canary_smoke_tests).
    assert len(chart.smoke_tests) == 2
    assert len(chart.canary_smoke_tests) == 1
    first, second = chart.smoke_tests
    assert chart.smoke_test is first
    jobs = smoke_jobs(chart)
    (canary,) = chart.canary_smoke_tests
    assert set(jobs) == {first.job_name, second.job_name, canary.job_name}
    assert first.job_name.rpartition("-")[0] == "smoke-test"
    assert second.job_name.rpartition("-")[0] == "qwen-7b-smoke-test"
    by_model = {t.model: t.url for t in chart.smoke_tests}
    gateway = "http://cilium-gateway-vllm-gateway.vllm.svc:80"
    assert by_model == {
        "Qwen2.5-0.5B-Instruct": f"{gateway}/qwen2-5-0-5b-instruct/v1/chat/completions",
        "qwen-7b": f"{gateway}/qwen-7b/v1/chat/completions",
    }
    for test in chart.smoke_tests:
        command = jobs[test.job_name]["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[4:6] == [test.url, test.model]


def test_a_smoke_tests_name_follows_its_pool_not_its_position(tmp_path: Path) -> None:
    """Adding a model in front does not rename (and so re-run) another model's smoke test."""
    two = chart_for(config_from(tmp_path, THREE_MODELS))
    reordered = THREE_MODELS.replace(
        "models:\n", "models:\n  - id: Qwen/Qwen2.5-3B-Instruct\n    name: extra\n", 1
    )
    three = chart_for(config_from(tmp_path, reordered))
    names = {t.model: t.job_name for t in three.smoke_tests}
    assert names["qwen-7b"] == two.smoke_tests[1].job_name
    assert len(three.smoke_tests) == 3


def test_prefix_aware_routing_tests_every_model_through_the_one_url(tmp_path: Path) -> None:
    two = "\n".join(THREE_MODELS.splitlines()[:5]) + "\n"
    chart = chart_for(config_from(tmp_path, two, routing="prefix-aware"))
    urls = {t.model: t.url for t in chart.smoke_tests}
    assert set(urls) == {"Qwen2.5-0.5B-Instruct", "qwen-7b"}
    assert len(set(urls.values())) == 1


def test_the_single_model_keeps_one_smoke_test_named_as_before() -> None:
    chart = chart_for(load_config())
    assert len(chart.smoke_tests) == 1
    assert chart.smoke_test is not None
    assert chart.smoke_test.job_name.rpartition("-")[0] == "smoke-test"
    assert chart_for(load_config(overrides={"smoke_test": False})).smoke_tests == []


def test_terraform_waits_for_a_smoke_test_only_as_long_as_the_job_itself_runs(
    tmp_path: Path,
) -> None:
    from support import kubernetes_stack_json

    from vllm_doks.cloud.kubernetes_stack import AFTER_APPLY_WAIT_MARGIN_SECONDS

    chart, doc = kubernetes_stack_json(tmp_path / "out", config_from(tmp_path, THREE_MODELS))
    manifests = doc["resource"]["kubernetes_manifest"]
    jobs = smoke_jobs(chart)
    assert len(jobs) == 3  # two models and the canary
    for name, job in jobs.items():
        resource = manifests[f"job-{name}"]
        deadline = job["spec"]["activeDeadlineSeconds"]
        # The Job fails by its own deadline (backoffLimit 0: one pod, which retries itself);
        # apply gives up shortly after instead of waiting the downloads' 60 minutes.
        assert job["spec"]["backoffLimit"] == 0
        assert resource["timeouts"] == {"create": f"{deadline + AFTER_APPLY_WAIT_MARGIN_SECONDS}s"}
        assert deadline + AFTER_APPLY_WAIT_MARGIN_SECONDS < 60 * 60
        assert resource["wait"] == {"condition": [{"type": "Complete", "status": "True"}]}
        # Every smoke test comes after every other object, and no other object waits for it.
        deps = set(resource["depends_on"])
        for address in manifests:
            if "smoke-test" not in address:
                assert f"kubernetes_manifest.{address}" in deps, address
                assert f"kubernetes_manifest.job-{name}" not in manifests[address].get(
                    "depends_on", []
                )
    downloads = [a for a in manifests if a.startswith("job-model-download")]
    assert downloads
    for address in downloads:
        assert manifests[address]["timeouts"] == {"create": "60m"}


@pytest.mark.parametrize("name", ["Smoke", "s" * 55])
def test_a_bad_base_name_is_refused_with_the_field(name: str) -> None:
    from vllm_doks import ValidationError
    from vllm_doks.k8s.smoke_test import SmokeTestProps

    chart = chart_for(load_config())
    assert chart.smoke_test is not None
    props = SmokeTestProps(endpoint=chart.endpoint, pool=chart.pool, name=name)
    with pytest.raises(ValidationError) as err:
        props.problems().raise_if_any()
    assert "name" in str(err.value) and name in str(err.value)


def test_a_promotion_gating_smoke_test_is_bounded_by_its_deadline_too(tmp_path: Path) -> None:
    from support import kubernetes_stack_json

    from vllm_doks.cloud.kubernetes_stack import AFTER_APPLY_WAIT_MARGIN_SECONDS
    from vllm_doks.cold_start import PROMOTION_GATE_LABEL

    promoted = THREE_MODELS.replace("weight: 10}", "weight: 100, promoted: true}")
    chart, doc = kubernetes_stack_json(tmp_path / "out", config_from(tmp_path, promoted))
    (canary,) = chart.canary_smoke_tests
    job = next(j for n, j in smoke_jobs(chart).items() if n == canary.job_name)
    assert job["metadata"]["labels"].get(PROMOTION_GATE_LABEL) == "true"
    resource = doc["resource"]["kubernetes_manifest"][f"job-{canary.job_name}"]
    deadline = job["spec"]["activeDeadlineSeconds"]
    assert resource["timeouts"] == {"create": f"{deadline + AFTER_APPLY_WAIT_MARGIN_SECONDS}s"}
