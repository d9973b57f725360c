"""The hand-off between the layers, in the core: what Stack 1 (the cloud layer) gives Stack 2
(the Kubernetes layer), and what Stack 2 reports. One type, ``StackOneOutputs``: the cloud
layer makes it of Terraform tokens (``cloud.stack_one.StackOneValues``), an outputs file parses
into it as values (``config.InfraOutputs``). Both layers and the app import it from here,
so neither layer imports the other or the app's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

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


#: Stack 1 outputs the Kubernetes layer consumes.
HANDOFF_KEYS = ("nfs_host", "nfs_mount_path", "nfs_size_gb", "gpu_node_pool_name")

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
    """The GPU node pool the vLLM pods are scheduled on, by its DOKS node pool name."""

    name: str
    """DOKS node pool name (the ``doks.digitalocean.com/node-pool`` label value). No default."""


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
    examples: tuple[str, ...] = ()
    """Names of the values above that are examples, not read from a deployed Stack 1. Default
    none."""

    @property
    def nfs(self) -> NfsShare[Size]:
        return NfsShare(self.nfs_host, self.nfs_mount_path, self.nfs_size_gb)

    @property
    def gpu_pool(self) -> GpuPoolRef:
        return GpuPoolRef(self.gpu_node_pool_name)
