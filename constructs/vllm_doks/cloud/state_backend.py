"""Terraform state backends: a portable local default, or DigitalOcean Spaces.

cdktf's implicit local backend writes the absolute path of the synthesizing machine into
cdk.tf.json, which makes output differ between machines and leaks a home directory into a
file people commit. The default here is a *relative* path that resolves, from the stack's
working directory (``cdktf.out/stacks/<stack>``), to the project root: state survives a
re-synth (which replaces ``cdktf.out/``) and the JSON is byte-identical everywhere.
"""

from __future__ import annotations

from cdktf import LocalBackend, S3Backend, TerraformStack

from vllm_doks.cloud.infra_props import SpacesStateBackend


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
