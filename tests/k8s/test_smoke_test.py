"""smoke-test.sh run for real (/bin/sh + curl) against a fake OpenAI-compatible server on
127.0.0.1, and the SmokeTest Job it runs in."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import validate_objects
from support import KEY, STORE, FakeOpenAI, k8s_app, needs_sh_curl

from vllm_doks import ValidationError
from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.k8s import (
    GatewayEndpoint,
    GatewayEndpointProps,
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.k8s.scripts import SMOKE_TEST, script_text, sh_command
from vllm_doks.k8s.serving_chart import VllmServingChart
from vllm_doks.k8s.smoke_test import AFTER_APPLY_LABEL, SmokeTest, SmokeTestProps


def smoke(url: str, key_file: Path | None, deadline: int = 30) -> tuple[int, str]:
    proc = subprocess.run(
        sh_command(
            SMOKE_TEST,
            url,
            "Qwen2.5-0.5B-Instruct",
            str(deadline),
            "1",
            str(key_file) if key_file else "",
        ),
        capture_output=True,
        text=True,
        timeout=deadline + 30,
    )
    return proc.returncode, proc.stdout + proc.stderr


@needs_sh_curl
def test_smoke_test_retries_until_the_endpoint_answers_and_reports_the_latency(
    openai: FakeOpenAI, key_file: Path
) -> None:
    openai.unavailable_first = 2
    rc, out = smoke(openai.url, key_file)
    assert rc == 0, out
    assert len(openai.requests) == 3
    assert out.count("HTTP 503") == 2
    ok = [line for line in out.splitlines() if line.startswith("smoke-test: OK: HTTP 200 in ")]
    assert len(ok) == 1, out
    seconds = float(ok[0].split(" in ")[1].split("s ")[0])
    assert seconds >= 0
    assert "(attempt 3," in ok[0]
    sent = openai.requests[-1]
    assert sent["authorization"] == f"Bearer {KEY}"
    assert sent["content_type"] == "application/json"
    assert sent["json"]["model"] == "Qwen2.5-0.5B-Instruct"
    assert sent["json"]["messages"][0]["role"] == "user"
    # The key is sent, never printed.
    assert KEY not in out


@needs_sh_curl
def test_smoke_test_fails_at_once_when_the_key_is_refused(
    openai: FakeOpenAI, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("sk-wrong")
    rc, out = smoke(openai.url, wrong, deadline=60)
    assert rc == 1
    assert "FAILED: HTTP 401: the endpoint refused the API key" in out
    assert len(openai.requests) == 1
    assert "sk-wrong" not in out


@needs_sh_curl
def test_smoke_test_without_a_key_sends_no_authorization(openai: FakeOpenAI) -> None:
    rc, out = smoke(openai.url, None)
    assert rc == 1
    assert "refused the API key" in out
    assert openai.requests[0]["authorization"] is None


@needs_sh_curl
def test_smoke_test_gives_up_at_its_deadline_when_nothing_answers(
    openai: FakeOpenAI, key_file: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, out = smoke(f"http://127.0.0.1:{port}/v1/chat/completions", key_file, deadline=3)
    assert rc == 1
    assert "FAILED: no successful completion" in out
    assert "within 3s" in out
    assert "no HTTP answer" in out


def test_the_smoke_test_script_is_what_the_job_runs() -> None:
    assert script_text(SMOKE_TEST).startswith("#!/bin/sh")


# --- the Job ---------------------------------------------------------------------------------


def chart_with_smoke(**props: Any) -> tuple[cdk8s.Chart, SmokeTest]:
    chart = cdk8s.Chart(k8s_app(), "t")
    model = NfsModelStore(chart, "Models", STORE).add_model("Qwen/Qwen2.5-0.5B-Instruct")
    pool = VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu")
    )
    endpoint = GatewayEndpoint(
        chart, "Endpoint", GatewayEndpointProps(gateway_class_name=props.pop("cls", "cilium"))
    )
    endpoint.route_to(pool)
    return chart, SmokeTest(chart, "Smoke", SmokeTestProps(endpoint=endpoint, pool=pool, **props))


def test_the_job_targets_the_cilium_gateway_service_with_the_api_key_file() -> None:
    chart, smoke_test = chart_with_smoke(deadline_seconds=900)
    objs = list(cdk8s.Testing.synth(chart))
    assert validate_objects(objs) == []
    job = next(o for o in objs if o["kind"] == "Job" and o["metadata"]["name"].startswith("smoke"))
    assert job["metadata"]["labels"][AFTER_APPLY_LABEL] == "true"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 960
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    url = "http://cilium-gateway-vllm-gateway.vllm.svc:80/v1/chat/completions"
    assert smoke_test.url == url
    assert container["command"][4:9] == [
        url,
        "Qwen2.5-0.5B-Instruct",
        "900",
        "10",
        "/var/run/secrets/vllm-api-key/key",
    ]
    secret = next(v for v in pod["volumes"] if "secret" in v)["secret"]
    assert secret["secretName"] == "vllm-api-key"
    assert secret["items"] == [{"key": "VLLM_API_KEY", "path": "key"}]
    assert "env" not in container or all("valueFrom" not in e for e in container["env"])
    assert pod["nodeSelector"] == {"doks.digitalocean.com/node-pool": "gpu"}


def test_the_job_name_changes_with_what_it_tests() -> None:
    _, a = chart_with_smoke()
    _, b = chart_with_smoke()
    _, c = chart_with_smoke(url="http://gw.example.internal/v1/chat/completions")
    assert a.job_name == b.job_name
    assert a.job_name != c.job_name


def test_another_gateway_class_needs_a_url() -> None:
    with pytest.raises(ValidationError) as err:
        chart_with_smoke(cls="eg")
    assert "url" in str(err.value) and "'eg'" in str(err.value)
    _, ok = chart_with_smoke(cls="eg", url="http://envoy-gw.vllm.svc/v1/chat/completions")
    assert ok.url.startswith("http://envoy-gw")


def test_the_serving_chart_has_a_smoke_test_by_default_and_config_turns_it_off() -> None:
    cfg = load_config()
    chart = VllmServingChart(k8s_app(), "vllm", cfg, InfraOutputs.examples_for(cfg))
    assert chart.smoke_test is not None
    off = load_config(overrides={"smoke_test": False})
    chart = VllmServingChart(k8s_app(), "vllm", off, InfraOutputs.examples_for(off))
    assert chart.smoke_test is None


def test_another_gateway_class_gets_a_smoke_test_only_with_a_url() -> None:
    from vllm_doks.preflight import kubernetes_problems

    cfg = load_config(overrides={"gateway_class": "eg"})
    chart = VllmServingChart(k8s_app(), "vllm", cfg, InfraOutputs.examples_for(cfg))
    assert chart.smoke_test is None
    assert not kubernetes_problems(cfg, InfraOutputs.examples_for(cfg)).items
    url = "http://envoy-gw.vllm.svc/v1/chat/completions"
    cfg = load_config(overrides={"gateway_class": "eg", "smoke_test_url": url})
    chart = VllmServingChart(k8s_app(), "vllm", cfg, InfraOutputs.examples_for(cfg))
    assert chart.smoke_test is not None and chart.smoke_test.url == url
    bad = load_config(overrides={"smoke_test_url": "gw/v1"})
    fields = [p.field for p in kubernetes_problems(bad, InfraOutputs.examples_for(bad)).items]
    assert fields == ["smoke_test_url"]
