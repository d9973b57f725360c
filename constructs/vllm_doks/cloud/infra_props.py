"""Stack 1's props and their checks, importable without loading cdktf or the provider.

Validation of a whole configuration (vllm_doks.preflight) runs before any synth, including a
Kubernetes-only one that must not pay for importing the DigitalOcean provider.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from vllm_doks.cloud.regions import SUPPORTED_REGIONS
from vllm_doks.gpu_catalog import DEFAULT_GPU_SIZE as DEFAULT_GPU_SIZE  # the seed's H100 x1
from vllm_doks.gpu_catalog import GpuSize, lookup_gpu_size, resolve_gpu_size
from vllm_doks.handoff import gpu_node_pool_name as gpu_node_pool_name  # public here too
from vllm_doks.validation import (
    Problems,
    check_dns_label,
    check_dns_subdomain,
    check_int_range,
    check_min_max,
    check_private_cidr,
)
from vllm_doks.weights import check_bucket_name, check_spaces_region

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
    # Not one of the seed's: the hand-off's GPU pool reference carries the size too.
    "gpu_node_pool_size": "GPU Droplet size of the GPU node pool",
}

#: Descriptions of the outputs the bucket adds to Stack 1 (none without a bucket).
MODEL_BUCKET_OUTPUT_DESCRIPTIONS: dict[str, str] = {
    "model_bucket_name": "Name of the Spaces bucket the models are downloaded from",
    "model_bucket_region": "Spaces region of the model bucket",
    "model_bucket_endpoint": "HTTPS endpoint of the model bucket",
    "model_bucket_access_key_id": "Access key id of the read-only key of the model bucket "
    "(sensitive)",
    "model_bucket_secret_key": "Secret key of the read-only key of the model bucket (sensitive)",
}
#: The outputs Terraform never prints (the key pair).
MODEL_BUCKET_SENSITIVE_OUTPUTS = frozenset(
    {"model_bucket_access_key_id", "model_bucket_secret_key"}
)


#: DigitalOcean's minimum Managed NFS share size (GiB).
NFS_MIN_SIZE_GB = 50

#: The Spaces S3 API only checks that *a* region is sent; the real region is in the endpoint.
_SPACES_SIGNING_REGION = "us-east-1"


def check_nfs_size(problems: Problems, field_name: str, value: object) -> None:
    problems.check(
        isinstance(value, int) and not isinstance(value, bool) and value >= NFS_MIN_SIZE_GB,
        field_name,
        value,
        f"must be a whole number of GiB, at least {NFS_MIN_SIZE_GB} (DigitalOcean's minimum)",
    )


_SIZE_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
#: DOKS version slugs as DigitalOcean lists them (``/v2/kubernetes/options``), e.g.
#: ``1.34.1-do.0``: upstream version plus DigitalOcean's build suffix.
_KUBERNETES_VERSION_SLUG = re.compile(r"^\d+\.\d+\.\d+-do\.\d+$")


def check_size_slug(problems: Problems, field_name: str, value: object) -> None:
    """Empty (choose at creation) or a Droplet size slug such as ``s-2vcpu-4gb``."""
    problems.check(
        value == "" or (isinstance(value, str) and bool(_SIZE_SLUG.match(value))),
        field_name,
        value,
        "must be empty (the cheapest available size at creation) or a Droplet size slug "
        "such as s-2vcpu-4gb (`doctl compute size list`)",
    )


def check_kubernetes_version(problems: Problems, field_name: str, value: object) -> None:
    """Empty (newest at creation) or a full DOKS version slug such as ``1.34.1-do.0``."""
    problems.check(
        value == "" or (isinstance(value, str) and bool(_KUBERNETES_VERSION_SLUG.match(value))),
        field_name,
        value,
        "must be empty (the newest version at creation) or a full DOKS version slug such as "
        "1.34.1-do.0 (`doctl kubernetes options versions`); 'latest' or '1.34' would change "
        "meaning with every release",
    )


def management_pool_name(name_prefix: str, size_slug: str) -> str:
    """``<prefix>-mgmt-<size slug>``, the seed's name of the management pool."""
    return f"{name_prefix}-mgmt-{size_slug}"


def check_gpu_size(
    problems: Problems, field_name: str, value: object, custom: GpuSize | None = None
) -> GpuSize | None:
    """``value`` as a GPU catalogue entry (or ``custom`` for its slug), else a problem
    listing every known slug (see :mod:`vllm_doks.gpu_catalog`)."""
    return resolve_gpu_size(
        problems, field_name, value, custom=custom, escape=f"custom_{field_name}="
    )


def check_snapshot_name(problems: Problems, field_name: str, value: object) -> bool:
    """Snapshot names follow the share's rule: lowercase letters, digits and '-', starting
    with a letter, at most 64 characters."""
    return problems.check(
        isinstance(value, str)
        and 0 < len(value) <= 64
        and value[:1].isalpha()
        and all(c.islower() or c.isdigit() or c == "-" for c in value),
        field_name,
        value,
        "must be lowercase letters, digits and '-', start with a letter, at most 64 characters",
    )


@dataclass(frozen=True, kw_only=True)
class SpacesStateBackend:
    """Remote state in a DigitalOcean Spaces bucket (S3-compatible).

    Credentials are never part of the synthesized JSON: Terraform reads them from
    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (a Spaces access key) at ``init`` time.
    """

    bucket: str
    """Name of an existing Spaces bucket."""
    key: str = "vllm-doks/infra.tfstate"
    """Object key of the state file inside the bucket."""
    spaces_region: str = "nyc3"
    """Spaces region of the bucket (Spaces regions differ from GPU regions, e.g. nyc3, ams3)."""

    @property
    def endpoint(self) -> str:
        return f"https://{self.spaces_region}.digitaloceanspaces.com"

    def s3_settings(self) -> dict[str, Any]:
        """Arguments for cdktf's S3Backend and DataTerraformRemoteStateS3 for this state."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "region": _SPACES_SIGNING_REGION,
            "endpoints": {"s3": self.endpoint},
            # Spaces is not AWS: no STS account lookup, no EC2 metadata, no AWS region list,
            # and no S3 checksum headers it would reject.
            "skip_credentials_validation": True,
            "skip_requesting_account_id": True,
            "skip_metadata_api_check": True,
            "skip_region_validation": True,
            "skip_s3_checksum": True,
        }

    def problems(self, field_prefix: str) -> Problems:
        problems = Problems()
        check_dns_subdomain(problems, f"{field_prefix}.bucket", self.bucket)
        problems.check(
            bool(self.key) and not self.key.startswith("/"),
            f"{field_prefix}.key",
            self.key,
            "must be a non-empty object key without a leading '/'",
        )
        problems.check(
            self.spaces_region.isalnum() and self.spaces_region.islower(),
            f"{field_prefix}.spaces_region",
            self.spaces_region,
            "must be a Spaces region slug such as nyc3, sfo3, ams3, sgp1, fra1, syd1",
        )
        return problems


@dataclass(frozen=True, kw_only=True)
class ModelBucketProps:
    """Props of :class:`ModelBucket`."""

    name: str
    """Bucket name (globally unique within the region; 3-63 lowercase letters, digits, '-').
    Required."""
    region: str = "nyc3"
    """Spaces region slug. Default ``"nyc3"``."""

    def problems(self) -> Problems:
        problems = Problems()
        check_bucket_name(problems, "name", self.name)
        check_spaces_region(problems, "region", self.region)
        return problems


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
    """Number of GPU nodes in the GPU node pool (its minimum when ``gpu_autoscale_max_nodes``
    is set)."""
    gpu_autoscale_max_nodes: int | None = None
    """Let DOKS' cluster autoscaler grow the GPU node pool from ``gpu_node_count`` up to this
    many nodes (``auto_scale`` with ``min_nodes``/``max_nodes``), e.g. for the replicas a
    KEDA autoscaler adds. At least 1 and at least ``gpu_node_count``. ``None`` (default): a
    fixed pool of ``gpu_node_count`` nodes."""
    doks_control_plane_ha: bool = False
    """Enable high availability for the DOKS control plane."""
    doks_surge_upgrade: bool = False
    """Surge upgrades need a spare node; off because GPU capacity is usually contracted."""
    management_node_pool_min_nodes: int = 2
    """Minimum nodes in the management node pool."""
    management_node_pool_max_nodes: int = 3
    """Maximum nodes in the management node pool."""
    gpu_size: str = DEFAULT_GPU_SIZE
    """GPU Droplet size slug of the GPU node pool, one of
    :data:`vllm_doks.gpu_catalog.GPU_SIZES` (or ``custom_gpu_size.slug``). An AMD size also
    turns on the cluster's AMD GPU device plugin and metrics exporter."""
    custom_gpu_size: GpuSize | None = None
    """Escape hatch for a GPU size DigitalOcean added after the catalogue was written:
    ``custom_gpu_size("gpu-b300x1-288gb", vendor="nvidia", gpu_count=1, gpu_memory_gb=288)``
    with ``gpu_size`` set to the same slug. Default ``None`` (catalogue sizes only)."""
    allow_unlisted_region: bool = False
    """Escape hatch for a region DigitalOcean added after SUPPORTED_REGIONS was written."""
    management_node_size: str = ""
    """Droplet size slug of the management pool. Default ``""``: the cheapest available
    2 vCPU / 4 GB size in the region when the cluster is created, kept afterwards (see
    :attr:`vllm_doks.cloud.doks_cluster.DoksClusterProps.management_size`)."""
    kubernetes_version: str = ""
    """DOKS version slug (e.g. ``1.34.1-do.0``). Default ``""``: the newest version when the
    cluster is created, kept afterwards; set a newer slug to upgrade (see
    :attr:`vllm_doks.cloud.doks_cluster.DoksClusterProps.kubernetes_version`)."""
    state_backend: SpacesStateBackend | None = None
    """Remote state in Spaces; ``None`` keeps a portable local state file in the project root."""
    nfs_snapshot_name: str = ""
    """Take a ``digitalocean_nfs_snapshot`` of the share under this name (set it once the model
    download has been verified; see :mod:`vllm_doks.cloud.model_snapshot`). Default ``""``:
    no snapshot."""
    model_bucket: ModelBucketProps | None = None
    """Create a private Spaces bucket to download the models from, and a read-only key for
    it (see :mod:`vllm_doks.cloud.model_bucket`). Default ``None``: none (models come from
    the Hugging Face Hub, or from a bucket created elsewhere)."""

    @property
    def tags(self) -> tuple[str, ...]:
        return (ARCHITECTURE_TAG, self.name_prefix)

    @property
    def gpu(self) -> GpuSize:
        """The GPU size entry for ``gpu_size`` (raises ValidationError for an unknown slug)."""
        return lookup_gpu_size(self.gpu_size, custom=self.custom_gpu_size)

    @property
    def gpu_node_pool_name(self) -> str:
        """``<prefix>-gpu-h100`` for the default size, else ``<prefix>-gpu-<h100x8|mi300x1|...>``
        (see :func:`gpu_node_pool_name`)."""
        return gpu_node_pool_name(self.name_prefix, self.gpu_size)

    @property
    def nfs_share_name(self) -> str:
        return f"{self.name_prefix}-models"

    def problems(self) -> Problems:
        """Every problem with these inputs (empty when valid)."""
        problems = Problems()
        prefix_ok = check_dns_label(
            problems, "name_prefix", self.name_prefix, MAX_NAME_PREFIX_LENGTH
        )
        if prefix_ok:
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
        if self.nfs_snapshot_name:
            check_snapshot_name(problems, "nfs_snapshot_name", self.nfs_snapshot_name)
        if check_int_range(problems, "gpu_node_count", self.gpu_node_count, 0) and (
            self.gpu_autoscale_max_nodes is not None
        ):
            check_min_max(
                problems,
                "gpu_node_count",
                self.gpu_node_count,
                "gpu_autoscale_max_nodes",
                self.gpu_autoscale_max_nodes,
                floor=0,
            )
            check_int_range(problems, "gpu_autoscale_max_nodes", self.gpu_autoscale_max_nodes, 1)
        size = check_gpu_size(problems, "gpu_size", self.gpu_size, self.custom_gpu_size)
        if size is not None and prefix_ok:
            pool_name = self.gpu_node_pool_name
            problems.check(
                check_dns_label(Problems(), "gpu_node_pool_name", pool_name),
                "gpu_size",
                self.gpu_size,
                f"gives the GPU node pool name {pool_name!r}, which must be a DNS-1123 label "
                "(lowercase letters, digits and '-', at most 63 characters); use a shorter "
                "name_prefix or a lowercase slug",
            )
        check_size_slug(problems, "management_node_size", self.management_node_size)
        check_kubernetes_version(problems, "kubernetes_version", self.kubernetes_version)
        if prefix_ok and self.management_node_size and _SIZE_SLUG.match(self.management_node_size):
            pool_name = management_pool_name(self.name_prefix, self.management_node_size)
            problems.check(
                check_dns_label(Problems(), "management_pool_name", pool_name),
                "management_node_size",
                self.management_node_size,
                f"gives the management pool name {pool_name!r}, which must be a DNS-1123 label "
                "(at most 63 characters); use a shorter name_prefix",
            )
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
        if self.model_bucket is not None:
            for item in self.model_bucket.problems().items:
                problems.add(f"model_bucket.{item.field}", item.value, item.expected)
        return problems
