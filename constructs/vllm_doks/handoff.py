"""The hand-off between the layers, in the core: what Stack 1 (the cloud layer) gives Stack 2
(the Kubernetes layer), and what Stack 2 reports. One type, ``StackOneOutputs``: the cloud
layer makes it of Terraform tokens (``cloud.stack_one.StackOneValues``), an outputs file parses
into it as values (``config.InfraOutputs``). Both layers and the app import it from here,
so neither layer imports the other or the app's configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from vllm_doks.gpu_catalog import DEFAULT_GPU_SIZE, GpuSize
from vllm_doks.validation import Problems

#: Descriptions of the seed's Stack 2 outputs, in the seed's order.
STACK2_OUTPUT_DESCRIPTIONS: dict[str, str] = {
    "namespace": "Kubernetes namespace where vLLM is deployed",
    "service_name": "Name of the vLLM ClusterIP service",
    "service_port": "Port of the vLLM service",
    "gateway_name": "Name of the Gateway resource for external access",
    "model_id": "The HuggingFace model ID being served",
    "model_name": "The model name used for inference requests",
    "replicas": "Number of vLLM replicas deployed",
    "quantization": "Quantization method used for model inference",
}


#: The seed's GPU pool name suffix, kept for :data:`DEFAULT_GPU_SIZE` so existing clusters
#: (and ``kubectl get nodes -l doks.digitalocean.com/node-pool=<prefix>-gpu-h100``) carry over.
_DEFAULT_GPU_POOL_SUFFIX = "gpu-h100"
_MEMORY_SUFFIX = re.compile(r"-\d+gb$")


def gpu_node_pool_name(name_prefix: str, gpu_size: str) -> str:
    """Name of the GPU node pool for a size slug.

    ``<prefix>-gpu-h100`` for the seed's ``gpu-h100x1-80gb``; for any other size
    ``<prefix>-gpu-<slug without "gpu-" and the memory suffix>``, e.g.
    ``<prefix>-gpu-h100x8`` (``gpu-h100x8-640gb``) or ``<prefix>-gpu-mi300x1``.
    Pure string work: :meth:`InfraProps.problems` checks the result is a DNS label.
    """
    if gpu_size == DEFAULT_GPU_SIZE:
        return f"{name_prefix}-{_DEFAULT_GPU_POOL_SUFFIX}"
    short = _MEMORY_SUFFIX.sub("", gpu_size.removeprefix("gpu-")) or gpu_size
    return f"{name_prefix}-gpu-{short}"


#: Stack 1 outputs the Kubernetes layer consumes.
HANDOFF_KEYS = (
    "nfs_host",
    "nfs_mount_path",
    "nfs_size_gb",
    "gpu_node_pool_name",
    "gpu_node_pool_size",
)
#: Of those, the ones a Stack 1 applied before they existed does not output (then the
#: configuration's value stands in).
OPTIONAL_HANDOFF_KEYS = frozenset({"gpu_node_pool_size"})

#: The share's size: a whole number of GB as a value, or a Terraform token string.
Size = TypeVar("Size", int, str)


@dataclass(frozen=True)
class NfsShare(Generic[Size]):
    """Where the models live: a Managed NFS share as Stack 2 mounts it."""

    host: str
    """NFS server address (the share's private IP). No default."""
    path: str
    """Export path of the share. No default."""
    size_gb: Size
    """Size of the share in GB. No default."""


@dataclass(frozen=True)
class GpuPoolRef:
    """The GPU node pool the vLLM pods (and the model downloads) are scheduled on: its DOKS
    node pool name and its GPU Droplet size. Pass one value to ``add_model(gpu_pool=...)`` and
    ``VllmWorkerPoolProps(gpu_pool=...)`` instead of repeating the name and the size."""

    name: str
    """DOKS node pool name (the ``doks.digitalocean.com/node-pool`` label value). No default."""
    size: str | None = None
    """GPU Droplet size slug of the pool's nodes, e.g. ``"gpu-h100x1-80gb"`` (a slug of
    :data:`vllm_doks.gpu_catalog.GPU_SIZES`). Default ``None``: not known (the consumer's
    default size applies)."""


def node_pool_and_size(
    problems: Problems,
    gpu_pool: GpuPoolRef | None,
    *,
    name: tuple[str, str | None],
    size: tuple[str, str | GpuSize | None],
) -> tuple[str | None, str | GpuSize]:
    """The node pool name and GPU size a consumer runs with: from ``gpu_pool``, or from its own
    ``name`` and ``size`` fields (each ``(field name, value)``), which ``gpu_pool`` replaces
    (setting both is a problem). Without either size, ``"gpu-h100x1-80gb"``."""
    (name_field, pool_name), (size_field, gpu_size) = name, size
    if gpu_pool is None:
        return pool_name, gpu_size if gpu_size is not None else DEFAULT_GPU_SIZE
    if problems.check(
        isinstance(gpu_pool, GpuPoolRef), "gpu_pool", gpu_pool, "must be a GpuPoolRef"
    ):
        for field_name, value in ((name_field, pool_name), (size_field, gpu_size)):
            problems.check(
                value is None,
                field_name,
                value,
                f"must not be set with gpu_pool ({gpu_pool}), which gives the node pool's name "
                f"and size",
            )
        return gpu_pool.name, gpu_pool.size if gpu_pool.size is not None else DEFAULT_GPU_SIZE
    return pool_name, gpu_size if gpu_size is not None else DEFAULT_GPU_SIZE


@dataclass(frozen=True)
class StackOneOutputs(Generic[Size]):
    """What Stack 1 hands Stack 2: the NFS share and the GPU pool (the seed's outputs)."""

    nfs_host: str
    """NFS server address. No default."""
    nfs_mount_path: str
    """Export path of the NFS share. No default."""
    nfs_size_gb: Size
    """Size of the NFS share in GB (a token string when read from Terraform). No default."""
    gpu_node_pool_name: str
    """Name of the GPU node pool. No default."""
    gpu_node_pool_size: str | None = None
    """GPU Droplet size slug of the GPU node pool. Default ``None``: not known (an outputs file
    of a Stack 1 applied before this output existed)."""
    examples: tuple[str, ...] = ()
    """Names of the values above that are examples, not read from a deployed Stack 1. Default
    none."""

    @property
    def nfs(self) -> NfsShare[Size]:
        return NfsShare(self.nfs_host, self.nfs_mount_path, self.nfs_size_gb)

    @property
    def gpu_pool(self) -> GpuPoolRef:
        return GpuPoolRef(self.gpu_node_pool_name, self.gpu_node_pool_size)
