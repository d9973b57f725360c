"""PrefixAwareRouter: the vLLM production-stack router in front of worker pools.

Routing strategies and the gateways that support them
-----------------------------------------------------
* **round-robin** (the default): :meth:`GatewayEndpoint.route_to` sends ``/v1`` to the pool's
  Service and the gateway (or kube-proxy/Cilium's service load balancing) spreads requests
  over the pods. Works with any Gateway API implementation, including Cilium's on DOKS.
* **prefix-aware** (this module): ``route_to(pool, backend=router)`` sends ``/v1`` to this
  router's Service instead; the router remembers which replica served which prompt prefix
  and sends requests that share a prefix to the same replica, so vLLM's automatic prefix
  cache hits. To the gateway the router is an ordinary Service backend, so it works behind
  every Gateway API implementation, Cilium's on DOKS included. Cost: one more hop and a
  small CPU Deployment; the router needs read access to the pods of its namespace (it
  discovers the vLLM pods through the Kubernetes API).
* **InferencePool** (:mod:`vllm_doks.k8s.inference_pool`): the Gateway API Inference
  Extension's endpoint picker chooses the pod for every request (queue depth, KV-cache
  usage, prefix cache). It needs a gateway that implements the extension (e.g. Envoy Gateway
  with Envoy AI Gateway, kgateway/agentgateway, Istio, GKE's gateway). Cilium's Gateway API
  implementation (DOKS) has no released InferencePool support (proposed in
  cilium/cilium#48813, open, aimed at Cilium 1.20), so on DOKS the router is the cache-aware
  option.

The router
----------
The image is the production-stack router (``lmcache/lmstack-router``, source in
``vllm-project/production-stack``, ``src/vllm_router``), run with Kubernetes service
discovery: ``--service-discovery k8s --k8s-namespace <ns> --k8s-label-selector <pool labels>
--k8s-port <vLLM port>``. It watches the pods matching the selector (``list``/``watch`` on
``pods`` through the API, ``K8sServiceDiscovery`` in ``service_discovery.py``), asks every
ready pod for its model on ``GET /v1/models`` (with ``VLLM_API_KEY`` when set, which is why
the pool's API-key Secret is mapped into the router too) and forwards each request to a pod
serving the model named in the request body. Its Role grants ``get``/``list``/``watch`` on
pods in its own namespace and nothing else (the upstream chart also grants ``patch`` on
pods, which pod discovery does not use; no Services or Endpoints are read).

API key: the router (v0.1.12) has no client authentication of its own. It forwards the
client's ``Authorization`` header, so vLLM checks the key on every proxied request, but it
answers ``GET /v1/models`` from its own discovery cache without asking vLLM;
:meth:`GatewayEndpoint.route_to` therefore sends that one exact path to the pool's Service.

Network: the router's pods accept their port only from the Gateway's data path (a
CiliumNetworkPolicy for Cilium's ``ingress`` identity, as for the pools) and
``allow_from_namespaces``; and for every routed pool that has a NetworkPolicy, an extra
NetworkPolicy ``<router>-to-<pool>`` admits the router's pods to the pool's vLLM port
(NetworkPolicies add up, so the pool's own policies stay as they are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cdk8s
from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.k8s import kube
from vllm_doks.k8s.checks import (
    check_image,
    check_service_name,
    check_word,
)
from vllm_doks.k8s.pod_security import (
    env,
    pod_security_context,
    required_secret_env,
    tmp_mount,
    tmp_volume,
)
from vllm_doks.k8s.rbac import add_service_account_with_role
from vllm_doks.k8s.routing import BackendRef, PoolAccess, grant_pool_access
from vllm_doks.k8s.values import int_or_string
from vllm_doks.k8s.vllm_worker_pool import API_KEY_ENV, VllmWorkerPool
from vllm_doks.k8s.workload import (
    Resources,
    ServingWorkload,
    check_ingress_options,
    rolling_update,
    service_port,
    serving_container,
)
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_int_range

RoutingLogic = Literal["prefixaware", "roundrobin", "session"]

#: The production-stack router, pinned (vllm-project/production-stack router release v0.1.12).
DEFAULT_ROUTER_IMAGE = contracts.ROUTER_IMAGE
#: ``--routing-logic`` values this construct accepts (a subset of the router's choices: the
#: others need LMCache or disaggregated prefill).
ROUTING_LOGICS: tuple[str, ...] = contracts.ROUTER_ROUTING_LOGICS
CONTAINER_NAME = "router"
PORT_NAME = "http"
#: The router's health endpoint (used by the upstream chart's probes).
HEALTH_PATH = contracts.ROUTER_HEALTH_PATH
#: RBAC the router needs for pod discovery: read pods of its namespace.
ROUTER_RBAC_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    contracts.ROUTER_RBAC_RULES
)


@dataclass(frozen=True, kw_only=True)
class PrefixAwareRouterProps:
    """Props of :class:`PrefixAwareRouter`."""

    pools: Sequence[VllmWorkerPool]
    """Worker pools to route to (at least one), all in one namespace, listening on the same
    port, selected by the same label key (the pools of this library: ``app=<name>``). The
    router sends each request to a pod of the pool serving the model named in its body.
    Required."""
    routing_logic: RoutingLogic = "prefixaware"
    """``--routing-logic``: ``"prefixaware"`` (requests sharing a prompt prefix go to the same
    replica), ``"roundrobin"`` or ``"session"`` (by the ``session_key`` header). Default
    ``"prefixaware"``."""
    session_key: str | None = None
    """Request header that identifies a session, required with ``routing_logic="session"``
    (``--session-key``), e.g. ``"x-user-id"``. Default ``None``."""
    name: str = "vllm-router"
    """Name of the Deployment, Service, ServiceAccount, Role and value of its ``app`` label.
    Default ``"vllm-router"``."""
    image: str = DEFAULT_ROUTER_IMAGE
    """Router image, pinned. Default ``"lmcache/lmstack-router:v0.1.12"``."""
    replicas: int = 2
    """Router pods (a PodDisruptionBudget keeps all but one up). Default 2."""
    port: int = 8000
    """Port the router listens on and its Service exposes. Default 8000."""
    cpu_request: str = "500m"
    """CPU request. Default ``"500m"``."""
    cpu_limit: str = "2"
    """CPU limit. Default ``"2"``."""
    memory_request: str = "1Gi"
    """Memory request. Default ``"1Gi"``."""
    memory_limit: str = "2Gi"
    """Memory limit. Default ``"2Gi"`` (the prefix table lives in memory)."""
    network_policy: bool = True
    """NetworkPolicy ``<name>-ingress`` for the router's pods (its port only from
    ``allow_from_namespaces``), a CiliumNetworkPolicy ``<name>-from-gateway`` admitting
    Cilium's Gateway (with ``cilium_gateway_policy``), and ``<name>-to-<pool>`` admitting the
    router to each pool's vLLM port. Default ``True``."""
    cilium_gateway_policy: bool = True
    """With ``network_policy``, admit the router port from Cilium's Gateway API Envoy
    (``fromEntities: [ingress]``). Default ``True``."""
    allow_from_namespaces: tuple[str, ...] = ()
    """With ``network_policy``, namespaces whose pods may also reach the router port (e.g. the
    gateway's namespace on a cluster without Cilium). Default none."""

    def problems(self) -> Problems:
        problems = Problems()
        pools = list(self.pools) if isinstance(self.pools, (list, tuple)) else None
        if problems.check(
            bool(pools) and all(isinstance(p, VllmWorkerPool) for p in pools or ()),
            "pools",
            self.pools,
            "must be a non-empty list of VllmWorkerPool",
        ):
            assert pools is not None
            first = pools[0]
            problems.check(
                all(p.namespace == first.namespace for p in pools),
                "pools",
                [p.node.path for p in pools],
                "must all be in one namespace (the router discovers pods in its own)",
            )
            problems.check(
                all(p.service_port == first.service_port for p in pools),
                "pools",
                [p.node.path for p in pools],
                "must all listen on the same port (the router's --k8s-port)",
            )
            keys = {tuple(sorted(p.selector_labels)) for p in pools}
            problems.check(
                len(keys) == 1 and len(next(iter(keys))) == 1,
                "pools",
                [p.node.path for p in pools],
                "must each be selected by one label with the same key (such as app=<name>)",
            )
            problems.check(
                len({p.service_name for p in pools}) == len(pools),
                "pools",
                [p.node.path for p in pools],
                "must not repeat a pool",
            )
            if isinstance(self.name, str):
                problems.check(
                    self.name not in {p.service_name for p in pools},
                    "name",
                    self.name,
                    "must differ from the pools' names (it names a Service and a label value)",
                )
        problems.check(
            self.routing_logic in ROUTING_LOGICS,
            "routing_logic",
            self.routing_logic,
            f"must be one of {', '.join(ROUTING_LOGICS)}",
        )
        if self.routing_logic == "session" or self.session_key is not None:
            check_word(
                problems,
                "session_key",
                self.session_key,
                "must be a header name such as 'x-user-id' (required by routing_logic='session')",
            )
        check_service_name(problems, "name", self.name, max_len=63 - len("-from-gateway"))
        check_image(problems, "image", self.image)
        check_int_range(problems, "replicas", self.replicas, 1)
        check_int_range(problems, "port", self.port, 1, 65535)
        Resources.of(self).check(problems)
        check_ingress_options(problems, self)
        return problems


def label_selector(pools: Sequence[VllmWorkerPool]) -> str:
    """The router's ``--k8s-label-selector`` for ``pools``: ``app=vllm`` for one pool,
    ``app in (a,b)`` (set-based) for several."""
    key = next(iter(pools[0].selector_labels))
    values = [p.selector_labels[key] for p in pools]
    if len(values) == 1:
        return f"{key}={values[0]}"
    return f"{key} in ({','.join(values)})"


@takes_props(PrefixAwareRouterProps)
class PrefixAwareRouter(ServingWorkload):
    """The vLLM production-stack router with Kubernetes service discovery, in front of one or
    more worker pools::

        router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool]))
        endpoint.route_to(pool, backend=router)      # "/v1" -> router -> pool's pods

    Renders a Deployment (``replicas`` pods, non-root, read-only root filesystem with a
    ``/tmp`` emptyDir, no capabilities, RuntimeDefault seccomp, requests and limits, probes on
    ``/health``), a ClusterIP Service, a PodDisruptionBudget (``maxUnavailable: 1``), a
    ServiceAccount with a Role reading pods of the namespace (the only pods that mount an API
    token), and network policies (see :mod:`vllm_doks.k8s.prefix_router`).
    """

    def __init__(self, scope: Construct, id: str, props: PrefixAwareRouterProps) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)

        self.props = props
        self.pools: tuple[VllmWorkerPool, ...] = tuple(props.pools)
        self.name = props.name
        self.deployment_name = props.name
        self.service_name = props.name
        self.service_port = props.port
        self.service_account_name = props.name
        self.role_name = f"{props.name}-pod-reader"
        self.pdb_name = f"{props.name}-pdb"
        self.image = props.image
        self._select(namespace=self.pools[0].namespace, app=props.name)

        self.service_account, self.role, self.role_binding = add_service_account_with_role(
            self,
            self._metadata,
            namespace=self.namespace,
            account_name=self.service_account_name,
            role_name=self.role_name,
            rules=ROUTER_RBAC_RULES,
        )
        self._serve(
            name=props.name,
            replicas=props.replicas,
            # A new router pod is up before an old one goes: CPU pods, surge is cheap.
            strategy=rolling_update(max_surge=1, max_unavailable=0),
            pod_spec=self._pod_spec(),
            ports=[service_port(PORT_NAME, props.port)],
            disruption_budget=self.pdb_name,
        )

        self._restrict_ingress(props)
        # The router reaches every routed pool that restricts ingress, whether or not its own
        # pods are restricted (the policies are the router's; the pools' stay as they are).
        self.pool_admission_policies: dict[str, cdk8s.ApiObject] = {
            access.pool.service_name: policy
            for access, policy in grant_pool_access(self, self.pool_access())
        }

    @property
    def args(self) -> list[str]:
        """The router's command-line arguments, in order."""
        props = self.props
        args = [
            "--host",
            "0.0.0.0",
            "--port",
            str(props.port),
            "--service-discovery",
            "k8s",
            "--k8s-namespace",
            self.namespace,
            "--k8s-label-selector",
            label_selector(self.pools),
            "--k8s-port",
            str(self.pools[0].service_port),
            "--routing-logic",
            props.routing_logic,
        ]
        if props.session_key is not None:
            args += ["--session-key", props.session_key]
        return args

    def routes(self, pool: VllmWorkerPool) -> bool:
        """Whether this router sends traffic to ``pool``."""
        return any(p is pool for p in self.pools)

    # RouteBackend (vllm_doks.k8s.routing): its Service is the backend, behind any Gateway.
    requires_inference_extension = False
    #: The production-stack router answers these itself, without checking any key.
    paths_answered_without_key = contracts.ROUTER_PATHS_ANSWERED_WITHOUT_KEY

    def backend_ref(self) -> BackendRef:
        return BackendRef(name=self.service_name, port=self.service_port)

    def pool_access(self) -> tuple[PoolAccess, ...]:
        """The router's pods reach every pool it routes (``<router>-to-<pool>``)."""
        return tuple(
            PoolAccess(
                pool=pool,
                peer=self,
                id=f"To-{pool.service_name}",
                name=f"{self.name}-to-{pool.service_name}",
            )
            for pool in self.pools
        )

    def _env(self) -> list[k8s.EnvVar]:
        variables = [env("HOME", "/tmp")]
        # Service discovery reads each pod's model from GET /v1/models, which vLLM protects
        # with its API key; the router sends VLLM_API_KEY when it is set.
        secrets = {
            (p.props.api_key_secret_name, p.props.api_key_secret_key)
            for p in self.pools
            if p.props.api_key_secret_name is not None
        }
        if len(secrets) == 1:
            ((secret_name, secret_key),) = secrets
            variables.append(required_secret_env(API_KEY_ENV, secret_name, secret_key))
        return variables

    def _pod_spec(self) -> k8s.PodSpec:
        props = self.props
        http = int_or_string(PORT_NAME)
        return kube.PodSpec(
            service_account_name=self.service_account_name,
            # The only pods of this library that talk to the Kubernetes API: pod discovery.
            automount_service_account_token=True,
            enable_service_links=False,
            security_context=pod_security_context(),
            affinity=kube.Affinity(
                pod_anti_affinity=kube.PodAntiAffinity(
                    preferred_during_scheduling_ignored_during_execution=[
                        kube.WeightedPodAffinityTerm(
                            weight=100,
                            pod_affinity_term=kube.PodAffinityTerm(
                                label_selector=kube.LabelSelector(
                                    match_labels=self.selector_labels
                                ),
                                topology_key=contracts.HOSTNAME_TOPOLOGY_KEY,
                            ),
                        )
                    ],
                ),
            ),
            containers=[
                serving_container(
                    name=CONTAINER_NAME,
                    image=props.image,
                    args=self.args,
                    ports={PORT_NAME: props.port},
                    env=self._env(),
                    resources=Resources.of(props).requirements(),
                    volume_mounts=[tmp_mount()],
                    startup_probe=kube.Probe(
                        http_get=kube.HttpGetAction(path=HEALTH_PATH, port=http),
                        period_seconds=5,
                        failure_threshold=30,
                    ),
                    readiness_probe=kube.Probe(
                        http_get=kube.HttpGetAction(path=HEALTH_PATH, port=http),
                        period_seconds=5,
                    ),
                    liveness_probe=kube.Probe(
                        http_get=kube.HttpGetAction(path=HEALTH_PATH, port=http),
                        period_seconds=10,
                        failure_threshold=3,
                    ),
                )
            ],
            volumes=[tmp_volume()],
        )
