"""VllmAutoscaler: a KEDA ScaledObject scaling a worker pool on vLLM's queue metrics.

Optional: nothing is emitted unless a chart instantiates it. It needs KEDA (v2.x, the
``keda.sh/v1alpha1`` ScaledObject CRD) and a Prometheus that scrapes the pool's ``/metrics``
(for instance through :class:`~vllm_doks.k8s.pod_monitor.VllmPodMonitor`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from constructs import Construct

from vllm_doks import contracts
from vllm_doks.k8s.bindings import keda_api
from vllm_doks.k8s.pool_addon import PoolAddOn
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_dns_subdomain, check_int_range, check_min_max

if TYPE_CHECKING:
    from vllm_doks._imports.sh import keda

KEDA_API_VERSION = contracts.KEDA_API_VERSION

#: vLLM's gauges of requests queued for, and in, the engine's batch (v0.18, v1 engine;
#: labels ``model_name`` and ``engine``): :mod:`vllm_doks.contracts`.
WAITING_METRIC = contracts.VLLM_METRIC_REQUESTS_WAITING
RUNNING_METRIC = contracts.VLLM_METRIC_REQUESTS_RUNNING

#: Longest Deployment name whose pod names Kubernetes never shortens: a generated name's base
#: (``<deployment>-<hash of up to 10>-``) is cut to 58 characters.
MAX_POOL_NAME = 46

_PROMETHEUS_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s\"]*)?$")


def pool_pod_regex(pool: VllmWorkerPool) -> str:
    """PromQL regex (fully anchored by PromQL) of the names of the pool's pods.

    A Deployment's pods are named ``<deployment>-<pod-template-hash>-<suffix>``, so
    ``vllm-[a-z0-9]+-[a-z0-9]+`` matches the pods of Deployment ``vllm`` and not those of a
    Deployment ``vllm-large`` in the same namespace (one more ``-`` segment). Kubernetes
    shortens the pod names of Deployments named longer than :data:`MAX_POOL_NAME` characters,
    which would then match nothing: :class:`VllmAutoscalerProps` refuses such pools.
    """
    # The name is a DNS label (letters, digits, '-'): nothing to escape, and a backslash
    # escape such as re.escape's "\\-" would be an error inside a PromQL string.
    return f"{pool.deployment_name}-[a-z0-9]+-[a-z0-9]+"


def pool_metric_query(pool: VllmWorkerPool, metric: str) -> str:
    """``sum(<metric>{namespace="<ns>",pod=~"<pool pods>"})``: the pool-wide total."""
    return f'sum({metric}{{namespace="{pool.namespace}",pod=~"{pool_pod_regex(pool)}"}})'


@dataclass(frozen=True, kw_only=True)
class VllmAutoscalerProps:
    """Props of :class:`VllmAutoscaler`."""

    pool: VllmWorkerPool
    """The worker pool to scale. Required."""
    prometheus_server_address: str
    """URL of the Prometheus KEDA queries, e.g.
    ``"http://prometheus-operated.monitoring.svc:9090"`` (the Service the Prometheus Operator
    creates for its Prometheus). Required."""
    min_replicas: int = 1
    """Fewest replicas (KEDA ``minReplicaCount``), at least 1. Default 1. KEDA allows 0, but a
    pool scaled to zero could never wake: the triggers read vLLM's own queue gauges, which
    exist only while a vLLM pod is scraped, so with no pods the query is empty and never
    crosses ``activationThreshold`` (see
    :data:`vllm_doks.contracts.KEDA_MIN_REPLICAS_WITH_POD_METRICS`)."""
    max_replicas: int = 2
    """Most replicas (KEDA ``maxReplicaCount``), at least 1 and at least ``min_replicas``.
    With the pool's default required anti-affinity each replica needs its own GPU node, so
    this must not exceed the GPU node pool's (maximum) size; see ``gpu_node_count``.
    Default 2."""
    waiting_threshold: int = 5
    """Target number of waiting requests (``vllm:num_requests_waiting``) per replica: KEDA
    sizes the pool to ``ceil(total waiting / waiting_threshold)`` replicas (an
    ``AverageValue`` target), within the bounds. Requests wait when vLLM's batch or KV cache
    is full, so a small number means the replicas are saturated. Default 5."""
    running_threshold: int | None = None
    """Target number of running requests (``vllm:num_requests_running``) per replica, as a
    second trigger (KEDA scales to the larger of the two). Useful to scale before requests
    start to queue; a good value depends on the model, the GPU and ``--max-num-seqs``, so it
    has no default. ``None`` (default) for no second trigger."""
    activation_threshold: int = 0
    """KEDA ``activationThreshold`` of the waiting trigger: only matters with
    ``min_replicas=0``, where the pool wakes from zero once more requests than this wait.
    Default 0."""
    cooldown_period_seconds: int = 300
    """KEDA ``cooldownPeriod``: how long the triggers must be inactive before KEDA scales to
    zero. Only used with ``min_replicas=0``; scaling down between 1 and the maximum follows
    ``scale_down_stabilization_seconds``. Default 300 (KEDA's)."""
    scale_down_stabilization_seconds: int = 300
    """Stabilization window of the HPA KEDA creates: the pool shrinks only to the largest
    size recommended over this window, so a short lull does not drop a replica (and its warm
    KV cache) that a minute later would take minutes to come back. Scale-down also removes at
    most one pod per minute. Default 300 (Kubernetes')."""
    polling_interval_seconds: int = 30
    """KEDA ``pollingInterval``: how often KEDA queries Prometheus. Default 30 (KEDA's)."""
    gpu_node_count: int | None = None
    """Number of GPU nodes the pool can use (the node pool's size, or its autoscaling
    maximum). When given and the pool's anti-affinity is ``"required"``, a ``max_replicas``
    above it is an error: the replicas beyond it would stay Pending. ``None`` (default) skips
    the check."""
    trigger_authentication_name: str | None = None
    """A KEDA ``TriggerAuthentication`` in the pool's namespace for a Prometheus that needs
    credentials. ``None`` (default) for an in-cluster Prometheus without authentication."""
    name: str | None = None
    """Name of the ScaledObject (KEDA names its HPA ``keda-hpa-<name>``). Default: the
    Deployment's name."""

    def problems(self) -> Problems:
        problems = Problems()
        problems.check(
            isinstance(self.pool, VllmWorkerPool),
            "pool",
            self.pool,
            "must be a VllmWorkerPool",
        )
        if isinstance(self.pool, VllmWorkerPool):
            problems.check(
                len(self.pool.deployment_name) <= MAX_POOL_NAME,
                "pool",
                self.pool.deployment_name,
                f"must be a pool whose name has at most {MAX_POOL_NAME} characters: Kubernetes "
                f"shortens the pod names of longer ones, and the queries select the pool's "
                f"pods by name",
            )
        problems.check(
            isinstance(self.prometheus_server_address, str)
            and bool(_PROMETHEUS_URL.match(self.prometheus_server_address)),
            "prometheus_server_address",
            self.prometheus_server_address,
            "must be an http(s) URL of Prometheus, e.g. "
            "'http://prometheus-operated.monitoring.svc:9090'",
        )
        check_min_max(
            problems, "min_replicas", self.min_replicas, "max_replicas", self.max_replicas, 0
        )
        if isinstance(self.min_replicas, int) and not isinstance(self.min_replicas, bool):
            problems.check(
                self.min_replicas >= contracts.KEDA_MIN_REPLICAS_WITH_POD_METRICS,
                "min_replicas",
                self.min_replicas,
                "must be at least 1: the triggers read vLLM's queue metrics, which exist only "
                "while a vLLM pod runs, so a pool scaled to zero would never be woken (KEDA "
                "activates from zero only when the query returns more than activationThreshold)",
            )
        problems.check(
            not isinstance(self.max_replicas, int) or self.max_replicas >= 1,
            "max_replicas",
            self.max_replicas,
            "must be at least 1 (KEDA's maxReplicaCount)",
        )
        check_int_range(problems, "waiting_threshold", self.waiting_threshold, 1)
        if self.running_threshold is not None:
            check_int_range(problems, "running_threshold", self.running_threshold, 1)
        check_int_range(problems, "activation_threshold", self.activation_threshold, 0)
        check_int_range(problems, "cooldown_period_seconds", self.cooldown_period_seconds, 0)
        check_int_range(
            problems,
            "scale_down_stabilization_seconds",
            self.scale_down_stabilization_seconds,
            0,
            3600,
        )
        check_int_range(problems, "polling_interval_seconds", self.polling_interval_seconds, 1)
        node_count_ok = self.gpu_node_count is not None and check_int_range(
            problems, "gpu_node_count", self.gpu_node_count, 1
        )
        if (
            node_count_ok
            and isinstance(self.pool, VllmWorkerPool)
            and self.pool.props.anti_affinity == "required"
            and isinstance(self.max_replicas, int)
        ):
            assert self.gpu_node_count is not None
            problems.check(
                self.max_replicas <= self.gpu_node_count,
                "max_replicas",
                self.max_replicas,
                f"must not exceed gpu_node_count ({self.gpu_node_count}): the pool's "
                f"required anti-affinity puts one replica per GPU node, so the replicas "
                f"beyond it would stay Pending. Lower max_replicas, or raise the GPU node "
                f"pool's (autoscaling maximum) size to at least {self.max_replicas}",
            )
        if self.trigger_authentication_name is not None:
            check_dns_subdomain(
                problems, "trigger_authentication_name", self.trigger_authentication_name
            )
        if self.name is not None:
            check_dns_subdomain(problems, "name", self.name)
        return problems


@takes_props(VllmAutoscalerProps)
class VllmAutoscaler(PoolAddOn[VllmAutoscalerProps]):
    """A KEDA ``ScaledObject`` sizing a :class:`VllmWorkerPool` on vLLM's queue depth.

    KEDA queries Prometheus for the pool-wide sum of ``vllm:num_requests_waiting`` (and,
    with ``running_threshold``, ``vllm:num_requests_running``) over the pool's pods, and
    drives an HPA on the pool's Deployment between ``min_replicas`` and ``max_replicas``.

    The Deployment keeps its own ``replicas`` field (the pool's ``replicas`` prop): once KEDA
    manages the Deployment, each re-apply of the manifests resets the replica count to that
    value until the HPA corrects it, which can drop warm replicas. Set the pool's
    ``replicas`` equal to ``min_replicas`` (and use ``min_replicas`` to change the floor),
    or have the deploy tool ignore ``spec.replicas`` of the Deployment.

    Each new replica needs a GPU: with the pool's default required anti-affinity, one GPU
    node per replica, so the GPU node pool must be able to grow to ``max_replicas`` nodes
    (pass ``gpu_node_count`` to have that checked).
    """

    def __init__(self, scope: Construct, id: str, props: VllmAutoscalerProps) -> None:
        super().__init__(scope, id, props)
        # Imported here, not at the top: loading the binding's jsii assembly costs a default
        # synth (which has no autoscaler) more than the rest of its Kubernetes objects.
        from vllm_doks._imports.sh import keda

        pool = self.pool
        self.name = props.name or pool.deployment_name
        self.min_replicas = props.min_replicas
        self.max_replicas = props.max_replicas
        self.waiting_query = pool_metric_query(pool, WAITING_METRIC)
        self.running_query = pool_metric_query(pool, RUNNING_METRIC)

        triggers = [
            self._trigger(
                "requests-waiting",
                self.waiting_query,
                props.waiting_threshold,
                props.activation_threshold,
            )
        ]
        if props.running_threshold is not None:
            triggers.append(
                self._trigger("requests-running", self.running_query, props.running_threshold, None)
            )
        behavior = keda.ScaledObjectSpecAdvancedHorizontalPodAutoscalerConfigBehavior
        scale_down = keda.ScaledObjectSpecAdvancedHorizontalPodAutoscalerConfigBehaviorScaleDown
        policy = keda.ScaledObjectSpecAdvancedHorizontalPodAutoscalerConfigBehaviorScaleDownPolicies
        self.scaled_object: keda.ScaledObject = self._add_resource(
            keda_api.ScaledObject,
            "ScaledObject",
            keda_api.ScaledObjectSpec(
                scale_target_ref=keda_api.ScaledObjectSpecScaleTargetRef(
                    api_version="apps/v1",
                    kind="Deployment",
                    name=pool.deployment_name,
                ),
                min_replica_count=props.min_replicas,
                max_replica_count=props.max_replicas,
                polling_interval=props.polling_interval_seconds,
                cooldown_period=props.cooldown_period_seconds,
                advanced=keda_api.ScaledObjectSpecAdvanced(
                    horizontal_pod_autoscaler_config=keda_api.ScaledObjectSpecAdvancedHorizontalPodAutoscalerConfig(
                        behavior=behavior(
                            scale_down=scale_down(
                                stabilization_window_seconds=props.scale_down_stabilization_seconds,
                                policies=[policy(type="Pods", value=1, period_seconds=60)],
                            )
                        ),
                    ),
                ),
                triggers=triggers,
            ),
        )

    def _trigger(
        self, name: str, query: str, threshold: int, activation: int | None
    ) -> keda.ScaledObjectSpecTriggers:

        props = self.props
        metadata = {
            "serverAddress": props.prometheus_server_address,
            "query": query,
            "threshold": str(threshold),
        }
        if activation is not None:
            metadata["activationThreshold"] = str(activation)
        return keda_api.ScaledObjectSpecTriggers(
            type="prometheus",
            name=name,
            metric_type="AverageValue",
            metadata=metadata,
            authentication_ref=(
                keda_api.ScaledObjectSpecTriggersAuthenticationRef(
                    name=props.trigger_authentication_name,
                )
                if props.trigger_authentication_name is not None
                else None
            ),
        )
