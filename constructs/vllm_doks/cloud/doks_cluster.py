"""DoksCluster: a DOKS cluster with an autoscaling management pool, its Kubernetes version and
management Droplet size chosen at creation (newest / cheapest) and kept until changed on purpose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_digitalocean.data_digitalocean_kubernetes_versions import (
    DataDigitaloceanKubernetesVersions,
)
from cdktf_cdktf_provider_digitalocean.data_digitalocean_sizes import (
    DataDigitaloceanSizes,
    DataDigitaloceanSizesFilter,
    DataDigitaloceanSizesSort,
)
from cdktf_cdktf_provider_digitalocean.kubernetes_cluster import (
    KubernetesCluster,
    KubernetesClusterNodePool,
)
from constructs import Construct

from vllm_doks.cloud.infra_props import (
    check_kubernetes_version,
    check_size_slug,
    management_pool_name,
)
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_int_range, check_min_max

#: ``digitalocean_kubernetes_cluster`` blocks :attr:`DoksClusterProps.gpu_cluster_flags` may set.
GPU_CLUSTER_FLAG_NAMES = ("amd_gpu_device_plugin", "amd_gpu_device_metrics_exporter_plugin")


@dataclass(frozen=True, kw_only=True)
class DoksClusterProps:
    """Props of :class:`DoksCluster`."""

    name: str
    """Cluster name; also the prefix of the management pool's name."""
    region: str
    """Region slug, e.g. ``nyc2``."""
    vpc_id: str
    """VPC the cluster's nodes join (a token is fine)."""
    cluster_subnet: str
    """Pod network CIDR."""
    service_subnet: str
    """Service network CIDR."""
    ha: bool = False
    """Highly available control plane."""
    surge_upgrade: bool = False
    """Surge upgrades add a node before draining one. Off: GPU capacity is usually contracted,
    so there is rarely a spare GPU Droplet to surge onto."""
    tags: Sequence[str] = field(default_factory=tuple)
    """Tags on the cluster and its management pool."""
    management_min_nodes: int = 2
    """Minimum management nodes (autoscaler floor)."""
    management_max_nodes: int = 3
    """Maximum management nodes (autoscaler ceiling)."""
    management_vcpus: int = 2
    """vCPUs of the management Droplet size; the cheapest size with this shape is chosen."""
    management_memory_mb: int = 4096
    """Memory (MB) of the management Droplet size."""
    management_size: str = ""
    """Droplet size slug of the management pool, e.g. ``s-2vcpu-4gb``. Default ``""``: the
    cheapest available size with ``management_vcpus`` and ``management_memory_mb`` in the
    region when the cluster is created, kept afterwards (a cheaper size or a price change at
    DigitalOcean does not replace the cluster). Set it to change the size on purpose: the
    provider replaces the cluster for that (``node_pool.size`` is ForceNew)."""
    kubernetes_version: str = ""
    """DOKS version slug, e.g. ``1.34.1-do.0``. Default ``""``: the newest version DigitalOcean
    offers when the cluster is created, kept afterwards (a new DOKS release does not upgrade
    the cluster). Set it to a newer slug to upgrade in place; keep it in step if DigitalOcean
    upgrades an end-of-life cluster itself (an older slug than the cluster's makes the
    provider replace the cluster)."""
    gpu_cluster_flags: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    """Cluster blocks the GPU node pool's size needs, e.g. ``{"amd_gpu_device_plugin":
    {"enabled": True}, "amd_gpu_device_metrics_exporter_plugin": {"enabled": True}}`` for an
    AMD size (:meth:`vllm_doks.gpu_catalog.GpuSize.cluster_flags_dict`). Keys: one of
    :data:`GPU_CLUSTER_FLAG_NAMES`. Default none (NVIDIA needs none: DOKS installs the NVIDIA
    device plugin on GPU nodes itself)."""

    def problems(self) -> Problems:
        problems = Problems()
        for name, block in dict(self.gpu_cluster_flags).items():
            problems.check(
                name in GPU_CLUSTER_FLAG_NAMES
                and isinstance(block, Mapping)
                and set(block) <= {"enabled"}
                and all(isinstance(v, bool) for v in block.values()),
                f"gpu_cluster_flags.{name}",
                block,
                f"must be one of {', '.join(GPU_CLUSTER_FLAG_NAMES)} with a block like "
                "{'enabled': True}",
            )
        check_min_max(
            problems,
            "management_min_nodes",
            self.management_min_nodes,
            "management_max_nodes",
            self.management_max_nodes,
            floor=1,
        )
        check_int_range(problems, "management_vcpus", self.management_vcpus, 1)
        check_int_range(problems, "management_memory_mb", self.management_memory_mb, 512)
        check_size_slug(problems, "management_size", self.management_size)
        check_kubernetes_version(problems, "kubernetes_version", self.kubernetes_version)
        return problems


@takes_props(DoksClusterProps)
class DoksCluster(Construct):
    """A DOKS cluster with a management node pool for system services.

    Unless pinned by props, the version is the newest DigitalOcean offers and the management
    pool's size the cheapest available one of the requested shape in the region, both as of
    the cluster's creation: DigitalOcean's catalogue changes later (new releases, new sizes,
    new prices) do not change the deployed cluster."""

    def __init__(self, scope: Construct, id: str, props: DoksClusterProps) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)

        # Attributes chosen from live catalogue queries are fixed once the cluster exists:
        # re-evaluated on every plan, the queries would turn each DOKS release into an
        # unrequested in-place upgrade, and each cheaper size or price change into a
        # replacement of the whole cluster (node_pool.size is ForceNew), GPU pool included.
        # A data source's `version_prefix` would only narrow "latest" to a minor version;
        # patch releases would still upgrade. An explicit prop drops the ignore, so a change
        # of it is a plan the user asked for and sees.
        ignore_changes: list[str] = []
        self.versions: DataDigitaloceanKubernetesVersions | None = None
        if props.kubernetes_version:
            version = props.kubernetes_version
        else:
            self.versions = DataDigitaloceanKubernetesVersions(self, "Versions")
            version = self.versions.latest_version
            ignore_changes.append("version")
        self.management_sizes: DataDigitaloceanSizes | None = None
        if props.management_size:
            management_size = props.management_size
        else:
            self.management_sizes = DataDigitaloceanSizes(
                self,
                "ManagementSizes",
                filter=[
                    DataDigitaloceanSizesFilter(key="vcpus", values=[str(props.management_vcpus)]),
                    DataDigitaloceanSizesFilter(
                        key="memory", values=[str(props.management_memory_mb)]
                    ),
                    DataDigitaloceanSizesFilter(key="regions", values=[props.region]),
                    # The sizes list keeps retired sizes with available=false (often the
                    # cheapest); creating a pool on one fails.
                    DataDigitaloceanSizesFilter(key="available", values=["true"]),
                ],
                sort=[DataDigitaloceanSizesSort(key="price_monthly", direction="asc")],
            )
            management_size = self.management_sizes.sizes.get(0).slug
            # The pool's name carries the slug, so it is chosen once too.
            ignore_changes += ["node_pool[0].size", "node_pool[0].name"]
        tags = list(props.tags)
        gpu_flags: dict[str, Any] = {
            name: dict(props.gpu_cluster_flags[name])
            for name in GPU_CLUSTER_FLAG_NAMES
            if name in props.gpu_cluster_flags
        }
        self.resource = KubernetesCluster(
            self,
            "Resource",
            name=props.name,
            region=props.region,
            version=version,
            vpc_uuid=props.vpc_id,
            cluster_subnet=props.cluster_subnet,
            service_subnet=props.service_subnet,
            destroy_all_associated_resources=True,
            ha=props.ha,
            surge_upgrade=props.surge_upgrade,
            tags=tags,
            node_pool=KubernetesClusterNodePool(
                name=management_pool_name(props.name, management_size),
                size=management_size,
                auto_scale=True,
                min_nodes=props.management_min_nodes,
                max_nodes=props.management_max_nodes,
                tags=tags,
            ),
            lifecycle=(
                TerraformResourceLifecycle(ignore_changes=ignore_changes)
                if ignore_changes
                else None
            ),
            # The GPU size's blocks, by their resource argument names (absent ones unset).
            **gpu_flags,
        )

    @property
    def cluster_id(self) -> str:
        return self.resource.id

    @property
    def cluster_name(self) -> str:
        return self.resource.name

    @property
    def endpoint(self) -> str:
        return self.resource.endpoint
