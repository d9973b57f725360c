"""App wiring: the configuration turned into each layer's props. Light to import (each layer's
modules load only when called), so the CLI, the preflight checks and the serving chart build
the same props from one place without importing each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.props import same_named

if TYPE_CHECKING:
    from vllm_doks.cloud import InfraProps
    from vllm_doks.k8s.gateway_endpoint import GatewayEndpointProps
    from vllm_doks.k8s.nfs_model_store import NfsModelStoreProps

#: The :class:`NfsModelStoreProps` fields that :func:`model_store_props` sets from Stack 1's
#: outputs, to the output's name: the name the preflight checks report their problems under.
MODEL_STORE_OUTPUTS = {
    "nfs_server": "nfs_host",
    "nfs_path": "nfs_mount_path",
    "capacity_gi": "nfs_size_gb",
}

#: The :class:`GatewayEndpointProps` fields that :func:`gateway_endpoint_props` sets from the
#: configuration, to the input's name: the name the preflight checks report their problems
#: under (``namespace`` is left out: its own check reports it once).
GATEWAY_ENDPOINT_INPUTS = {
    "gateway_class_name": "gateway_class",
    "https_certificate_secret_name": "tls_certificate_secret",
    "hostname": "tls_hostname",
    "cert_manager_cluster_issuer": "cert_manager_cluster_issuer",
}


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


def model_store_props(config: ArchitectureConfig, outputs: InfraOutputs) -> NfsModelStoreProps:
    """The NFS model store on Stack 1's share, in the configuration's namespace."""
    from vllm_doks.k8s.nfs_model_store import NfsModelStoreProps

    return NfsModelStoreProps(
        nfs_server=outputs.nfs_host,
        nfs_path=outputs.nfs_mount_path,
        capacity_gi=outputs.nfs_size_gb,
        namespace=config.namespace,
        download_image=config.vllm_image or None,
        download_network_policy=config.network_policy,
    )


def gateway_endpoint_props(config: ArchitectureConfig) -> GatewayEndpointProps:
    """The Gateway: the configuration's class, and HTTPS where it names a TLS Secret (an
    empty input is the props' ``None``, not set)."""
    from vllm_doks.k8s.gateway_endpoint import GatewayEndpointProps

    return GatewayEndpointProps(
        namespace=config.namespace,
        gateway_class_name=config.gateway_class,
        https_certificate_secret_name=config.tls_certificate_secret or None,
        hostname=config.tls_hostname or None,
        cert_manager_cluster_issuer=config.cert_manager_cluster_issuer or None,
    )
