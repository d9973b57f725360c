"""VllmInfraStack: Stack 1 of the reference architecture (VPC, DOKS, GPU pool, NFS, outputs)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_digitalocean.provider import DigitaloceanProvider
from cdktf_cdktf_provider_digitalocean.vpc import Vpc
from constructs import Construct

from vllm_doks.cloud.doks_cluster import DoksCluster, DoksClusterProps
from vllm_doks.cloud.gpu_node_pool import (
    DEFAULT_GPU_SIZE,
    GpuNodePool,
    GpuNodePoolProps,
    check_gpu_size,
)
from vllm_doks.cloud.model_share import ModelShare, ModelShareProps, check_nfs_size
from vllm_doks.cloud.regions import SUPPORTED_REGIONS
from vllm_doks.cloud.state_backend import SpacesStateBackend, apply_state_backend
from vllm_doks.validation import (
    Problems,
    check_dns_label,
    check_int_range,
    check_min_max,
    check_private_cidr,
)

#: Tag every resource carries, besides the name prefix (the seed's ``local.tags``).
ARCHITECTURE_TAG = "vllm-nfs"

#: Longest slug the management-size lookup can return for 2 vCPU / 4 GB
#: (``s-2vcpu-4gb-intel``); the derived pool name ``<prefix>-mgmt-<slug>`` must stay a
#: valid 63-character DNS label, which bounds the prefix.
_LONGEST_MANAGEMENT_SLUG = len("s-2vcpu-4gb-intel")
MAX_NAME_PREFIX_LENGTH = 63 - len("-mgmt-") - _LONGEST_MANAGEMENT_SLUG

#: Descriptions of the seed's Stack 1 outputs, in the seed's order.
OUTPUT_DESCRIPTIONS: dict[str, str] = {
    "vpc_id": "ID of the VPC",
    "cluster_id": "ID of the DOKS cluster",
    "cluster_name": "Name of the DOKS cluster",
    "cluster_endpoint": "Endpoint URL for the DOKS cluster API",
    "nfs_share_id": "ID of the NFS share",
    "nfs_share_name": "Name of the NFS share",
    "nfs_host": "NFS server IP address for PersistentVolume configuration",
    "nfs_mount_path": "NFS mount path for PersistentVolume configuration",
    "nfs_size_gb": "Size of the NFS share in GB",
    "gpu_node_pool_id": "ID of the GPU node pool",
    "gpu_node_pool_name": "Name of the GPU node pool",
}


@dataclass(frozen=True, kw_only=True)
class InfraProps:
    """Inputs of Stack 1, named and defaulted as in the seed's Stack 1 table."""

    name_prefix: str
    """Prefix for all resource names (DNS label starting with a letter, ≤ 40 characters)."""
    region: str
    """DigitalOcean region; must have H100 GPUs and Managed NFS (see SUPPORTED_REGIONS)."""
    vpc_cidr: str
    """CIDR block for the VPC (private range)."""
    doks_cluster_subnet: str
    """CIDR block for the DOKS cluster (pod) subnet; must not overlap the VPC or services."""
    doks_service_subnet: str
    """CIDR block for the DOKS service subnet; must not overlap the VPC or pods."""
    nfs_size_gb: int
    """Size of the NFS share in GB for model storage (at least 50)."""
    gpu_node_count: int = 0
    """Number of GPU nodes in the GPU node pool."""
    doks_control_plane_ha: bool = False
    """Enable high availability for the DOKS control plane."""
    doks_surge_upgrade: bool = False
    """Surge upgrades need a spare node; off because GPU capacity is usually contracted."""
    management_node_pool_min_nodes: int = 2
    """Minimum nodes in the management node pool."""
    management_node_pool_max_nodes: int = 3
    """Maximum nodes in the management node pool."""
    gpu_size: str = DEFAULT_GPU_SIZE
    """GPU Droplet size of the GPU node pool."""
    allow_unlisted_region: bool = False
    """Escape hatch for a region DigitalOcean added after SUPPORTED_REGIONS was written."""
    state_backend: SpacesStateBackend | None = None
    """Remote state in Spaces; ``None`` keeps a portable local state file in the project root."""

    @property
    def tags(self) -> tuple[str, ...]:
        return (ARCHITECTURE_TAG, self.name_prefix)

    @property
    def gpu_node_pool_name(self) -> str:
        return f"{self.name_prefix}-gpu-h100"

    @property
    def nfs_share_name(self) -> str:
        return f"{self.name_prefix}-models"

    def problems(self) -> Problems:
        """Every problem with these inputs (empty when valid)."""
        problems = Problems()
        if check_dns_label(problems, "name_prefix", self.name_prefix, MAX_NAME_PREFIX_LENGTH):
            problems.check(
                self.name_prefix[0].isalpha(),
                "name_prefix",
                self.name_prefix,
                "must start with a letter (the NFS share name <prefix>-models requires it)",
            )
        if not self.allow_unlisted_region:
            problems.check(
                self.region in SUPPORTED_REGIONS,
                "region",
                self.region,
                "must be a region with both H100 GPUs and Managed NFS: "
                f"{', '.join(SUPPORTED_REGIONS)} (set allow_unlisted_region to use a region "
                "DigitalOcean added since)",
            )
        else:
            problems.check(
                isinstance(self.region, str) and self.region.isalnum() and self.region.islower(),
                "region",
                self.region,
                "must be a DigitalOcean region slug such as nyc2 or atl1",
            )
        networks: dict[str, ipaddress.IPv4Network] = {}
        for name in ("vpc_cidr", "doks_cluster_subnet", "doks_service_subnet"):
            net = check_private_cidr(problems, name, getattr(self, name))
            if net is not None:
                networks[name] = net
        names = list(networks)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if networks[a].overlaps(networks[b]):
                    problems.add(
                        b,
                        str(networks[b]),
                        f"must not overlap {a} ({networks[a]}); pick disjoint ranges",
                    )
        check_nfs_size(problems, "nfs_size_gb", self.nfs_size_gb)
        check_int_range(problems, "gpu_node_count", self.gpu_node_count, 0)
        check_gpu_size(problems, "gpu_size", self.gpu_size)
        check_min_max(
            problems,
            "management_node_pool_min_nodes",
            self.management_node_pool_min_nodes,
            "management_node_pool_max_nodes",
            self.management_node_pool_max_nodes,
            floor=1,
        )
        if self.state_backend is not None:
            problems.extend(self.state_backend.problems("state_backend").items)
        return problems


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
        problems = props.problems()
        problems.where = self.node.path
        problems.raise_if_any()
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
                node_count=props.gpu_node_count,
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
        }
        for name, description in OUTPUT_DESCRIPTIONS.items():
            TerraformOutput(self, name, value=values[name], description=description)
