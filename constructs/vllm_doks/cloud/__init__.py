"""Cloud layer (CDKTF): Stack 1 of the reference architecture as constructs.

Names load lazily: the props (``InfraProps``, ``SpacesStateBackend``, ...) are plain Python,
while the constructs import cdktf and the DigitalOcean provider (about a second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_doks._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "ARCHITECTURE_TAG": "vllm_doks.cloud.infra_props",
    "DEFAULT_GPU_SIZE": "vllm_doks.cloud.infra_props",
    "InfraProps": "vllm_doks.cloud.infra_props",
    "OUTPUT_DESCRIPTIONS": "vllm_doks.cloud.infra_props",
    "SpacesStateBackend": "vllm_doks.cloud.infra_props",
    "SUPPORTED_REGIONS": "vllm_doks.cloud.regions",
    "DIGITALOCEAN_PROVIDER_CONSTRAINT": "vllm_doks.contracts",
    "DoksCluster": "vllm_doks.cloud.doks_cluster",
    "DoksClusterProps": "vllm_doks.cloud.doks_cluster",
    "GpuNodePool": "vllm_doks.cloud.gpu_node_pool",
    "GpuNodePoolProps": "vllm_doks.cloud.gpu_node_pool",
    "ModelShare": "vllm_doks.cloud.model_share",
    "ModelShareProps": "vllm_doks.cloud.model_share",
    "VllmInfraStack": "vllm_doks.cloud.infra_stack",
}

__all__ = [
    "ARCHITECTURE_TAG",
    "DEFAULT_GPU_SIZE",
    "DIGITALOCEAN_PROVIDER_CONSTRAINT",
    "OUTPUT_DESCRIPTIONS",
    "SUPPORTED_REGIONS",
    "DoksCluster",
    "DoksClusterProps",
    "GpuNodePool",
    "GpuNodePoolProps",
    "InfraProps",
    "ModelShare",
    "ModelShareProps",
    "SpacesStateBackend",
    "VllmInfraStack",
]

if TYPE_CHECKING:
    from vllm_doks.cloud.doks_cluster import DoksCluster, DoksClusterProps
    from vllm_doks.cloud.gpu_node_pool import GpuNodePool, GpuNodePoolProps
    from vllm_doks.cloud.infra_props import (
        ARCHITECTURE_TAG,
        DEFAULT_GPU_SIZE,
        OUTPUT_DESCRIPTIONS,
        InfraProps,
        SpacesStateBackend,
    )
    from vllm_doks.cloud.infra_stack import VllmInfraStack
    from vllm_doks.cloud.model_share import ModelShare, ModelShareProps
    from vllm_doks.cloud.regions import SUPPORTED_REGIONS
    from vllm_doks.contracts import DIGITALOCEAN_PROVIDER_CONSTRAINT


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
