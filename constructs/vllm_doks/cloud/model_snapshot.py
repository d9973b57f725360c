"""ModelShareSnapshot: a ``digitalocean_nfs_snapshot`` of the share holding verified weights.

A snapshot keeps the share's contents (the verified model directories, their manifests and
markers, and the compile caches) so they survive the share and can seed another one instead of
downloading again. Take it *after* the download Job has verified the model: Stack 1 creates
the share empty, so set ``nfs_snapshot_name`` on a later ``apply`` (the resource is created on
that apply, from the share as it is then). A new name takes a new snapshot; Terraform deletes
the old one with it.

What the provider does not do: ``digitalocean_nfs`` in digitalocean/digitalocean 2.99.1 has no
attribute to create a share from a snapshot (its schema: ``name``, ``region``, ``size``,
``vpc_id``, ``performance_tier``, ``tags``; checked with ``terraform providers schema -json``),
so restoring into a new cluster or region is a DigitalOcean API/console step, not a Terraform
input here.

``digitalocean_nfs_snapshot`` (same provider): ``name``, ``region`` and ``share_id``
required; ``size``, ``status`` and ``created_at`` computed.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformOutput
from cdktf_cdktf_provider_digitalocean.nfs_snapshot import NfsSnapshot
from constructs import Construct

from vllm_doks.cloud.infra_props import check_snapshot_name
from vllm_doks.cloud.model_share import ModelShare
from vllm_doks.validation import Problems


@dataclass(frozen=True, kw_only=True)
class ModelShareSnapshotProps:
    """Props of :class:`ModelShareSnapshot`."""

    share: ModelShare
    """The share to snapshot."""
    name: str
    """Snapshot name, e.g. ``my-vllm-models-qwen-7ae5576``."""
    region: str
    """Region of the share."""

    def problems(self) -> Problems:
        problems = Problems()
        check_snapshot_name(problems, "name", self.name)
        return problems


class ModelShareSnapshot(Construct):
    """One ``digitalocean_nfs_snapshot`` of a :class:`ModelShare`, and its id as the output
    ``nfs_snapshot_id``."""

    def __init__(self, scope: Construct, id: str, props: ModelShareSnapshotProps) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)
        self.resource = NfsSnapshot(
            self, "Resource", name=props.name, region=props.region, share_id=props.share.share_id
        )
        # A stable address (digitalocean_nfs_snapshot.models), set before the output below
        # reads the id: cdktf locks the logical id once it is referenced.
        self.resource.override_logical_id("models")
        self.output = TerraformOutput(
            self,
            "nfs_snapshot_id",
            value=self.resource.id,
            description="ID of the NFS snapshot of the model share",
        )
        self.output.override_logical_id("nfs_snapshot_id")

    @property
    def snapshot_id(self) -> str:
        return self.resource.id
