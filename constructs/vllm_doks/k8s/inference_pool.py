"""VllmInferencePool: a Gateway API Inference Extension InferencePool for a worker pool.

For clusters whose gateway implements the Gateway API Inference Extension, an HTTPRoute can
name an ``InferencePool`` (``inference.networking.k8s.io/v1``) as its backend instead of a
Service: for every request the gateway asks the pool's endpoint picker (EPP, an ext-proc
gRPC service) which pod to use, and the EPP picks by queue depth, KV-cache usage and prefix
cache affinity from the pods' ``/metrics``. ``GatewayEndpoint.route_to(pool,
backend=inference_pool)`` emits that backendRef.

Which gateways: implementations of the Inference Extension, e.g. Envoy Gateway (with Envoy
AI Gateway), kgateway/agentgateway, Istio and GKE's Gateway. Cilium's Gateway API
implementation, the one DOKS ships, has no released InferencePool support (proposed in
cilium/cilium#48813, still open, aimed at Cilium 1.20): there the HTTPRoute would not
resolve its backend. On DOKS use :class:`~vllm_doks.k8s.prefix_router.PrefixAwareRouter`
(any Gateway API implementation, a plain Service backend) for cache-aware routing, or the
default round-robin Service backend.

What is emitted: the InferencePool (``selector.matchLabels`` = the pool's pod labels,
``targetPorts`` = the vLLM port, ``endpointPickerRef`` = the EPP Service and its gRPC port
9002), and the EPP: Deployment (one replica; several need leader election), Service (gRPC
9002 with ``appProtocol: http2``, metrics 9090), ServiceAccount with a Role reading pods,
InferencePools and the extension's InferenceObjectives/InferenceModelRewrites in its
namespace (the rules of the upstream ``inferencepool`` chart; its optional metrics
authentication, cluster-wide TokenReviews/SubjectAccessReviews, is not granted), and network
policies: the EPP's gRPC port only from ``gateway_namespaces``, and two NetworkPolicies that
add to the pool's own: the EPP may scrape the vLLM port, and the gateway's data plane in
``gateway_namespaces`` may reach it (with an InferencePool the gateway connects to the pods
directly, not through the pool's Service).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import cdk8s
from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.k8s import kube
from vllm_doks.k8s.bindings import inference_api
from vllm_doks.k8s.checks import check_image
from vllm_doks.k8s.network_policies import Namespaces
from vllm_doks.k8s.pod_security import (
    pod_security_context,
    tmp_mount,
    tmp_volume,
)
from vllm_doks.k8s.pool_addon import PoolAddOn
from vllm_doks.k8s.rbac import add_service_account_with_role
from vllm_doks.k8s.routing import BackendRef, PoolAccess, grant_pool_access
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool
from vllm_doks.k8s.workload import Resources, ServingWorkload, service_port, serving_container
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_dns_label

if TYPE_CHECKING:
    from vllm_doks._imports.io.k8s.networking import inference

FailureMode = Literal["FailClose", "FailOpen"]

# External contracts of the Inference Extension (API group/version, the picker's image, flags,
# ports and RBAC) live in vllm_doks.contracts with their sources; re-exported here.
#: API group and version of the InferencePool (Inference Extension v1.x).
INFERENCE_POOL_GROUP = contracts.INFERENCE_POOL_GROUP
INFERENCE_POOL_API_VERSION = contracts.INFERENCE_POOL_API_VERSION
INFERENCE_POOL_KIND = contracts.INFERENCE_POOL_KIND
#: Group of the extension's alpha resources the EPP watches (when their CRDs exist).
INFERENCE_X_GROUP = contracts.INFERENCE_X_GROUP
#: The full endpoint picker of Inference Extension v1.5.0, the last release that builds it
#: (v1.6.0 ships only the lightweight conformance picker): see contracts.EPP_IMAGE.
DEFAULT_EPP_IMAGE = contracts.EPP_IMAGE
#: EPP ports: ext-proc gRPC (what the gateway calls), gRPC health, Prometheus metrics.
EPP_GRPC_PORT = contracts.EPP_GRPC_PORT
EPP_HEALTH_PORT = contracts.EPP_HEALTH_PORT
EPP_METRICS_PORT = contracts.EPP_METRICS_PORT
#: gRPC health service the EPP serves on its health port (upstream chart's probes).
EPP_HEALTH_SERVICE = contracts.EPP_HEALTH_SERVICE
#: The EPP's RBAC in its namespace: (API group, resources, verbs), the v1.5.0 chart's.
EPP_RBAC_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = contracts.EPP_RBAC_RULES


@dataclass(frozen=True, kw_only=True)
class VllmInferencePoolProps:
    """Props of :class:`VllmInferencePool`."""

    pool: VllmWorkerPool
    """The worker pool whose pods the InferencePool selects. Required."""
    name: str | None = None
    """Name of the InferencePool; the EPP's objects are ``<name>-epp``. Default
    ``"<pool name>-pool"``."""
    image: str = DEFAULT_EPP_IMAGE
    """Endpoint picker image, pinned; its flags and RBAC are v1.5.0's. Default
    ``"registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0"`` (the last release that
    publishes the full picker; v1.6.0 has only the lightweight conformance picker)."""
    failure_mode: FailureMode = "FailClose"
    """``endpointPickerRef.failureMode``: what the gateway does when the EPP does not answer
    (``"FailClose"``: reject; ``"FailOpen"``: pick a pod itself). Default ``"FailClose"``."""
    gateway_namespaces: tuple[str, ...] = ()
    """Namespaces of the gateway's data plane (e.g. ``("envoy-gateway-system",)``); with
    ``network_policy`` they may reach the EPP's gRPC port and the pool's vLLM port. Required
    with ``network_policy``."""
    network_policy: bool = True
    """Network policies for the EPP and the pool (see the module). Default ``True``."""
    cpu_request: str = "500m"
    """EPP CPU request. Default ``"500m"``."""
    cpu_limit: str = "2"
    """EPP CPU limit. Default ``"2"``."""
    memory_request: str = "512Mi"
    """EPP memory request. Default ``"512Mi"``."""
    memory_limit: str = "2Gi"
    """EPP memory limit. Default ``"2Gi"``."""

    @property
    def resolved_name(self) -> str:
        if self.name is not None:
            return self.name
        return f"{self.pool.service_name}-pool"

    def problems(self) -> Problems:
        problems = Problems()
        if not problems.check(
            isinstance(self.pool, VllmWorkerPool), "pool", self.pool, "must be a VllmWorkerPool"
        ):
            return problems
        check_dns_label(problems, "name", self.resolved_name, max_len=63 - len("-epp-ingress"))
        check_image(problems, "image", self.image)
        problems.check(
            self.failure_mode in ("FailClose", "FailOpen"),
            "failure_mode",
            self.failure_mode,
            "must be 'FailClose' or 'FailOpen'",
        )
        problems.check(
            isinstance(self.network_policy, bool),
            "network_policy",
            self.network_policy,
            "must be True or False",
        )
        if problems.check(
            isinstance(self.gateway_namespaces, tuple),
            "gateway_namespaces",
            self.gateway_namespaces,
            "must be a tuple of namespace names, e.g. ('envoy-gateway-system',)",
        ):
            for ns in self.gateway_namespaces:
                check_dns_label(problems, "gateway_namespaces", ns)
            problems.check(
                not self.network_policy or bool(self.gateway_namespaces),
                "gateway_namespaces",
                self.gateway_namespaces,
                "must name the gateway data plane's namespaces (which call the endpoint picker "
                "and connect to the pods), or set network_policy=False",
            )
        Resources.of(self).check(problems)
        return problems


@takes_props(VllmInferencePoolProps)
class VllmInferencePool(PoolAddOn[VllmInferencePoolProps], ServingWorkload):
    """An InferencePool selecting a worker pool's pods, with its endpoint picker::

        inference = VllmInferencePool(chart, "InferencePool", VllmInferencePoolProps(
            pool=pool, gateway_namespaces=("envoy-gateway-system",)))
        endpoint.route_to(pool, backend=inference)   # backendRef kind InferencePool

    Needs a gateway implementing the Gateway API Inference Extension (not Cilium's; see the
    module) and the InferencePool CRD installed.
    """

    def __init__(self, scope: Construct, id: str, props: VllmInferencePoolProps) -> None:
        super().__init__(scope, id, props)
        # Imported here, not at the top: see VllmAutoscaler.
        from vllm_doks._imports.io.k8s.networking import inference

        pool = self.pool
        self.name = props.resolved_name
        self.epp_name = f"{self.name}-epp"
        self.epp_service_port = EPP_GRPC_PORT
        self.image = props.image
        self.group = INFERENCE_POOL_GROUP
        self.kind = INFERENCE_POOL_KIND
        # The workload this construct runs is the endpoint picker: its pods are app=<name>-epp.
        self._select(namespace=pool.namespace, app=self.epp_name)

        failure_mode = inference.InferencePoolSpecEndpointPickerRefFailureMode
        self.inference_pool: inference.InferencePool = self._add_resource(
            inference_api.InferencePool,
            "InferencePool",
            inference_api.InferencePoolSpec(
                selector=inference_api.InferencePoolSpecSelector(match_labels=pool.selector_labels),
                target_ports=[inference_api.InferencePoolSpecTargetPorts(number=pool.service_port)],
                endpoint_picker_ref=inference_api.InferencePoolSpecEndpointPickerRef(
                    kind="Service",
                    name=self.epp_name,
                    port=inference_api.InferencePoolSpecEndpointPickerRefPort(number=EPP_GRPC_PORT),
                    failure_mode=(
                        failure_mode.FAIL_OPEN
                        if props.failure_mode == "FailOpen"
                        else failure_mode.FAIL_CLOSE
                    ),
                ),
            ),
        )

        self.service_account, self.role, self.role_binding = add_service_account_with_role(
            self,
            self._metadata,
            namespace=self.namespace,
            account_name=self.epp_name,
            role_name=self.epp_name,
            rules=EPP_RBAC_RULES,
        )
        self._serve(
            name=self.epp_name,
            # One picker: several replicas need the EPP's leader election (and Lease RBAC).
            replicas=1,
            strategy=kube.DeploymentStrategy(type="Recreate"),
            pod_spec=self._pod_spec(),
            ports=[
                service_port(
                    "grpc-ext-proc", EPP_GRPC_PORT, target=EPP_GRPC_PORT, app_protocol="http2"
                ),
                service_port("http-metrics", EPP_METRICS_PORT, target=EPP_METRICS_PORT),
            ],
        )

        self.pool_admission_policies: list[cdk8s.ApiObject] = []
        if props.network_policy:
            self.network_policy = self.connections.isolate(
                allow=Namespaces(props.gateway_namespaces),
                port=EPP_GRPC_PORT,
                id="NetworkPolicy",
                name=f"{self.epp_name}-ingress",
            )
            self.pool_admission_policies = [
                policy for _, policy in grant_pool_access(self, self.pool_access())
            ]

    @property
    def epp_selector_labels(self) -> dict[str, str]:
        """Labels that select the endpoint picker's pods (a copy; the same as
        :attr:`selector_labels`, the workload's)."""
        return self.selector_labels

    @property
    def epp_args(self) -> list[str]:
        """The endpoint picker's arguments, in order."""
        # v1.5.0's flags (contracts.EPP_FLAGS), in that order. Tracing would export OTLP
        # traces to a collector we do not deploy, and metrics authentication needs cluster-wide
        # TokenReview/SubjectAccessReview rights: both off, as in the upstream chart's
        # defaults.
        return [
            "--pool-name",
            self.name,
            "--pool-namespace",
            self.namespace,
            "--pool-group",
            INFERENCE_POOL_GROUP,
            "--grpc-port",
            str(EPP_GRPC_PORT),
            "--grpc-health-port",
            str(EPP_HEALTH_PORT),
            "--metrics-port",
            str(EPP_METRICS_PORT),
            "--zap-encoder",
            "json",
            "--tracing=false",
            "--metrics-endpoint-auth=false",
        ]

    def routes(self, pool: VllmWorkerPool) -> bool:
        """Whether this InferencePool selects ``pool``'s pods."""
        return self.pool is pool

    # RouteBackend (vllm_doks.k8s.routing): resolved by Inference Extension gateways only.
    requires_inference_extension = True
    paths_answered_without_key: tuple[str, ...] = ()

    def backend_ref(self) -> BackendRef:
        return BackendRef(name=self.name, group=self.group, kind=self.kind)

    def pool_access(self) -> tuple[PoolAccess, ...]:
        """The picker scrapes the pool's vLLM port, and the gateway's data plane connects to
        the pods directly (not through the pool's Service)."""
        pool = self.pool
        return (
            PoolAccess(
                pool=pool, peer=self, id="EppToPool", name=f"{self.epp_name}-to-{pool.service_name}"
            ),
            PoolAccess(
                pool=pool,
                peer=Namespaces(self.props.gateway_namespaces),
                id="GatewayToPool",
                name=f"{self.name}-gateway-to-{pool.service_name}",
            ),
        )

    def _pod_spec(self) -> k8s.PodSpec:
        props = self.props

        def health() -> k8s.Probe:
            return kube.Probe(
                grpc=kube.GrpcAction(port=EPP_HEALTH_PORT, service=EPP_HEALTH_SERVICE),
                initial_delay_seconds=5,
                period_seconds=10,
            )

        return kube.PodSpec(
            service_account_name=self.epp_name,
            # The EPP watches pods and its InferencePool through the API.
            automount_service_account_token=True,
            enable_service_links=False,
            # Conservatively as long as the longest grace period of the pool's pods.
            termination_grace_period_seconds=max(
                130, self.pool.props.termination_grace_period_seconds
            ),
            security_context=pod_security_context(),
            containers=[
                serving_container(
                    name="epp",
                    image=props.image,
                    args=self.epp_args,
                    ports={
                        "grpc": EPP_GRPC_PORT,
                        "grpc-health": EPP_HEALTH_PORT,
                        "metrics": EPP_METRICS_PORT,
                    },
                    env=[
                        kube.EnvVar(
                            name="NAMESPACE",
                            value_from=kube.EnvVarSource(
                                field_ref=kube.ObjectFieldSelector(field_path="metadata.namespace"),
                            ),
                        )
                    ],
                    resources=Resources.of(props).requirements(),
                    volume_mounts=[tmp_mount()],
                    readiness_probe=health(),
                    liveness_probe=health(),
                )
            ],
            volumes=[tmp_volume()],
        )
