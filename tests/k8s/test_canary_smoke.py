"""The canary's smoke test: the SmokeTest Job in canary mode at every canary step (Python API
and config), one request per name the canary serves, with the canary header that the route
sends to the canary only; its name follows the canary's pod template. The Job's own commands
run for real (/bin/sh + curl) against a fake OpenAI server, with curl's config as the
downward API would project it. The promotion gate's messages, for each Job state."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cdk8s
import pytest
from conftest import validate_objects
from support import (
    CANARY,
    KEY,
    FakeOpenAI,
    Obj,
    config_from,
    k8s_app,
    load_example,
    named,
    needs_sh_curl,
)
from support import synth_config as synth

# Fixtures of the smoke script's tests: the fake OpenAI server and the API key file.
from vllm_doks import contracts
from vllm_doks.cold_start import AFTER_APPLY_LABEL, PROMOTION_GATE_LABEL
from vllm_doks.k8s.canary import CANARY_HEADER
from vllm_doks.k8s.smoke_test import (
    CANARY_SMOKE_TEST_LABEL,
    CURL_CONFIG_ANNOTATION,
    SmokeTest,
    SmokeTestProps,
)
from vllm_doks.promotion import (
    FAILED,
    MISSING,
    RUNNING,
    SUCCEEDED,
    UNKNOWN,
    JobState,
    promotion_problems,
)
from vllm_doks.validation import ValidationError


def rollout(weight: int = 10, promote: bool = False) -> tuple[cdk8s.Chart, list[Obj], SmokeTest]:
    """examples/rollout.py's chart at a canary step: stable ``vllm`` and canary
    ``vllm-green``, both serving ``qwen`` with the adapters ``sql`` and ``support``."""
    chart = load_example("rollout").Rollout(
        k8s_app(), "rollout", canary_weight=weight, promote=promote, finish=False
    )
    test = chart.canary_smoke_test
    assert isinstance(test, SmokeTest)
    return chart, list(cdk8s.Testing.synth(chart)), test


def job_of(objs: list[Obj], test: SmokeTest) -> Obj:
    (job,) = [o for o in objs if o["kind"] == "Job" and o["metadata"]["name"] == test.job_name]
    return job


def test_the_canary_job_tests_the_model_and_each_adapter_with_the_canary_header() -> None:
    _, objs, test = rollout()
    assert validate_objects(objs) == []
    job = job_of(objs, test)
    assert test.job_name.startswith("vllm-green-smoke-test-")
    assert job["metadata"]["labels"][CANARY_SMOKE_TEST_LABEL] == "vllm-green"
    template = job["spec"]["template"]
    pod = template["spec"]
    # One container per name the canary serves; each runs the one smoke script for its name.
    assert test.models == ("qwen", "sql", "support")
    assert [(c["name"], c["command"][5]) for c in pod["containers"]] == [
        ("smoke-test", "qwen"),
        ("lora-0", "sql"),
        ("lora-1", "support"),
    ]
    url = "http://cilium-gateway-vllm-gateway.vllm.svc:80/v1/chat/completions"
    assert {c["command"][4] for c in pod["containers"]} == {url}
    # The header: curl's default config file, projected from the pod's own annotation.
    annotation = template["metadata"]["annotations"][CURL_CONFIG_ANNOTATION]
    assert annotation == f'header = "{CANARY_HEADER}: true"\n'
    (curl_volume,) = [v for v in pod["volumes"] if "downwardAPI" in v]
    (item,) = curl_volume["downwardAPI"]["items"]
    assert item["path"] == contracts.CURL_DEFAULT_CONFIG_FILE
    assert item["fieldRef"]["fieldPath"] == f"metadata.annotations['{CURL_CONFIG_ANNOTATION}']"
    for container in pod["containers"]:
        env = {e["name"]: e["value"] for e in container["env"]}
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == curl_volume["name"]]
        assert env[contracts.CURL_HOME_ENV] == mount["mountPath"] and mount["readOnly"]
    # Its NetworkPolicy selects this Job's pods only.
    (policy,) = [
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == test.job_name
    ]
    assert policy["spec"]["podSelector"]["matchLabels"][CANARY_SMOKE_TEST_LABEL] == "vllm-green"


def test_one_job_for_every_step_of_a_canary() -> None:
    names = {rollout(weight=w)[2].job_name for w in (0, 10, 50, 100)}
    names.add(rollout(weight=100, promote=True)[2].job_name)
    assert len(names) == 1


def test_a_canary_smoke_test_keeps_its_finished_job() -> None:
    chart, _, _ = rollout()
    with pytest.raises(ValidationError) as err:
        SmokeTest(
            chart,
            "Short-lived",
            SmokeTestProps(
                endpoint=chart.node.find_child("Gateway"),
                pool=chart.node.find_child("vllm-green"),
                canary=True,
                ttl_seconds_after_finished=600,
            ),
        )
    assert [(p.field, p.value) for p in err.value.problems] == [("ttl_seconds_after_finished", 600)]


@needs_sh_curl
def test_the_jobs_commands_send_the_canary_header_for_each_name(
    openai: FakeOpenAI,
    key_file: Path,
    tmp_path: Path,
) -> None:
    _, objs, test = rollout()
    template = job_of(objs, test)["spec"]["template"]
    # What the downward API volume holds in the pod: the annotation's text.
    curl_home = tmp_path / "curl"
    curl_home.mkdir()
    (curl_home / contracts.CURL_DEFAULT_CONFIG_FILE).write_text(
        template["metadata"]["annotations"][CURL_CONFIG_ANNOTATION]
    )
    for container in template["spec"]["containers"]:
        command = list(container["command"])
        # The Gateway, which sends the canary header's requests to the canary: the fake
        # server; the API key Secret's file in the pod: a local one.
        command[4], command[8] = openai.url, str(key_file)
        env = {e["name"]: e["value"] for e in container["env"]}
        env |= {contracts.CURL_HOME_ENV: str(curl_home), "TMPDIR": str(tmp_path)}
        proc = subprocess.run(
            command,
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [(r["json"]["model"], r["canary"]) for r in openai.requests] == [
        ("qwen", "true"),
        ("sql", "true"),
        ("support", "true"),
    ]
    assert {r["authorization"] for r in openai.requests} == {f"Bearer {KEY}"}


def canary_job(tmp_path: Path, text: str, name: str) -> Obj:
    """The one canary smoke-test Job of the config ``text``'s output."""
    jobs = named(synth(tmp_path, config_from(tmp_path, text), name), "Job").values()
    (job,) = [j for j in jobs if CANARY_SMOKE_TEST_LABEL in j["metadata"]["labels"]]
    return job


def test_the_config_adds_the_canary_smoke_test_at_every_step(tmp_path: Path) -> None:
    names = set()
    for weight, extra in ((0, ""), (50, ""), (100, ", promoted: true")):
        job = canary_job(tmp_path, CANARY.format(weight=weight, extra=extra), f"dist-{weight}")
        assert job["metadata"]["labels"][CANARY_SMOKE_TEST_LABEL] == "vllm-canary"
        # The stable entry's route (/v1), the canary's served name.
        assert job["spec"]["template"]["spec"]["containers"][0]["command"][4:6] == [
            "http://cilium-gateway-vllm-gateway.vllm.svc:80/v1/chat/completions",
            "qwen",
        ]
        names.add(job["metadata"]["name"])
    assert len(names) == 1, "the steps and the promotion share one Job"
    # More canary replicas: the same pods, the same Job. Another context length: a changed
    # canary, so a new Job that runs again.
    more = CANARY.format(weight=10, extra="") + "    replicas: 2\n"
    assert canary_job(tmp_path, more, "dist-replicas")["metadata"]["name"] in names
    longer = CANARY.format(weight=10, extra="") + "    max_model_len: 8192\n"
    assert canary_job(tmp_path, longer, "dist-longer")["metadata"]["name"] not in names
    off = config_from(tmp_path, CANARY.format(weight=10, extra="") + "smoke_test: false\n")
    assert not [n for n in named(synth(tmp_path, off, "dist-off"), "Job") if "smoke-test" in n]


def test_the_canary_of_one_of_several_models_is_tested_on_its_stable_entrys_path(
    tmp_path: Path,
) -> None:
    text = """
models:
  - id: Qwen/Qwen2.5-7B-Instruct
    served_name: qwen
  - id: Qwen/Qwen2.5-0.5B-Instruct
    served_name: small
  - id: Qwen/Qwen2.5-7B-Instruct-1M
    served_name: qwen
    canary: {of: qwen, weight: 10}
"""
    job = canary_job(tmp_path, text, "dist")
    assert job["metadata"]["name"].startswith("qwen-canary-smoke-test-")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][4:6] == [
        "http://cilium-gateway-vllm-gateway.vllm.svc:80/qwen/v1/chat/completions",
        "qwen",
    ]


@pytest.mark.parametrize(
    ("state", "says"),
    [
        (MISSING, "does not exist: apply a canary step first"),
        (RUNNING, "has not finished: wait for it (kubectl -n vllm wait --for=condition=complete"),
        (FAILED, "failed (BackoffLimitExceeded): the canary did not answer; read kubectl -n"),
        (UNKNOWN, "could not be read (connection refused)"),
    ],
)
def test_each_unfinished_state_refuses_the_promotion_saying_what_to_do(
    state: str, says: str
) -> None:
    detail = {FAILED: "BackoffLimitExceeded", UNKNOWN: "connection refused"}.get(state, "")
    (problem,) = promotion_problems(
        [JobState("vllm", "vllm-green-smoke-test-1", state, detail)]
    ).items
    assert problem.value == "vllm/vllm-green-smoke-test-1"
    assert says in problem.expected
    assert "--skip-smoke-check" in problem.expected
    assert not promotion_problems([JobState("vllm", "j", SUCCEEDED)])


def terraform_manifests(tmp_path: Path, text: str) -> dict[str, Obj]:
    """Stack 2 via Terraform for the config ``text``: its kubernetes_manifest resources."""
    tmp_path.mkdir()
    from cdktf import App

    from vllm_doks.cloud.kubernetes_stack import (
        KubernetesObjectsStackProps,
        StackOneValues,
        VllmKubernetesStack,
    )
    from vllm_doks.config import InfraOutputs
    from vllm_doks.k8s.serving_chart import VllmServingChart

    config = config_from(tmp_path, text)
    examples = InfraOutputs.examples_for(config)

    def build(app: cdk8s.App, values: StackOneValues) -> None:
        VllmServingChart(app, "vllm", config, examples)

    outputs = VllmServingChart(cdk8s.App(), "vllm", config, examples).outputs
    app = App(outdir=str(tmp_path / "tf"))
    VllmKubernetesStack(app, "k8s", KubernetesObjectsStackProps(build_chart=build, outputs=outputs))
    app.synth()
    doc = json.loads((tmp_path / "tf" / "stacks" / "k8s" / "cdk.tf.json").read_text())
    return doc["resource"]["kubernetes_manifest"]  # type: ignore[no-any-return]


def test_terraform_promotes_the_route_only_after_the_canarys_smoke_test(tmp_path: Path) -> None:
    def addresses(manifests: dict[str, Obj]) -> tuple[str, str, set[str]]:
        (route,) = [a for a, m in manifests.items() if m["manifest"]["kind"] == "HTTPRoute"]
        (job,) = [a for a in manifests if a.startswith("job-vllm-canary-smoke-test-")]
        servers = {a for a, m in manifests.items() if m["manifest"]["kind"] == "Deployment"}
        return f"kubernetes_manifest.{route}", f"kubernetes_manifest.{job}", servers

    # A canary step: the smoke test goes through the route's header rule, so it comes last.
    step = terraform_manifests(tmp_path / "a", CANARY.format(weight=100, extra=""))
    route, job, servers = addresses(step)
    assert route in step[job.split(".")[1]]["depends_on"]
    assert job not in step[route.split(".")[1]]["depends_on"]

    # The promotion: the same Job (same address), now before the route, which waits for it.
    promoted = terraform_manifests(
        tmp_path / "b", CANARY.format(weight=100, extra=", promoted: true")
    )
    assert addresses(promoted)[1] == job
    gate = promoted[job.split(".")[1]]
    assert gate["wait"] == {"condition": [{"type": "Complete", "status": "True"}]}
    assert job in promoted[route.split(".")[1]]["depends_on"]
    assert route not in gate["depends_on"]
    # It still needs the pools it tests, and no pool waits for it.
    for server in servers:
        assert f"kubernetes_manifest.{server}" in gate["depends_on"]
        assert job not in promoted[server].get("depends_on", [])
    labels = gate["manifest"]["metadata"]["labels"]
    assert labels.get(PROMOTION_GATE_LABEL) == "true" and AFTER_APPLY_LABEL not in labels
