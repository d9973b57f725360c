"""VllmInfraStack: Stack 1 of the reference architecture (VPC, DOKS, GPU pool, NFS, outputs)."""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_digitalocean.provider import DigitaloceanProvider
from cdktf_cdktf_provider_digitalocean.vpc import Vpc
from constructs import Construct

from vllm_doks.cloud.doks_cluster import DoksCluster, DoksClusterProps
from vllm_doks.cloud.gpu_node_pool import GpuNodePool, GpuNodePoolProps
from vllm_doks.cloud.infra_props import OUTPUT_DESCRIPTIONS, InfraProps
from vllm_doks.cloud.model_bucket import ModelBucket
from vllm_doks.cloud.model_share import ModelShare, ModelShareProps
from vllm_doks.cloud.model_snapshot import ModelShareSnapshot, ModelShareSnapshotProps
from vllm_doks.cloud.state_backend import apply_state_backend
from vllm_doks.props import takes_props


@takes_props(InfraProps)
class VllmInfraStack(TerraformStack):
    """Stack 1: a VPC holding a DOKS cluster (autoscaling management pool + GPU pool) and a
    Managed NFS share for model weights, with the seed's 11 outputs.

    Terraform addresses match the seed's HCL (``digitalocean_vpc.vllm``,
    ``digitalocean_kubernetes_cluster.vllm``, ``digitalocean_kubernetes_node_pool.gpu``,
    ``digitalocean_nfs.models``, ...), so state created by the hand-written Terraform carries
    over without ``terraform state mv``.
    """

    def __init__(self, scope: Construct, id: str, props: InfraProps) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)
        self.props = props

        DigitaloceanProvider(self, "digitalocean")
        apply_state_backend(self, id, props.state_backend)
        tags = list(props.tags)

        self.vpc = Vpc(
            self, "Vpc", name=props.name_prefix, region=props.region, ip_range=props.vpc_cidr
        )
        self.vpc.override_logical_id("vllm")

        self.cluster = DoksCluster(
            self,
            "Cluster",
            DoksClusterProps(
                name=props.name_prefix,
                region=props.region,
                vpc_id=self.vpc.id,
                cluster_subnet=props.doks_cluster_subnet,
                service_subnet=props.doks_service_subnet,
                ha=props.doks_control_plane_ha,
                surge_upgrade=props.doks_surge_upgrade,
                tags=tags,
                management_min_nodes=props.management_node_pool_min_nodes,
                management_max_nodes=props.management_node_pool_max_nodes,
                management_size=props.management_node_size,
                kubernetes_version=props.kubernetes_version,
                # AMD sizes need the AMD device plugin (and metrics exporter) turned on.
                gpu_cluster_flags=props.gpu.cluster_flags_dict(),
            ),
        )
        self.cluster.resource.override_logical_id("vllm")

        self.gpu_pool = GpuNodePool(
            self,
            "GpuPool",
            GpuNodePoolProps(
                cluster_id=self.cluster.cluster_id,
                name=props.gpu_node_pool_name,
                size=props.gpu_size,
                custom_size=props.custom_gpu_size,
                node_count=props.gpu_node_count,
                max_nodes=props.gpu_autoscale_max_nodes,
                tags=tags,
            ),
        )
        self.gpu_pool.resource.override_logical_id("gpu")

        self.share = ModelShare(
            self,
            "ModelShare",
            ModelShareProps(
                name=props.nfs_share_name,
                region=props.region,
                vpc_id=self.vpc.id,
                size_gb=props.nfs_size_gb,
            ),
        )
        self.share.resource.override_logical_id("models")
        self.snapshot: ModelShareSnapshot | None = None
        if props.nfs_snapshot_name:
            self.snapshot = ModelShareSnapshot(
                self,
                "ModelShareSnapshot",
                ModelShareSnapshotProps(
                    share=self.share, name=props.nfs_snapshot_name, region=props.region
                ),
            )

        self.model_bucket: ModelBucket | None = None
        if props.model_bucket is not None:
            self.model_bucket = ModelBucket(self, "ModelBucket", props.model_bucket)

        values = {
            "vpc_id": self.vpc.id,
            "cluster_id": self.cluster.cluster_id,
            "cluster_name": self.cluster.cluster_name,
            "cluster_endpoint": self.cluster.endpoint,
            "nfs_share_id": self.share.share_id,
            "nfs_share_name": self.share.share_name,
            "nfs_host": self.share.host,
            "nfs_mount_path": self.share.mount_path,
            "nfs_size_gb": self.share.size_gb,
            "gpu_node_pool_id": self.gpu_pool.pool_id,
            "gpu_node_pool_name": self.gpu_pool.pool_name,
            "gpu_node_pool_size": self.gpu_pool.pool_size,
        }
        for name, description in OUTPUT_DESCRIPTIONS.items():
            TerraformOutput(self, name, value=values[name], description=description)
