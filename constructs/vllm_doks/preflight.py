"""Whole-configuration checks before anything is synthesized or written.

Each construct validates its own props, but a construct stops at its own problems. Here the
configuration is checked field by field with the same check functions, plus the checks that
span both layers, so a user sees every problem of a config in one run. Only a config that
passes is dry-built, which catches whatever a construct checks beyond the config's fields.
"""

from __future__ import annotations

from collections.abc import Sequence

from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.validation import (
    Problems,
    check_dns_label,
    check_dns_subdomain,
    check_int_range,
)


def config_problems(config: ArchitectureConfig) -> Problems:
    """Every problem of ``config``, from both layers and between them."""
    from vllm_doks.cli import infra_props
    from vllm_doks.k8s.checks import check_image
    from vllm_doks.k8s.names import check_model_id

    problems = Problems()
    problems.extend(infra_props(config).problems().items)

    if check_model_id(problems, "model_id", config.model_id):
        # The seed derives the model's name as element(split("/", model_id), 1).
        problems.check(
            "/" in config.model_id,
            "model_id",
            config.model_id,
            "must be 'organization/name' as on Hugging Face, e.g. 'Qwen/Qwen2.5-0.5B-Instruct'",
        )
    check_int_range(problems, "replicas", config.replicas, 1)
    check_dns_label(problems, "namespace", config.namespace)
    check_dns_subdomain(problems, "gateway_class", config.gateway_class)
    if config.hf_token_secret:
        check_dns_subdomain(problems, "hf_token_secret", config.hf_token_secret)
    if config.vllm_image:
        check_image(problems, "vllm_image", config.vllm_image)

    # The worker pool's anti-affinity is required: a replica without its own GPU node stays
    # Pending forever (the seed warns about this), so refuse the plan up front.
    if (
        isinstance(config.replicas, int)
        and isinstance(config.gpu_node_count, int)
        and config.replicas > config.gpu_node_count
    ):
        problems.add(
            "replicas",
            config.replicas,
            f"must be at most gpu_node_count ({config.gpu_node_count}): each replica needs its "
            "own GPU node (required pod anti-affinity); add GPU nodes or lower replicas",
        )
    return problems


def preflight(config: ArchitectureConfig, layers: Sequence[str], outputs: InfraOutputs) -> None:
    """Raise one ValidationError listing every problem of the configuration."""
    config_problems(config).raise_if_any()
    if "k8s" in layers or config.kubernetes_via_terraform:
        _dry_build_chart(config, outputs)


def _dry_build_chart(config: ArchitectureConfig, outputs: InfraOutputs) -> None:
    import cdk8s

    from vllm_doks.k8s.serving_chart import CHART_NAME, VllmServingChart

    VllmServingChart(cdk8s.App(), CHART_NAME, config, outputs)
