"""ProbeTimings: when Kubernetes checks vLLM's ``/health`` and how patient it is."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache

from cdk8s_plus_28 import k8s

from vllm_doks import contracts
from vllm_doks.k8s import kube
from vllm_doks.k8s.values import int_or_string
from vllm_doks.validation import Problems, check_int_range


@dataclass(frozen=True, kw_only=True)
class ProbeTimings:
    """Timings of the startup, readiness and liveness probes (all ``GET /health``).

    The defaults are the seed's. The startup probe gives vLLM
    ``startup_initial_delay_seconds + startup_period_seconds * startup_failure_threshold``
    seconds (240 by default) to load the model before it is restarted; raise
    ``startup_failure_threshold`` for large models. That clock starts only once the model is
    on the share, because the pod's init container waits for the download to finish.
    Readiness and liveness checks begin after the startup probe has succeeded.
    """

    startup_initial_delay_seconds: int = 120
    """Seconds before the first startup check. Default 120."""
    startup_period_seconds: int = 10
    """Seconds between startup checks. Default 10."""
    startup_failure_threshold: int = 12
    """Failed startup checks before the container is restarted. Default 12."""
    readiness_period_seconds: int = 5
    """Seconds between readiness checks; a failing pod leaves the Service. Default 5."""
    liveness_period_seconds: int = 10
    """Seconds between liveness checks. Default 10."""
    liveness_failure_threshold: int = 3
    """Failed liveness checks before the container is restarted. Default 3."""

    @property
    def startup_budget_seconds(self) -> int:
        """Longest time vLLM may take to become healthy before it is restarted."""
        return (
            self.startup_initial_delay_seconds
            + self.startup_period_seconds * self.startup_failure_threshold
        )

    def problems(self, prefix: str = "probes.") -> Problems:
        problems = Problems()
        for f in fields(self):
            low = 0 if f.name.endswith("initial_delay_seconds") else 1
            check_int_range(problems, prefix + f.name, getattr(self, f.name), low)
        return problems

    def startup_probe(self, port: str) -> k8s.Probe:
        return kube.Probe(
            http_get=_health(port),
            initial_delay_seconds=self.startup_initial_delay_seconds,
            period_seconds=self.startup_period_seconds,
            failure_threshold=self.startup_failure_threshold,
        )

    def readiness_probe(self, port: str) -> k8s.Probe:
        return kube.Probe(http_get=_health(port), period_seconds=self.readiness_period_seconds)

    def liveness_probe(self, port: str) -> k8s.Probe:
        return kube.Probe(
            http_get=_health(port),
            period_seconds=self.liveness_period_seconds,
            failure_threshold=self.liveness_failure_threshold,
        )


@cache  # an immutable struct; see pod_security.py on why factories are cached
def _health(port: str) -> k8s.HttpGetAction:
    # A named port: the probes follow the container port if it ever changes.
    return kube.HttpGetAction(path=contracts.VLLM_HEALTH_PATH, port=int_or_string(port))
