"""VllmPodMonitor: a Prometheus Operator PodMonitor scraping a worker pool's ``/metrics``.

Optional: nothing is emitted unless a chart instantiates it. It needs the Prometheus Operator
(``monitoring.coreos.com/v1`` PodMonitor CRD), e.g. from kube-prometheus-stack, and a
Prometheus whose ``podMonitorSelector`` matches the PodMonitor's labels: kube-prometheus-stack
selects ``release: <its Helm release>`` by default, hence the ``release`` label (see
:data:`vllm_doks.contracts.PROMETHEUS_RELEASE_LABEL`). Without a match no vLLM series exist,
and a KEDA query on them comes back empty, which KEDA treats as 0: nothing would scale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from constructs import Construct

from vllm_doks import contracts
from vllm_doks.k8s.bindings import monitoring_api
from vllm_doks.k8s.pool_addon import PoolAddOn
from vllm_doks.k8s.vllm_worker_pool import PORT_NAME, VllmWorkerPool
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_dns_label, check_dns_subdomain

if TYPE_CHECKING:
    from vllm_doks._imports.com.coreos import monitoring

PROMETHEUS_OPERATOR_API_VERSION = contracts.PROMETHEUS_OPERATOR_API_VERSION

#: Path of vLLM's Prometheus metrics (open without the API key: vLLM checks it on /v1 only).
METRICS_PATH = contracts.VLLM_METRICS_PATH

#: Label kube-prometheus-stack's Prometheus selects PodMonitors by (with its Helm defaults).
RELEASE_LABEL = contracts.PROMETHEUS_RELEASE_LABEL

# A Prometheus duration as the PodMonitor CRD accepts it, without the bare "0".
_DURATION = re.compile(
    r"^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$"
)
_DURATION_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def duration_ms(value: object) -> int | None:
    """Milliseconds of a Prometheus duration such as ``"15s"`` or ``"1m30s"``; ``None`` when
    it is not one (or is zero)."""
    if not isinstance(value, str) or not value:
        return None
    match = _DURATION.match(value)
    if match is None:
        return None
    total = sum(int(g) * f for g, f in zip(match.groups(), _DURATION_MS, strict=True) if g)
    return total or None


def check_label_value(problems: Problems, field_name: str, value: object) -> bool:
    return problems.check(
        isinstance(value, str) and len(value) <= 63 and bool(_LABEL_VALUE.match(value)),
        field_name,
        value,
        "must be a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit",
    )


@dataclass(frozen=True, kw_only=True)
class VllmPodMonitorProps:
    """Props of :class:`VllmPodMonitor`."""

    pool: VllmWorkerPool
    """The worker pool whose pods to scrape. Required."""
    interval: str = "15s"
    """Scrape interval, a Prometheus duration. Default ``"15s"``: the autoscaler's queries
    and the dashboard's rates need a few samples per minute."""
    scrape_timeout: str | None = None
    """Scrape timeout, at most ``interval``. Default ``None``: Prometheus' global one."""
    release: str | None = contracts.DEFAULT_PROMETHEUS_RELEASE
    """Value of the ``release`` label on the PodMonitor. kube-prometheus-stack's Prometheus
    selects PodMonitors by its Helm release label (``release: <release name>``) unless it is
    installed with ``prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false``;
    set this to your release's name. ``None`` for no such label (a Prometheus that selects
    every PodMonitor). Default ``"kube-prometheus-stack"`` (the chart's documented release
    name)."""
    prometheus_namespace: str | None = None
    """Namespace of the Prometheus pods, e.g. ``"monitoring"``. When given and the pool has
    its ingress NetworkPolicy, the namespace must be in the pool's ``allow_from_namespaces``,
    or the policy would drop the scrapes: that is checked. ``None`` (default) skips the
    check."""
    name: str | None = None
    """Name of the PodMonitor. Default: the Deployment's name."""

    def problems(self) -> Problems:
        problems = Problems()
        problems.check(
            isinstance(self.pool, VllmWorkerPool), "pool", self.pool, "must be a VllmWorkerPool"
        )
        interval = duration_ms(self.interval)
        problems.check(
            interval is not None,
            "interval",
            self.interval,
            "must be a Prometheus duration such as '15s', '30s' or '1m'",
        )
        if self.scrape_timeout is not None:
            timeout = duration_ms(self.scrape_timeout)
            if problems.check(
                timeout is not None,
                "scrape_timeout",
                self.scrape_timeout,
                "must be a Prometheus duration such as '10s', or None",
            ):
                assert timeout is not None
                problems.check(
                    interval is None or timeout <= interval,
                    "scrape_timeout",
                    self.scrape_timeout,
                    f"must not exceed interval ({self.interval}); the Prometheus Operator "
                    f"rejects the PodMonitor otherwise",
                )
        if self.release is not None:
            check_label_value(problems, "release", self.release)
        namespace_ok = self.prometheus_namespace is not None and check_dns_label(
            problems, "prometheus_namespace", self.prometheus_namespace
        )
        if (
            namespace_ok
            and isinstance(self.pool, VllmWorkerPool)
            and self.pool.props.network_policy
        ):
            allowed = self.pool.props.allow_from_namespaces
            metrics_only = self.pool.props.metrics_from_namespaces
            problems.check(
                self.prometheus_namespace in allowed or self.prometheus_namespace in metrics_only,
                "prometheus_namespace",
                self.prometheus_namespace,
                f"is in neither the pool's metrics_from_namespaces {metrics_only!r} nor its "
                f"allow_from_namespaces {allowed!r}, so the pool's network policies would drop "
                f"Prometheus' scrapes of port {PORT_NAME!r}; add it to metrics_from_namespaces "
                f"(GET {METRICS_PATH} only, Cilium) or allow_from_namespaces (every path)",
            )
        if self.name is not None:
            check_dns_subdomain(problems, "name", self.name)
        return problems


@takes_props(VllmPodMonitorProps)
class VllmPodMonitor(PoolAddOn[VllmPodMonitorProps]):
    """A Prometheus Operator ``PodMonitor`` for the ``/metrics`` of a :class:`VllmWorkerPool`.

    Selects the pool's pods by its selector labels in the pool's namespace and scrapes the
    container port named ``http`` (the vLLM port) at ``/metrics``, which vLLM serves without
    the API key. The pool's NetworkPolicy admits only the Gateway by default: list
    Prometheus' namespace in the pool's ``metrics_from_namespaces`` (``GET /metrics`` only,
    Cilium) or ``allow_from_namespaces`` (every path), and pass it as
    ``prometheus_namespace`` to have that checked.
    """

    def __init__(self, scope: Construct, id: str, props: VllmPodMonitorProps) -> None:
        super().__init__(scope, id, props)
        # Imported here, not at the top: see VllmAutoscaler (a synth without a PodMonitor
        # should not load the binding's jsii assembly).
        from vllm_doks._imports.com.coreos import monitoring

        pool = self.pool
        self.name = props.name or pool.deployment_name
        labels = pool.selector_labels
        if props.release is not None:
            labels[RELEASE_LABEL] = props.release

        self.pod_monitor: monitoring.PodMonitor = self._add_resource(
            monitoring_api.PodMonitor,
            "PodMonitor",
            monitoring_api.PodMonitorSpec(
                selector=monitoring_api.PodMonitorSpecSelector(match_labels=pool.selector_labels),
                namespace_selector=monitoring_api.PodMonitorSpecNamespaceSelector(
                    match_names=[pool.namespace]
                ),
                pod_metrics_endpoints=[
                    monitoring_api.PodMonitorSpecPodMetricsEndpoints(
                        port=PORT_NAME,
                        path=METRICS_PATH,
                        scheme=monitoring.PodMonitorSpecPodMetricsEndpointsScheme.HTTP,
                        interval=props.interval,
                        scrape_timeout=props.scrape_timeout,
                    )
                ],
            ),
            labels=labels,
        )
