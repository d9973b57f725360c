"""Whole-configuration checks before anything is synthesized or written.

Each layer's props validate themselves; this module runs them all on one configuration and
adds the checks that span layers, so a user sees every problem of a config in one run.
"""

from __future__ import annotations

from collections.abc import Sequence

from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.validation import Problems


def config_problems(config: ArchitectureConfig) -> Problems:
    from vllm_doks.cli import infra_props

    problems = Problems(where="configuration")
    problems.extend(infra_props(config).problems().items)
    return problems


def preflight(config: ArchitectureConfig, layers: Sequence[str], outputs: InfraOutputs) -> None:
    """Raise one ValidationError listing every problem of the configuration."""
    config_problems(config).raise_if_any()
