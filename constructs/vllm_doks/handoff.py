"""The hand-off between the layers, in the core: what Stack 1 (the cloud layer) gives Stack 2
(the Kubernetes layer), and what Stack 2 reports. One type, ``StackOneOutputs``: the cloud
layer makes it of Terraform tokens (``cloud.stack_one.StackOneValues``), an outputs file parses
into it as values (``config.InfraOutputs``). Both layers and the app import it from here,
so neither layer imports the other or the app's configuration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Generic, TypeVar

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


def parse_stack_one_outputs(text: str, source: str = "outputs file") -> StackOneOutputs[int]:
    """Read Stack 1 outputs from either shape users have:

    * ``cdktf deploy --outputs-file``: ``{"<stack>": {"nfs_host": "10.0.0.5", ...}}``
    * ``terraform output -json``: ``{"nfs_host": {"value": "10.0.0.5", "type": "string"}, ...}``
    """
    problems = Problems(where=source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        problems.add(
            "outputs",
            text[:40],
            f"must be JSON from `cdktf deploy --outputs-file` or `terraform output -json` ({e})",
        )
        problems.raise_if_any()
    flat: dict[str, object] = {}
    if isinstance(data, dict):
        if all(isinstance(v, dict) and "value" in v for v in data.values()) and data:
            flat = {k: v["value"] for k, v in data.items()}
        else:
            stacks = [v for v in data.values() if isinstance(v, dict) and "nfs_host" in v]
            if len(stacks) > 1:
                problems.add(
                    "outputs",
                    sorted(data),
                    "holds several stacks with nfs_host; pass one stack's outputs",
                )
            elif stacks:
                flat = dict(stacks[0])
            elif "nfs_host" in data:
                flat = dict(data)
    for key in HANDOFF_KEYS:
        if key not in flat or flat[key] in (None, ""):
            problems.add(
                key, flat.get(key), f"missing from {source}: expected Stack 1's output {key}"
            )
    size = flat.get("nfs_size_gb")
    if size is not None and not (
        isinstance(size, int) or (isinstance(size, str) and size.isdigit())
    ):
        problems.add("nfs_size_gb", size, "must be a whole number of GB")
    problems.raise_if_any()
    return StackOneOutputs(
        nfs_host=str(flat["nfs_host"]),
        nfs_mount_path=str(flat["nfs_mount_path"]),
        nfs_size_gb=int(str(flat["nfs_size_gb"])),
        gpu_node_pool_name=str(flat["gpu_node_pool_name"]),
    )
