"""ModelShare: the Managed NFS share that holds model weights (Stack 1's ``digitalocean_nfs``)."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformStack
from cdktf_cdktf_provider_digitalocean.nfs import Nfs
from constructs import Construct

from vllm_doks.cloud.infra_props import check_nfs_size
from vllm_doks.contracts import DIGITALOCEAN_PROVIDER_CONSTRAINT
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems


@dataclass(frozen=True, kw_only=True)
class ModelShareProps:
    """Props of :class:`ModelShare`."""

    name: str
    """Share name (DigitalOcean: lowercase letters, digits and '-', starts with a letter, ≤ 64)."""
    region: str
    """Region slug; must match the VPC's."""
    vpc_id: str
    """ID of the VPC whose nodes mount the share (a token is fine)."""
    size_gb: int
    """Size in GiB; at least 50."""

    def problems(self) -> Problems:
        problems = Problems()
        problems.check(
            isinstance(self.name, str)
            and 0 < len(self.name) <= 64
            and self.name[:1].isalpha()
            and all(c.islower() or c.isdigit() or c == "-" for c in self.name),
            "name",
            self.name,
            "NFS share names are lowercase letters, digits and '-', start with a letter, "
            "at most 64 characters",
        )
        check_nfs_size(problems, "size_gb", self.size_gb)
        return problems


@takes_props(ModelShareProps)
class ModelShare(Construct):
    """A Managed NFS share in a VPC, exposing the ``host`` and ``mount_path`` that a
    Kubernetes PersistentVolume needs (see ``vllm_doks.k8s.NfsModelStore``)."""

    def __init__(self, scope: Construct, id: str, props: ModelShareProps) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)

        self.resource = Nfs(
            self,
            "Resource",
            name=props.name,
            region=props.region,
            size=props.size_gb,
            vpc_id=props.vpc_id,
        )
        # The prebuilt provider bindings were generated from 2.71.0 (and pin exactly that),
        # which lacks the share's host and mount_path: the construct that reads them raises
        # the stack's provider requirement.
        TerraformStack.of(self).add_override(
            "terraform.required_providers.digitalocean.version", DIGITALOCEAN_PROVIDER_CONSTRAINT
        )

    @property
    def share_id(self) -> str:
        return self.resource.id

    @property
    def share_name(self) -> str:
        return self.resource.name

    @property
    def size_gb(self) -> str:
        return self.resource.get_string_attribute("size")

    @property
    def host(self) -> str:
        """NFS server IP inside the VPC (provider ≥ 2.72.0 attribute, read untyped)."""
        return self.resource.get_string_attribute("host")

    @property
    def mount_path(self) -> str:
        """Export path to mount (provider ≥ 2.72.0 attribute, read untyped)."""
        return self.resource.get_string_attribute("mount_path")
