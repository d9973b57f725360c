"""Cloud layer (CDKTF): Stack 1 of the reference architecture as constructs."""

from vllm_doks.cloud.doks_cluster import DoksCluster, DoksClusterProps
from vllm_doks.cloud.gpu_node_pool import DEFAULT_GPU_SIZE, GpuNodePool, GpuNodePoolProps
from vllm_doks.cloud.infra_stack import OUTPUT_DESCRIPTIONS, InfraProps, VllmInfraStack
from vllm_doks.cloud.model_share import (
    DIGITALOCEAN_PROVIDER_CONSTRAINT,
    ModelShare,
    ModelShareProps,
)
from vllm_doks.cloud.regions import SUPPORTED_REGIONS
from vllm_doks.cloud.state_backend import SpacesStateBackend

__all__ = [
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
