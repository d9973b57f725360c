"""App wiring: the configuration turned into each layer's props. Light to import (the cloud
layer's modules load only when called), so both the CLI and the preflight checks use it without
importing each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_doks.config import ArchitectureConfig
from vllm_doks.props import same_named

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
    # Every InfraProps field the config names the same way (name_prefix, region, vpc_cidr,
    # the subnets, sizes and counts, ...), and the ones that differ:
    return InfraProps(
        **same_named(
            config,
            InfraProps,
            gpu_autoscale_max_nodes=config.gpu_autoscale_max_nodes or None,
            state_backend=backend,
            model_bucket=ModelBucketProps(
                name=config.model_source_bucket, region=config.model_source_region
            )
            if config.create_model_source_bucket
            else None,
        )
    )
