"""GpuNodePool: the DOKS node pool of GPU Droplets that runs vLLM workers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf_cdktf_provider_digitalocean.kubernetes_node_pool import KubernetesNodePool
from constructs import Construct

from vllm_doks.cloud.infra_props import DEFAULT_GPU_SIZE, check_gpu_size
from vllm_doks.gpu_catalog import GpuSize, lookup_gpu_size
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_int_range, check_min_max


@dataclass(frozen=True, kw_only=True)
class GpuNodePoolProps:
    """Props of :class:`GpuNodePool`."""

    cluster_id: str
    """ID of the DOKS cluster (a token is fine)."""
    name: str
    """Pool name; vLLM pods select it through the ``doks.digitalocean.com/node-pool`` label."""
    size: str = DEFAULT_GPU_SIZE
    """GPU Droplet size slug, one of :data:`vllm_doks.gpu_catalog.GPU_SIZES` (or
    ``custom_size.slug``)."""
    custom_size: GpuSize | None = None
    """A size not in the catalogue (:func:`vllm_doks.gpu_catalog.custom_gpu_size`), with
    ``size`` set to its slug. Default ``None``."""
    node_count: int = 0
    """Number of GPU nodes. 0 keeps the pool (and its name) without paying for GPUs. With
    ``max_nodes``, the pool's autoscaling minimum."""
    max_nodes: int | None = None
    """Autoscaling maximum: the pool gets ``auto_scale`` between ``node_count`` and this (at
    least 1 and at least ``node_count``); DOKS' cluster autoscaler adds nodes for Pending
    pods. ``None`` (default): a fixed pool of ``node_count`` nodes."""
    tags: Sequence[str] = field(default_factory=tuple)
    """Tags on the pool's Droplets."""

    def problems(self) -> Problems:
        problems = Problems()
        if check_int_range(problems, "node_count", self.node_count, 0) and (
            self.max_nodes is not None
        ):
            check_min_max(problems, "node_count", self.node_count, "max_nodes", self.max_nodes, 0)
            check_int_range(problems, "max_nodes", self.max_nodes, 1)
        check_gpu_size(problems, "size", self.size, self.custom_size)
        return problems

    @property
    def gpu(self) -> GpuSize:
        """The catalogue entry (or custom size) for ``size``."""
        return lookup_gpu_size(self.size, custom=self.custom_size)


@takes_props(GpuNodePoolProps)
class GpuNodePool(Construct):
    """A pool of GPU Droplets attached to a DOKS cluster: fixed-size, or autoscaled between
    ``node_count`` and ``max_nodes``."""

    def __init__(self, scope: Construct, id: str, props: GpuNodePoolProps) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)
        self.gpu_size: GpuSize = props.gpu
        """GPU count, vendor, resource name, ... of the pool's Droplets."""
        # No node_count when autoscaled: with auto_scale the provider would reset the pool to
        # it on every apply; DOKS starts an autoscaled pool at min_nodes.
        count: dict[str, Any] = (
            {"node_count": props.node_count}
            if props.max_nodes is None
            else {"auto_scale": True, "min_nodes": props.node_count, "max_nodes": props.max_nodes}
        )
        self.resource = KubernetesNodePool(
            self,
            "Resource",
            cluster_id=props.cluster_id,
            name=props.name,
            size=props.size,
            tags=list(props.tags),
            **count,
        )

    @property
    def pool_id(self) -> str:
        return self.resource.id

    @property
    def pool_name(self) -> str:
        return self.resource.name

    @property
    def pool_size(self) -> str:
        """GPU Droplet size slug of the pool's nodes, as a token."""
        return self.resource.size
