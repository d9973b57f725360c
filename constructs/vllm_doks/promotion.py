"""The promotion gate: a canary leaves the stable pool behind only after its smoke test passed.

Every canary step's output holds the canary's smoke-test Job
(:class:`~vllm_doks.k8s.smoke_test.SmokeTest` with ``canary=True``: the model and each adapter
through the Gateway with the canary header), named after the canary's pod template. Before
the output that promotes is written, :func:`require_smoke_tests_passed` asks the cluster
(``kubectl get job -o json``, the user's kubeconfig) about each of those Jobs and refuses,
with what to run, unless each one succeeded: a missing Job (the canary step was never
applied, or the canary changed since, which renames its Job), a failed one and one still
running all stop the promotion. Skipping the check is the caller's explicit choice
(``--skip-smoke-check``). Two callers: ``examples/rollout.py --promote`` (the Python API), and
the app's synth of a configuration with ``canary: {..., promoted: true}``
(:func:`promoted_canary_smoke_tests`), both before anything is written.

Job states from the Job's ``status.conditions`` (Kubernetes 1.34 batch/v1): ``Complete`` is
success; ``Failed``, or ``FailureTarget`` (set when the Job controller decided the Job fails,
before its pods are gone), is failure; anything else is still running.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.validation import Problems

SUCCEEDED = "succeeded"
FAILED = "failed"
RUNNING = "running"
MISSING = "missing"
UNKNOWN = "unknown"

#: Option (examples/rollout.py, the app) that promotes without asking the cluster.
SKIP_OPTION = "--skip-smoke-check"


@dataclass(frozen=True)
class JobState:
    """What the cluster says about one smoke-test Job."""

    namespace: str
    name: str
    state: str
    """``succeeded``, ``failed``, ``running``, ``missing`` or ``unknown`` (kubectl failed)."""
    detail: str = ""
    """The failed condition's reason and message, or kubectl's error."""


def job_state(namespace: str, name: str, kubectl: Sequence[str] = ("kubectl",)) -> JobState:
    """Ask the cluster (``kubectl -n <namespace> get job <name> -o json``) for a Job's state."""
    try:
        proc = subprocess.run(
            [*kubectl, "-n", namespace, "get", "job", name, "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as err:  # no kubectl on PATH
        return JobState(namespace, name, UNKNOWN, f"{kubectl[0]}: {err.strerror}")
    if proc.returncode != 0:
        # kubectl's last line says why, e.g. 'Error from server (NotFound): jobs.batch "<name>"
        # not found' or 'The connection to the server ... was refused ...'.
        error = (proc.stderr.strip().splitlines() or [f"kubectl exit {proc.returncode}"])[-1]
        return JobState(namespace, name, MISSING if "(NotFound)" in error else UNKNOWN, error)
    status = json.loads(proc.stdout).get("status") or {}
    true = {c.get("type"): c for c in status.get("conditions") or () if c.get("status") == "True"}
    if "Complete" in true:
        return JobState(namespace, name, SUCCEEDED)
    for kind in ("Failed", "FailureTarget"):
        if kind in true:
            reason = f"{true[kind].get('reason', '')}: {true[kind].get('message', '')}"
            return JobState(namespace, name, FAILED, reason.strip(": "))
    return JobState(namespace, name, RUNNING)


def promotion_problems(states: Iterable[JobState]) -> Problems:
    """A problem for each smoke-test Job that did not succeed, saying what to run."""
    problems = Problems(where="promotion")
    for s in states:
        job = f"job/{s.name}"
        logs = f"kubectl -n {s.namespace} logs {job} --all-containers"
        wait = f"kubectl -n {s.namespace} wait --for=condition=complete {job} --timeout=30m"
        advice = {
            MISSING: "does not exist: apply a canary step first (a changed canary is a new Job "
            f"under a new name), then wait for it: {wait}",
            FAILED: f"failed ({s.detail}): the canary did not answer; read {logs}, fix the "
            "canary and apply its step again (or roll back)",
            RUNNING: f"has not finished: wait for it ({wait}) and promote again",
            UNKNOWN: f"could not be read ({s.detail})",
        }
        if s.state != SUCCEEDED:
            problems.add(
                "smoke test",
                f"{s.namespace}/{s.name}",
                f"must have succeeded before the promotion; the Job {advice[s.state]}. "
                f"Promoting without it needs {SKIP_OPTION}",
            )
    return problems


def require_smoke_tests_passed(
    jobs: Iterable[tuple[str, str]], kubectl: Sequence[str] = ("kubectl",)
) -> None:
    """Raise :class:`~vllm_doks.validation.ValidationError` unless each ``(namespace, Job
    name)`` succeeded on the cluster; every Job that did not is named at once."""
    promotion_problems(job_state(ns, name, kubectl) for ns, name in jobs).raise_if_any()


def promoted_canary_smoke_tests(
    config: ArchitectureConfig, infra: InfraOutputs
) -> list[tuple[str, str]]:
    """``(namespace, Job name)`` of the smoke test of each canary that ``config`` promotes
    (as the serving chart names them for ``infra``); empty when it promotes none, or runs no
    smoke tests (``smoke_test: false``)."""
    promoted = {m.name for m in config.served_models() if m.canary and m.canary.promoted}
    if not promoted:
        return []
    import cdk8s

    from vllm_doks.k8s.serving_chart import CHART_NAME, VllmServingChart

    chart = VllmServingChart(cdk8s.App(), CHART_NAME, config, infra)
    return [
        (test.namespace, test.job_name)
        for test in chart.canary_smoke_tests
        if test.pool_name in promoted
    ]
