"""What every optional construct attached to one worker pool shares (the autoscaler, the
PodMonitor, the dashboard, the InferencePool): its props are checked where it is created, and
it keeps handles to them, to the pool and to the pool's namespace."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import cdk8s
from constructs import Construct

from vllm_doks.k8s.objects import struct
from vllm_doks.validation import Problems

if TYPE_CHECKING:
    from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool


class AddOnProps(Protocol):
    """Props of a construct attached to a worker pool."""

    @property
    def pool(self) -> VllmWorkerPool: ...

    def problems(self) -> Problems: ...


P = TypeVar("P", bound=AddOnProps)
R = TypeVar("R")


class PoolAddOn(Construct, Generic[P]):
    """Base of the constructs attached to one :class:`VllmWorkerPool`.

    Refuses invalid props before anything is created (every problem at once, named by the
    construct's path), then exposes ``props``, ``pool`` and ``namespace`` (the pool's).
    """

    props: P
    """The props the construct was created with."""
    pool: VllmWorkerPool
    """The worker pool it is attached to."""
    namespace: str
    """Namespace of the pool, where the construct's objects go unless it says otherwise."""
    name: str
    """Name of the construct's main object (set by the subclass before it adds one)."""

    def __init__(self, scope: Construct, id: str, props: P) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)
        self.props = props
        self.pool = props.pool
        self.namespace = props.pool.namespace

    def _add_resource(
        self,
        binding: Callable[..., R],
        id: str,
        spec: object,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> R:
        """The construct's custom resource: ``binding`` (a class from ``cdk8s import``, made
        the fast way: :mod:`vllm_doks.k8s.bindings`) with ``spec``, named :attr:`name` in
        :attr:`namespace`, labelled with ``labels``. Default labels: the pool's selector
        labels."""
        return binding(
            self,
            id,
            metadata=struct(
                cdk8s.ApiObjectMetadata,
                name=self.name,
                namespace=self.namespace,
                labels=dict(labels) if labels is not None else self.pool.selector_labels,
            ),
            spec=spec,
        )
