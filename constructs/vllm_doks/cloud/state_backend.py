"""Terraform state backends: a portable local default, or DigitalOcean Spaces.

cdktf's implicit local backend writes the absolute path of the synthesizing machine into
cdk.tf.json, which makes output differ between machines and leaks a home directory into a
file people commit. The default here is a *relative* path that resolves, from the stack's
working directory (``cdktf.out/stacks/<stack>``), to the project root: state survives a
re-synth (which replaces ``cdktf.out/``) and the JSON is byte-identical everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import LocalBackend, S3Backend, TerraformStack

from vllm_doks.validation import Problems, check_dns_subdomain

#: The Spaces S3 API only checks that *a* region is sent; the real region is in the endpoint.
_SPACES_SIGNING_REGION = "us-east-1"


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


def portable_local_state_path(stack_name: str) -> str:
    """State file path relative to the stack's working dir, landing in the project root."""
    return f"../../../terraform.{stack_name}.tfstate"


def apply_state_backend(
    stack: TerraformStack, stack_name: str, backend: SpacesStateBackend | None
) -> None:
    if backend is None:
        LocalBackend(stack, path=portable_local_state_path(stack_name))
        return
    S3Backend(stack, **backend.s3_settings())
