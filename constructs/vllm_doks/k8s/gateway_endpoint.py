"""GatewayEndpoint: the Gateway API entry point that exposes worker pools to the internet."""

from __future__ import annotations

import re
from dataclasses import dataclass

import cdk8s
from constructs import Construct

from vllm_doks import contracts

# mypy cannot see this package: setuptools maps it from imports/ at install time only.
from vllm_doks._imports.io.k8s.networking.gateway import (
    GatewaySpecListenersTlsMode,
    HttpRoute,
    HttpRouteSpecRules,
    HttpRouteSpecRulesBackendRefs,
    HttpRouteSpecRulesFiltersRequestRedirectScheme,
    HttpRouteSpecRulesFiltersRequestRedirectStatusCode,
    HttpRouteSpecRulesFiltersType,
    HttpRouteSpecRulesFiltersUrlRewritePath,
    HttpRouteSpecRulesFiltersUrlRewritePathType,
    HttpRouteSpecRulesMatchesPath,
    HttpRouteSpecRulesMatchesPathType,
    HttpRouteSpecRulesTimeouts,
)
from vllm_doks.k8s.bindings import gateway_api
from vllm_doks.k8s.canary import CanarySplit
from vllm_doks.k8s.names import DEFAULT_NAMESPACE
from vllm_doks.k8s.objects import struct
from vllm_doks.k8s.routing import RouteBackend
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool
from vllm_doks.props import takes_props
from vllm_doks.validation import (
    Problem,
    Problems,
    ValidationError,
    check_dns_label,
    check_dns_subdomain,
    check_int_range,
)

# Gateway API durations (GEP-2257): up to four <number><unit> parts, e.g. "1h30m", "500ms".
_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
# A listener hostname as the Gateway API CRD accepts it: a DNS name, optionally "*." first.
_HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

#: Name of the Gateway's plain-HTTP listener; routes attach to it by this section name.
LISTENER_NAME = "http"
#: Name of the optional HTTPS listener.
HTTPS_LISTENER_NAME = "https"

#: Annotation that makes cert-manager issue the listeners' certificates from a ClusterIssuer.
CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION = contracts.CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION

#: Path prefix :meth:`GatewayEndpoint.route_to` exposes by default. vLLM checks the API key
#: only on paths under /v1; elsewhere it serves /metrics, /health, /tokenize, /detokenize,
#: /invocations (SageMaker-style generation), /inference/v1/generate, /pooling, /score,
#: /rerank, ... to anyone (vllm/entrypoints/openai/server_utils.py and the routers attached
#: in api_server.build_app, v0.18.0). Publishing only /v1 keeps the key meaningful.
DEFAULT_PATH_PREFIX = contracts.VLLM_API_KEY_PATH_PREFIX


@dataclass(frozen=True, kw_only=True)
class GatewayEndpointProps:
    """Props of :class:`GatewayEndpoint`."""

    name: str = "vllm-gateway"
    """Name of the Gateway. Default ``"vllm-gateway"`` (the seed's)."""
    namespace: str = DEFAULT_NAMESPACE
    """Namespace of the Gateway; routes are accepted from this namespace only. Default
    ``"vllm"``."""
    gateway_class_name: str = "cilium"
    """GatewayClass that implements the Gateway; DOKS ships Cilium's. Default ``"cilium"``."""
    http_port: int = 80
    """Port of the plain-HTTP listener. Default 80."""
    https_certificate_secret_name: str | None = None
    """TLS Secret (``kubernetes.io/tls``, in the Gateway's namespace) for an HTTPS listener
    ``https`` that terminates TLS, e.g. the Secret cert-manager issues for
    ``cert_manager_cluster_issuer``. Default ``None``: HTTP only."""
    hostname: str | None = None
    """Host name of the HTTPS listener, e.g. ``"llm.example.com"`` (or ``"*.example.com"``);
    requests for other names are not served on it. Required with
    ``cert_manager_cluster_issuer``, which issues the certificate for it. Default ``None``:
    any name."""
    https_port: int = 443
    """Port of the HTTPS listener. Default 443."""
    cert_manager_cluster_issuer: str | None = None
    """cert-manager ClusterIssuer that issues the certificate into
    ``https_certificate_secret_name`` for ``hostname`` (the ``cert-manager.io/cluster-issuer``
    annotation on the Gateway; cert-manager's Gateway API support must be enabled). Default
    ``None``: the TLS Secret is created some other way."""

    def problems(self) -> Problems:
        problems = Problems()
        check_dns_subdomain(problems, "name", self.name)
        check_dns_label(problems, "namespace", self.namespace)
        check_dns_subdomain(problems, "gateway_class_name", self.gateway_class_name)
        check_int_range(problems, "http_port", self.http_port, 1, 65535)
        https = self.https_certificate_secret_name is not None
        if self.https_certificate_secret_name is not None:
            check_dns_subdomain(
                problems, "https_certificate_secret_name", self.https_certificate_secret_name
            )
            if check_int_range(problems, "https_port", self.https_port, 1, 65535):
                problems.check(
                    self.https_port != self.http_port,
                    "https_port",
                    self.https_port,
                    f"must differ from http_port ({self.http_port})",
                )
        if self.hostname is not None:
            valid = problems.check(
                isinstance(self.hostname, str)
                and len(self.hostname) <= 253
                and bool(_HOSTNAME.match(self.hostname)),
                "hostname",
                self.hostname,
                "must be a lowercase DNS name such as 'llm.example.com' or '*.example.com' "
                "(no IP address, port or scheme)",
            )
            problems.check(
                https or not valid,
                "hostname",
                self.hostname,
                "names the HTTPS listener, so it needs https_certificate_secret_name",
            )
        if self.cert_manager_cluster_issuer is not None:
            check_dns_subdomain(
                problems, "cert_manager_cluster_issuer", self.cert_manager_cluster_issuer
            )
            problems.check(
                https and self.hostname is not None,
                "cert_manager_cluster_issuer",
                self.cert_manager_cluster_issuer,
                "needs https_certificate_secret_name (where cert-manager stores the certificate) "
                "and hostname (the name it is issued for)",
            )
        return problems


@takes_props(GatewayEndpointProps)
class GatewayEndpoint(Construct):
    """A Gateway with an HTTP listener (and optionally an HTTPS one), and HTTPRoutes to worker
    pools behind it::

        endpoint = GatewayEndpoint(chart, "Gateway")
        endpoint.route_to(pool)                      # "/v1" -> the pool's Service

    With ``https_certificate_secret_name`` the Gateway also terminates TLS on a listener
    ``https`` and the API routes attach to that listener only: the plain-HTTP listener gets one
    HTTPRoute ``<gateway>-https-redirect`` answering every request with a ``301`` to the same
    URL on ``https`` (Gateway API ``RequestRedirect``), so no bearer key is ever served over
    plain HTTP. cert-manager's HTTP-01 solver adds its own HTTPRoute for the exact
    ``/.well-known/acme-challenge/<token>`` path, which wins over the redirect's ``/`` prefix.

    The Gateway's address appears in its status
    (``kubectl get gateway vllm-gateway -n vllm``) once the GatewayClass's controller has
    provisioned a load balancer for it.
    """

    def __init__(
        self, scope: Construct, id: str, props: GatewayEndpointProps | None = None
    ) -> None:
        super().__init__(scope, id)
        props = props if props is not None else GatewayEndpointProps()
        props.problems().raise_if_any(where=lambda: self.node.path)

        self.props = props
        self.gateway_name = props.name
        self.namespace = props.namespace
        self.http_port = props.http_port
        https = props.https_certificate_secret_name is not None
        self.https_port: int | None = props.https_port if https else None
        self.hostname = props.hostname
        self._routes: list[HttpRoute] = []
        self._route_names: list[str] = []

        listeners = [
            gateway_api.GatewaySpecListeners(
                name=LISTENER_NAME, protocol="HTTP", port=props.http_port
            )
        ]
        if props.https_certificate_secret_name is not None:
            listeners.append(
                gateway_api.GatewaySpecListeners(
                    name=HTTPS_LISTENER_NAME,
                    protocol="HTTPS",
                    port=props.https_port,
                    hostname=props.hostname,
                    tls=gateway_api.GatewaySpecListenersTls(
                        mode=GatewaySpecListenersTlsMode.TERMINATE,
                        certificate_refs=[
                            gateway_api.GatewaySpecListenersTlsCertificateRefs(
                                kind="Secret",
                                name=props.https_certificate_secret_name,
                            )
                        ],
                    ),
                )
            )
        annotations = (
            {CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION: props.cert_manager_cluster_issuer}
            if props.cert_manager_cluster_issuer is not None
            else None
        )
        self.gateway = gateway_api.Gateway(
            self,
            "Gateway",
            metadata=struct(
                cdk8s.ApiObjectMetadata,
                name=props.name,
                namespace=props.namespace,
                annotations=annotations,
            ),
            spec=gateway_api.GatewaySpec(
                gateway_class_name=props.gateway_class_name, listeners=listeners
            ),
        )
        self.listener_names: tuple[str, ...] = tuple(listener.name for listener in listeners)
        #: Listeners the API routes attach to: the HTTPS one when there is one, else HTTP.
        self.api_listener_names: tuple[str, ...] = (
            (HTTPS_LISTENER_NAME,) if https else (LISTENER_NAME,)
        )
        self.redirect_route: HttpRoute | None = None
        if https:
            self.redirect_route = self._https_redirect_route()

    def _https_redirect_route(self) -> HttpRoute:
        """The plain-HTTP listener's only route: ``301`` to the same URL on HTTPS."""
        props = self.props
        name = f"{props.name}-https-redirect"
        route = gateway_api.HttpRoute(
            self,
            "HttpsRedirect",
            metadata=struct(cdk8s.ApiObjectMetadata, name=name, namespace=props.namespace),
            spec=gateway_api.HttpRouteSpec(
                parent_refs=[
                    gateway_api.HttpRouteSpecParentRefs(name=props.name, section_name=LISTENER_NAME)
                ],
                rules=[
                    gateway_api.HttpRouteSpecRules(
                        matches=[
                            gateway_api.HttpRouteSpecRulesMatches(
                                path=gateway_api.HttpRouteSpecRulesMatchesPath(
                                    type=HttpRouteSpecRulesMatchesPathType.PATH_PREFIX,
                                    value="/",
                                ),
                            )
                        ],
                        filters=[
                            gateway_api.HttpRouteSpecRulesFilters(
                                type=HttpRouteSpecRulesFiltersType.REQUEST_REDIRECT,
                                request_redirect=gateway_api.HttpRouteSpecRulesFiltersRequestRedirect(
                                    scheme=HttpRouteSpecRulesFiltersRequestRedirectScheme.HTTPS,
                                    status_code=HttpRouteSpecRulesFiltersRequestRedirectStatusCode.VALUE_301,
                                    # Without a port the redirect goes to https's 443.
                                    port=props.https_port if props.https_port != 443 else None,
                                ),
                            )
                        ],
                    )
                ],
            ),
        )
        route.add_dependency(self.gateway)
        self._route_names.append(name)
        return route

    @property
    def route_names(self) -> tuple[str, ...]:
        return tuple(self._route_names)

    @property
    def routes(self) -> tuple[HttpRoute, ...]:
        return tuple(self._routes)

    def route_to(
        self,
        pool: VllmWorkerPool,
        *,
        path_prefix: str = DEFAULT_PATH_PREFIX,
        route_name: str | None = None,
        request_timeout: str | None = None,
        rewrite_prefix_to: str | None = None,
        backend: RouteBackend | None = None,
        canary: CanarySplit | None = None,
    ) -> HttpRoute:
        """Send requests whose path starts with ``path_prefix`` to ``pool``'s Service, on every
        listener of the Gateway.

        :param pool: the worker pool to send traffic to; it must be in the Gateway's namespace.
        :param path_prefix: path prefix to match. Default ``"/v1"``: the OpenAI-compatible API,
            the only part of vLLM its API key protects. ``"/"`` also publishes vLLM's other
            endpoints (``/metrics``, ``/tokenize``, ``/invocations``, ...), which vLLM serves
            without the key.
        :param route_name: name of the HTTPRoute. Default ``"<pool name>-route"``
            (``"vllm-route"`` for the default pool, the seed's name).
        :param request_timeout: Gateway API request timeout, e.g. ``"300s"``, or ``"0s"`` for
            none. Default: the implementation's own (not set, as in the seed).
        :param rewrite_prefix_to: replace the matched ``path_prefix`` with this before the
            request reaches vLLM. This is how several models share one Gateway: the OpenAI API
            names the model in the request body, which an HTTPRoute cannot match, so each pool
            gets its own prefix, e.g. ``route_to(pool, path_prefix="/qwen-7b/v1",
            rewrite_prefix_to="/v1")``, and clients use ``http://<gateway>/qwen-7b/v1`` as
            their OpenAI base URL (Gateway API ``URLRewrite`` with ``ReplacePrefixMatch``,
            which Cilium's Gateway implements). Default: no rewrite.
        :param backend: the routing strategy, which changes only the route's backendRef:
            ``None`` (default) for round-robin over ``pool``'s Service (any Gateway API
            implementation, Cilium's on DOKS included); a :class:`PrefixAwareRouter` that
            routes ``pool`` for prefix-aware routing (its Service is the backend, so it works
            behind any implementation too); a :class:`VllmInferencePool` of ``pool`` for a
            gateway implementing the Gateway API Inference Extension (backendRef
            ``group: inference.networking.k8s.io, kind: InferencePool``; not Cilium's). Any
            :class:`~vllm_doks.k8s.routing.RouteBackend` of ``pool`` is accepted.
        :param canary: a second pool serving the same model name, and the share of requests
            it gets (:class:`~vllm_doks.k8s.canary.CanarySplit`): weighted backendRefs
            (``pool`` is the stable side), plus a rule for the canary header. Default: none.
        """
        if not isinstance(pool, VllmWorkerPool):
            raise ValidationError(
                [Problem("pool", pool, "must be a VllmWorkerPool")], f"{self.node.path}.route_to"
            )
        name = route_name if route_name is not None else f"{pool.service_name}-route"
        problems = Problems(where=lambda: f"{self.node.path}.route_to({pool.node.path!r})")
        if pool.namespace != self.namespace:  # (its path is a jsii round trip: only then)
            problems.add(
                "pool",
                pool.node.path,
                f"is in namespace {pool.namespace!r}; the Gateway accepts routes from its own "
                f"namespace {self.namespace!r} only",
            )
        problems.check(
            isinstance(path_prefix, str)
            and path_prefix.startswith("/")
            and len(path_prefix) <= 1024
            and not any(c.isspace() for c in path_prefix),
            "path_prefix",
            path_prefix,
            "must be an absolute path such as '/' or '/v1' without whitespace",
        )
        if check_dns_subdomain(problems, "route_name", name):
            problems.check(
                name not in self._route_names,
                "route_name",
                name,
                "is already taken by another route of this Gateway; pass a distinct route_name",
            )
        if request_timeout is not None:
            problems.check(
                isinstance(request_timeout, str) and bool(_DURATION.match(request_timeout)),
                "request_timeout",
                request_timeout,
                "must be a Gateway API duration such as '300s', '1h30m' or '0s'",
            )
        if rewrite_prefix_to is not None:
            problems.check(
                isinstance(rewrite_prefix_to, str)
                and rewrite_prefix_to.startswith("/")
                and not any(c.isspace() for c in rewrite_prefix_to),
                "rewrite_prefix_to",
                rewrite_prefix_to,
                "must be an absolute path such as '/v1' without whitespace",
            )
        if backend is not None:
            problems.check(
                isinstance(backend, RouteBackend) and backend.routes(pool),
                "backend",
                getattr(getattr(backend, "node", None), "path", backend),
                "must be a PrefixAwareRouter or VllmInferencePool built for this pool",
            )
        if isinstance(backend, RouteBackend) and backend.requires_inference_extension:
            gateway_class = self.props.gateway_class_name
            problems.check(
                gateway_class not in contracts.GATEWAY_CLASSES_WITHOUT_INFERENCE_EXTENSION,
                "backend",
                backend.node.path,
                f"is an InferencePool, but this Gateway's class {gateway_class!r} does not "
                f"implement the Gateway API Inference Extension (no released InferencePool "
                f"support in Cilium; cilium/cilium#48813), so the route would never resolve: "
                f"use a PrefixAwareRouter (works behind any Gateway) or a gateway_class_name "
                f"of an implementation such as Envoy Gateway, kgateway or Istio",
            )
        if canary is not None:
            problems.extend(canary.problems(pool, has_backend=backend is not None).items)
        problems.raise_if_any()

        # The pool's own Service: the default backend, and where vLLM checks the key.
        service_ref = gateway_api.HttpRouteSpecRulesBackendRefs(
            name=pool.service_name, port=pool.service_port
        )
        if backend is not None:
            ref = backend.backend_ref()
            backend_ref = gateway_api.HttpRouteSpecRulesBackendRefs(
                group=ref.group,
                kind=ref.kind,
                name=ref.name,
                port=ref.port,
            )
        else:
            backend_ref = service_ref
        timeouts = (
            gateway_api.HttpRouteSpecRulesTimeouts(request=request_timeout)
            if request_timeout is not None
            else None
        )
        match_type = HttpRouteSpecRulesMatchesPathType
        rewrite_type = HttpRouteSpecRulesFiltersUrlRewritePathType
        rules = [
            _rule(
                gateway_api.HttpRouteSpecRulesMatchesPath(
                    type=match_type.PATH_PREFIX,
                    value=path_prefix,
                ),
                gateway_api.HttpRouteSpecRulesFiltersUrlRewritePath(
                    type=rewrite_type.REPLACE_PREFIX_MATCH,
                    replace_prefix_match=rewrite_prefix_to,
                )
                if rewrite_prefix_to is not None
                else None,
                # A canary splits the rule between the two pools (see vllm_doks.k8s.canary).
                canary.backend_refs(pool) if canary is not None else [backend_ref],
                timeouts,
            )
        ]
        models_path = self._router_models_path(pool, backend, path_prefix, rewrite_prefix_to)
        if models_path is not None:
            # The backend answers GET /v1/models itself, without checking any key (the
            # production-stack router: contracts.ROUTER_PATHS_ANSWERED_WITHOUT_KEY). An Exact
            # match beats the PathPrefix rule, so that one path goes to the pool's Service,
            # where vLLM checks the key.
            assert backend is not None
            upstream = backend.paths_answered_without_key[0]
            rules.append(
                _rule(
                    gateway_api.HttpRouteSpecRulesMatchesPath(
                        type=match_type.EXACT, value=models_path
                    ),
                    gateway_api.HttpRouteSpecRulesFiltersUrlRewritePath(
                        type=rewrite_type.REPLACE_FULL_PATH,
                        replace_full_path=upstream,
                    )
                    if models_path != upstream
                    else None,
                    [service_ref],
                    timeouts,
                )
            )
        if canary is not None and canary.header_route and not canary.promoted:
            # The smoke test's way in: the same rules plus the canary header, canary only.
            rules += [
                gateway_api.HttpRouteSpecRules(
                    matches=canary.header_matches(rule.matches or []),
                    filters=rule.filters,
                    backend_refs=[canary.canary_only_ref],
                    timeouts=rule.timeouts,
                )
                for rule in list(rules)
            ]
        route = gateway_api.HttpRoute(
            self,
            f"Route-{name}",
            metadata=struct(cdk8s.ApiObjectMetadata, name=name, namespace=pool.namespace),
            spec=gateway_api.HttpRouteSpec(
                parent_refs=[
                    gateway_api.HttpRouteSpecParentRefs(
                        name=self.gateway_name, section_name=listener
                    )
                    for listener in self.api_listener_names
                ],
                rules=rules,
            ),
        )
        route.add_dependency(self.gateway)
        self._routes.append(route)
        self._route_names.append(name)
        return route

    @staticmethod
    def _router_models_path(
        pool: VllmWorkerPool,
        backend: RouteBackend | None,
        path_prefix: str,
        rewrite_prefix_to: str | None,
    ) -> str | None:
        """The client path that reaches a backend as ``/v1/models``, when the route goes through
        a backend that answers it without the key (a router) to a pool with an API key and
        that path is published; else ``None``."""
        if (
            backend is None
            or not backend.paths_answered_without_key
            or pool.api_key_secret_name is None
        ):
            return None
        upstream = backend.paths_answered_without_key[0]
        seen_as = (rewrite_prefix_to if rewrite_prefix_to is not None else path_prefix).rstrip("/")
        if not upstream.startswith(seen_as + "/"):
            return None
        return path_prefix.rstrip("/") + upstream[len(seen_as) :]


def _rule(
    path: HttpRouteSpecRulesMatchesPath,
    rewrite: HttpRouteSpecRulesFiltersUrlRewritePath | None,
    backend_refs: list[HttpRouteSpecRulesBackendRefs],
    timeouts: HttpRouteSpecRulesTimeouts | None,
) -> HttpRouteSpecRules:
    """An HTTPRoute rule matching ``path``, rewriting it to ``rewrite`` if given."""
    return gateway_api.HttpRouteSpecRules(
        matches=[gateway_api.HttpRouteSpecRulesMatches(path=path)],
        filters=[
            gateway_api.HttpRouteSpecRulesFilters(
                type=HttpRouteSpecRulesFiltersType.URL_REWRITE,
                url_rewrite=gateway_api.HttpRouteSpecRulesFiltersUrlRewrite(path=rewrite),
            )
        ]
        if rewrite is not None
        else None,
        backend_refs=backend_refs,
        timeouts=timeouts,
    )
