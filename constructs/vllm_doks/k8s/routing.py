"""What a route needs from a routing backend, so ``GatewayEndpoint`` dispatches on this small
protocol instead of on each strategy's class: a new strategy implements it and needs no edit
of the endpoint (aws-cdk's "reference other constructs by interface")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from constructs import Node

    from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool


@dataclass(frozen=True)
class BackendRef:
    """An HTTPRoute backendRef: a Service by name and port (``group``/``kind`` unset), or another
    kind of backend by group, kind and name."""

    name: str
    """Name of the backend object. No default."""
    port: int | None = None
    """Port of the Service. Default none (a backend that is not a Service has no port)."""
    group: str | None = None
    """API group of the backend. Default none: the core group (a Service)."""
    kind: str | None = None
    """Kind of the backend. Default none: ``Service``."""


@runtime_checkable
class RouteBackend(Protocol):
    """A routing strategy a route can send a worker pool's traffic through."""

    @property
    def node(self) -> Node: ...

    #: The Gateway must implement the Gateway API Inference Extension to resolve the backendRef.
    requires_inference_extension: bool
    #: Paths the backend answers itself, without the pool's API key: each is routed straight to
    #: the pool instead, where vLLM checks the key (empty when the backend answers none).
    paths_answered_without_key: tuple[str, ...]

    def backend_ref(self) -> BackendRef:
        """The route's backendRef for this backend."""
        ...

    def routes(self, pool: VllmWorkerPool) -> bool:
        """Whether this backend sends traffic to ``pool`` (and only then may a route of ``pool``
        use it)."""
        ...
