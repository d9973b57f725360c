"""What a route needs from a routing backend, so ``GatewayEndpoint`` dispatches on this small
protocol instead of on each strategy's class: a new strategy implements it and needs no edit
of the endpoint (aws-cdk's "reference other constructs by interface"). A backend also says what
it must be allowed to reach (:class:`PoolAccess`), which :func:`grant_pool_access` turns into
network policies through the pools' ``connections``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import cdk8s
    from constructs import Node

    from vllm_doks.k8s.network_policies import Peer, Selects
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


@dataclass(frozen=True)
class PoolAccess:
    """A connection a routing backend needs: ``peer`` must reach ``pool``'s vLLM port."""

    pool: VllmWorkerPool
    """The worker pool to reach. No default."""
    peer: Peer
    """Who connects: the backend's own pods, or the namespaces of a gateway's data plane that
    connects to the pods directly. No default."""
    id: str
    """Construct id of the policy under the backend. No default."""
    name: str
    """Name of the NetworkPolicy. No default."""


def grant_pool_access(
    backend: Selects, accesses: tuple[PoolAccess, ...]
) -> list[tuple[PoolAccess, cdk8s.ApiObject]]:
    """Admit each access's peer to its pool's port with a NetworkPolicy ``backend`` owns, for
    the pools that restrict ingress (the others admit everyone already), and return them."""
    return [
        (
            access,
            access.pool.connections.allow_from(
                access.peer,
                port=access.pool.service_port,
                id=access.id,
                name=access.name,
                owner=backend,
            ),
        )
        for access in accesses
        if access.pool.connections.isolated
    ]


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

    def pool_access(self) -> tuple[PoolAccess, ...]:
        """What the backend must be allowed to reach in the pools it routes (see
        :func:`grant_pool_access`)."""
        ...
