"""App wiring: the configuration turned into each layer's props. Light to import (the cloud
layer's modules load only when called), so both the CLI and the preflight checks use it without
importing each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_doks.config import ArchitectureConfig

if TYPE_CHECKING:
    from vllm_doks.cloud import InfraProps


def infra_props(config: ArchitectureConfig) -> InfraProps:
    from vllm_doks.cloud.infra_props import InfraProps, ModelBucketProps, SpacesStateBackend

    backend = (
        SpacesStateBackend(
            bucket=config.state_bucket,
            key=config.state_key,
            spaces_region=config.state_spaces_region,
        )
        if config.state_backend_enabled
        else None
    )
    return InfraProps(
        name_prefix=config.name_prefix,
        region=config.region,
        vpc_cidr=config.vpc_cidr,
        doks_cluster_subnet=config.doks_cluster_subnet,
        doks_service_subnet=config.doks_service_subnet,
        nfs_size_gb=config.nfs_size_gb,
        gpu_node_count=config.gpu_node_count,
        gpu_autoscale_max_nodes=config.gpu_autoscale_max_nodes or None,
        gpu_size=config.gpu_size,
        doks_control_plane_ha=config.doks_control_plane_ha,
        doks_surge_upgrade=config.doks_surge_upgrade,
        management_node_pool_min_nodes=config.management_node_pool_min_nodes,
        management_node_pool_max_nodes=config.management_node_pool_max_nodes,
        allow_unlisted_region=config.allow_unlisted_region,
        management_node_size=config.management_node_size,
        kubernetes_version=config.kubernetes_version,
        state_backend=backend,
        nfs_snapshot_name=config.nfs_snapshot_name,
        model_bucket=ModelBucketProps(
            name=config.model_source_bucket, region=config.model_source_region
        )
        if config.create_model_source_bucket
        else None,
    )
