"""Against a real kube-apiserver 1.34: every canary step applies the canary's smoke-test Job,
and a promotion (``examples/rollout.py --promote``, or the app's synth of ``promoted: true``)
asks the cluster about that Job and writes the promoting output only once it succeeded. There
is no kubelet, so the test ends the Job as the Job controller would (``finish_job``: the
status subresource)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from realtier import (
    apply,
    cleanup,
    finish_job,
    get_json,
    prepare_namespace,
    user_environment,
)
from support import run_main

from vllm_doks.cold_start import AFTER_APPLY_LABEL, PROMOTION_GATE_LABEL
from vllm_doks.k8s.smoke_test import CANARY_SMOKE_TEST_LABEL
from vllm_doks.rehearsal import ControlPlane
from vllm_doks.removed_objects import manifest_objects

pytestmark = pytest.mark.real

NS = "promote"


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    prepare_namespace(control_plane, NS)
    yield NS
    cleanup(control_plane, NS, pvs=(f"{NS}.vllm-models-pv",))


@pytest.fixture
def user_kubectl(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app runs in this process: give it the user's shell (kubectl, kubeconfig)."""
    for key in ("KUBECONFIG", "PATH"):
        monkeypatch.setenv(key, user_environment(control_plane)[key])


def rollout(cp: ControlPlane, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``examples/rollout.py`` as a user runs it: kubectl on PATH, the cluster's kubeconfig."""
    env = user_environment(cp)
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "rollout.py"), str(out), *options,
         "--namespace", NS],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def smoke_job(out: Path) -> str:
    """The canary's smoke-test Job in an output (``<pool>-smoke-test-<hash>``; the app's own
    smoke test is ``smoke-test-<hash>``)."""
    (job,) = [r.name for r in manifest_objects(out) if r.kind == "Job" and "-smoke-test-" in r.name]
    return job


PROMOTE = ("--canary-weight", "100", "--promote")


def test_promotion_waits_for_the_canarys_smoke_test(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp = control_plane
    promoted = tmp_path / "promoted"

    # Nothing applied yet: the smoke Job does not exist, so there is nothing to promote.
    refused = rollout(cp, promoted, *PROMOTE)
    assert refused.returncode != 0
    assert "does not exist: apply a canary step first" in refused.stderr
    assert not promoted.exists(), "nothing is written when the promotion is refused"

    # The canary at 0 %: the Job is applied with its pool, and is still running.
    step = tmp_path / "canary-0"
    assert rollout(cp, step, "--canary-weight", "0").returncode == 0
    apply(cp, step)
    job = smoke_job(step)
    assert job.startswith("vllm-green-smoke-test-")
    live = get_json(cp, f"job/{job}", "-n", NS)
    assert live["metadata"]["labels"][CANARY_SMOKE_TEST_LABEL] == "vllm-green"
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == [
        "smoke-test",
        "lora-0",
        "lora-1",
    ]
    refused = rollout(cp, promoted, *PROMOTE)
    assert refused.returncode != 0
    assert f"{NS}/{job}" in refused.stderr and "has not finished" in refused.stderr
    assert f"kubectl -n {NS} wait --for=condition=complete job/{job}" in refused.stderr
    assert not promoted.exists()

    # Each later step keeps the same Job (same canary, same name): nothing runs twice.
    for weight in ("10", "50", "100"):
        out = tmp_path / f"canary-{weight}"
        assert rollout(cp, out, "--canary-weight", weight).returncode == 0
        assert smoke_job(out) == job
        apply(cp, out)

    # The smoke test failed: refused, with the logs to read; skipping is explicit only.
    finish_job(cp, NS, job, succeeded=False)
    refused = rollout(cp, promoted, *PROMOTE)
    assert refused.returncode != 0
    assert "failed (BackoffLimitExceeded" in refused.stderr
    assert f"kubectl -n {NS} logs job/{job} --all-containers" in refused.stderr
    assert "--skip-smoke-check" in refused.stderr
    assert not promoted.exists()
    skipped = tmp_path / "skipped"
    assert rollout(cp, skipped, *PROMOTE, "--skip-smoke-check").returncode == 0
    assert skipped.is_dir()

    # Run it again (delete the failed Job, apply the step) and let it succeed: promoted.
    cp.kubectl("-n", NS, "delete", "job", job, "--wait=true")
    apply(cp, tmp_path / "canary-100")
    finish_job(cp, NS, job, succeeded=True)
    allowed = rollout(cp, promoted, *PROMOTE)
    assert allowed.returncode == 0, allowed.stderr
    apply(cp, promoted)
    route = get_json(cp, "httproute/vllm-route", "-n", NS)
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["vllm-green"]
    # The promoted output still holds the same (succeeded) Job: applying it reran nothing.
    assert smoke_job(promoted) == job
    live = get_json(cp, f"job/{job}", "-n", NS)
    assert {c["type"] for c in live["status"]["conditions"]} == {"SuccessCriteriaMet", "Complete"}
    # Only its labels changed: it gates the promotion (Terraform's order) instead of coming last.
    assert live["metadata"]["labels"].get(PROMOTION_GATE_LABEL) == "true"
    assert AFTER_APPLY_LABEL not in live["metadata"]["labels"]


CONFIG = """
namespace: {ns}
models:
  - id: Qwen/Qwen2.5-7B-Instruct
    served_name: qwen
  - id: Qwen/Qwen2.5-7B-Instruct-1M
    served_name: qwen
    canary: {{of: vllm, weight: 100{extra}}}
"""


def test_the_apps_synth_of_a_promotion_waits_for_the_smoke_test(
    control_plane: ControlPlane, user_kubectl: None, tmp_path: Path
) -> None:
    cp, ns = control_plane, "promote-config"
    prepare_namespace(cp, ns)
    try:

        def synth(name: str, extra: str, *flags: str) -> tuple[int, str, Path]:
            config = tmp_path / f"{name}.yaml"
            config.write_text(CONFIG.format(ns=ns, extra=extra))
            out = tmp_path / name
            result = run_main(
                tmp_path, "synth", "--layer", "k8s", "--config", str(config),
                "--k8s-outdir", str(out), *flags,
            )  # fmt: skip
            return result.returncode, result.stderr, out

        rc, err, step = synth("canary-100", "")
        assert rc == 0, err
        apply(cp, step)
        job = smoke_job(step)
        assert job.startswith("vllm-canary-smoke-test-")

        rc, err, promoted = synth("promoted", ", promoted: true")
        assert rc == 1
        assert f"{ns}/{job}" in err and "has not finished" in err
        assert "nothing was written" in err and not promoted.exists()
        rc, _, skipped = synth("skipped", ", promoted: true", "--skip-smoke-check")
        assert rc == 0 and skipped.is_dir()

        finish_job(cp, ns, job, succeeded=True)
        rc, err, promoted = synth("promoted", ", promoted: true")
        assert rc == 0, err
        assert smoke_job(promoted) == job
        apply(cp, promoted)
        route = get_json(cp, "httproute/vllm-route", "-n", ns)
        assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["vllm-canary"]
    finally:
        cleanup(cp, ns, pvs=(f"{ns}.vllm-models-pv",))
