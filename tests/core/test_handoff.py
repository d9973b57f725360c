"""The Stack 1 -> Stack 2 hand-off is one core type: parsed from an outputs file as values,
made by the cloud layer of Terraform tokens; the old names are that type."""

from __future__ import annotations

import dataclasses
import json

from support import STACK_ONE_OUTPUTS

from vllm_doks.config import HANDOFF_KEYS as CONFIG_HANDOFF_KEYS
from vllm_doks.config import InfraOutputs, parse_infra_outputs
from vllm_doks.handoff import (
    HANDOFF_KEYS,
    GpuPoolRef,
    NfsShare,
    StackOneOutputs,
)

OUTPUTS = STACK_ONE_OUTPUTS


def test_the_keys_are_the_types_fields() -> None:
    names = tuple(f.name for f in dataclasses.fields(StackOneOutputs) if f.name != "examples")
    assert names == HANDOFF_KEYS and CONFIG_HANDOFF_KEYS is HANDOFF_KEYS


def test_an_outputs_file_parses_into_values_with_share_and_pool_references() -> None:
    parsed = parse_infra_outputs(json.dumps({"vllm-infra": OUTPUTS}))
    assert isinstance(parsed, InfraOutputs) and isinstance(parsed, StackOneOutputs)
    assert parsed.nfs == NfsShare("10.200.0.12", "/7788/share-abc", 500)
    assert parsed.gpu_pool == GpuPoolRef("prod-gpu-h100")
    assert parsed.origins["nfs_host"].endswith("vllm-infra.nfs_host")


def test_the_cloud_layers_token_values_are_the_same_type() -> None:
    from vllm_doks.cloud.stack_one import StackOneValues

    assert issubclass(StackOneValues, StackOneOutputs)
    token_fields = {f.name for f in dataclasses.fields(StackOneValues)}
    assert set(HANDOFF_KEYS) | {"cluster_name"} <= token_fields
