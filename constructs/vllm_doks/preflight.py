"""Whole-configuration checks before anything is synthesized or written.

Each construct validates its own props, but a construct stops at its own problems. Here the
configuration is checked for every layer being synthesized, with the same check functions
and props classes the constructs use, plus the checks that span both layers, so a user sees
every problem of a config in one run. Only the requested layers' modules are imported: a
cloud-only synth never loads cdk8s, a Kubernetes-only one never loads the DigitalOcean
provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vllm_doks import contracts
from vllm_doks.capacity import (
    CapacityReport,
    ClusterPlan,
    PoolPlan,
    lookup_parameters_b,
    plan_capacity,
)
from vllm_doks.config import (
    OPENAI_PREFIX,
    ROUTING_STRATEGIES,
    ArchitectureConfig,
    InfraOutputs,
    ServedModel,
)
from vllm_doks.gpu_catalog import GPU_SIZES
from vllm_doks.model_arch import (
    KV_CACHE_DTYPE_BYTES,
    ModelArchitecture,
    load_architecture,
    lookup_architecture,
)
from vllm_doks.rollout_config import lora_slots_and_rank
from vllm_doks.validation import (
    Problems,
    ValidationError,
    check_dns_label,
    check_dns_subdomain,
    check_int_range,
)
from vllm_doks.weights import check_revision


def _renamed(problems: Problems, source: Problems, names: Mapping[str, str]) -> None:
    """Add ``source``'s problems that concern config inputs, under the inputs' names."""
    for p in source.items:
        if p.field in names:
            problems.add(names[p.field], p.value, p.expected)


@dataclass(frozen=True)
class VllmSettings:
    """The config's vLLM memory settings, typed; ``None`` where not set (not passed)."""

    max_model_len: int | None
    """A length, or -1 for ``auto``."""
    kv_cache_dtype: str | None
    gpu_memory_utilization: float | None


def parse_max_model_len(raw_value: str, field_name: str, problems: Problems) -> int | None:
    """``--max-model-len`` from a config value: a length, -1 for ``auto``, None when empty;
    a bad value adds a problem under ``field_name`` and gives None."""
    raw = raw_value.strip().lower()
    if raw in ("auto", "-1"):
        return -1
    if not raw:
        return None
    try:
        max_len = int(raw)
    except ValueError:
        max_len = 0
    if max_len < 1:
        problems.add(
            field_name,
            raw_value,
            "must be a whole number of tokens (at least 1), 'auto' (vLLM's -1: the longest "
            "that fits the KV cache), or empty for the model's own maximum",
        )
        return None
    return max_len


def vllm_settings(config: ArchitectureConfig, problems: Problems) -> VllmSettings:
    """Parse ``max_model_len``, ``kv_cache_dtype`` and ``gpu_memory_utilization``, adding a
    problem (field, value, what is valid) for each bad one."""
    max_len = parse_max_model_len(str(config.max_model_len or ""), "max_model_len", problems)
    kv = str(config.kv_cache_dtype or "").strip().lower() or None
    if kv is not None and kv not in KV_CACHE_DTYPE_BYTES:
        problems.add(
            "kv_cache_dtype",
            config.kv_cache_dtype,
            f"must be one of vLLM v0.18's --kv-cache-dtype values: "
            f"{', '.join(KV_CACHE_DTYPE_BYTES)}; or empty for auto",
        )
        kv = None
    util: float | None = None
    raw_util = str(config.gpu_memory_utilization or "").strip()
    if raw_util:
        try:
            util = float(raw_util)
        except ValueError:
            util = -1.0
        if not 0 < util <= 1:
            problems.add(
                "gpu_memory_utilization",
                config.gpu_memory_utilization,
                "must be a fraction greater than 0 and at most 1, e.g. 0.95; or empty for "
                "vLLM's 0.9",
            )
            util = None
    return VllmSettings(max_len, kv, util)


def model_architecture(config: ArchitectureConfig, problems: Problems) -> ModelArchitecture | None:
    """The model's architecture: ``model_config_json`` when set, else the built-in table."""
    if config.model_config_json:
        try:
            return load_architecture(config.model_config_json)
        except ValidationError as err:
            for p in err.problems:
                name = p.field if p.field == "model_config_json" else "model_config_json"
                problems.add(name, config.model_config_json, f"{p.field}: {p.expected}")
            return None
    return lookup_architecture(config.model_id)


def _architecture(
    config: ArchitectureConfig, model: ServedModel, single: bool, problems: Problems
) -> ModelArchitecture | None:
    """A served model's architecture: ``model_config_json`` (which describes the one model of
    a single-model configuration), else the built-in table by the model's id."""
    if single and config.model_config_json:
        return model_architecture(config, problems)
    return lookup_architecture(model.id)


def _parameters_b(model: ServedModel, problems: Problems) -> float | None:
    """The model's parameter count from the config, or None for the built-in table."""
    if not model.parameters_b:
        return None
    try:
        parameters_b = float(model.parameters_b)
    except ValueError:
        parameters_b = -1.0
    if not 0 < parameters_b < 10_000:
        problems.add(
            model.fields.get("parameters_b", "parameters_b"),
            model.parameters_b,
            "must be the model's parameter count in billions, e.g. 7.6",
        )
        return -1.0
    return parameters_b


def capacity_plan(
    config: ArchitectureConfig, outputs: InfraOutputs, problems: Problems
) -> CapacityReport | None:
    """The capacity plan of the configured pools (one per model), or None when none can be
    estimated (models outside the built-in table without a parameter count; a note says so).
    A model that cannot be estimated is left out of the plan."""
    settings = vllm_settings(config, problems)
    # With autoscaling the plan must hold the maximum, on the nodes the pool can grow to.
    autoscaling = config.autoscaling and config.autoscaling_max_replicas >= 1
    models = config.served_models()
    pools: list[PoolPlan] = []
    for model in models:
        arch = _architecture(config, model, len(models) == 1, problems)
        parameters_b = _parameters_b(model, problems)
        if parameters_b == -1.0:
            return None
        if parameters_b is None and arch is None and lookup_parameters_b(model.id) is None:
            continue
        if not isinstance(model.replicas, int) or model.replicas < 1:
            return None
        if model.gpu_size not in GPU_SIZES:
            return None  # reported with the known sizes by the cloud layer's checks
        pools.append(
            PoolPlan(
                # The seed's single pool keeps its name in the report: "vllm".
                name=model.name,
                model_id=model.id,
                gpu_size=model.gpu_size,
                replicas=model.replicas,
                quantization=model.quantization or None,
                parameters_b=parameters_b,
                max_replicas=config.autoscaling_max_replicas if autoscaling else None,
                min_replicas=config.autoscaling_min if autoscaling else None,
                architecture=arch,
                # Bad values are reported by kubernetes_problems under the model's key.
                max_model_len=parse_max_model_len(model.max_model_len, "", Problems()),
                kv_cache_dtype=settings.kv_cache_dtype,
                gpu_memory_utilization=settings.gpu_memory_utilization or 0.9,
                max_loras=_lora_plan(model)[0],
                max_lora_rank=_lora_plan(model)[1],
            )
        )
    if not pools:
        return None
    return plan_capacity(
        ClusterPlan(
            pools=pools,
            gpu_node_count=config.gpu_nodes_max,
            nfs_size_gb=outputs.nfs_size_gb,
            compile_cache=config.compile_cache,
        )
    )


def unplanned_models(config: ArchitectureConfig) -> list[str]:
    """Models the capacity plan cannot estimate: not in the built-in tables, and neither
    ``model_config_json`` nor a parameter count given."""
    models = config.served_models()
    return [
        m.id
        for m in models
        if not m.parameters_b
        and not (len(models) == 1 and config.model_config_json)
        and lookup_architecture(m.id) is None
        and lookup_parameters_b(m.id) is None
    ]


def cloud_problems(config: ArchitectureConfig) -> Problems:
    from vllm_doks.wiring import infra_props

    problems = Problems()
    # InfraProps names the bucket's fields after itself; the configuration's keys are these.
    names = {
        "model_bucket.name": "model_source_bucket",
        "model_bucket.region": "model_source_region",
    }
    for item in infra_props(config).problems().items:
        field_name = names.get(item.field, item.field)
        if field_name == "model_source_bucket" and not item.value:
            problems.add(
                field_name,
                item.value,
                "must name the bucket to create with create_model_source_bucket",
            )
        else:
            problems.add(field_name, item.value, item.expected)
    return problems


def kubernetes_problems(config: ArchitectureConfig, outputs: InfraOutputs) -> Problems:
    from vllm_doks.k8s.checks import check_image
    from vllm_doks.k8s.smoke_test import check_url
    from vllm_doks.wiring import (
        GATEWAY_ENDPOINT_INPUTS,
        MODEL_STORE_OUTPUTS,
        gateway_endpoint_props,
        model_store_props,
    )

    problems = Problems()
    models = config.served_models()
    for model in models:
        _model_problems(problems, model, config)
    _routing_problems(problems, config, models)
    vllm_settings(config, problems)
    if config.model_config_json:
        model_architecture(config, problems)
    _observability_problems(problems, config)
    check_dns_label(problems, "namespace", config.namespace)
    for served in config.served_models():
        if served.revision:
            check_revision(problems, served.fields["revision"], served.revision)
    _model_source_problems(problems, config, models)
    for name in ("hf_token_secret", "api_key_secret"):
        if getattr(config, name):
            check_dns_subdomain(problems, name, getattr(config, name))
    if config.vllm_image:
        check_image(problems, "vllm_image", config.vllm_image)
    _renamed(problems, gateway_endpoint_props(config).problems(), GATEWAY_ENDPOINT_INPUTS)
    if config.smoke_test and config.smoke_test_url:
        check_url(problems, "smoke_test_url", config.smoke_test_url)
    _renamed(problems, model_store_props(config, outputs).problems(), MODEL_STORE_OUTPUTS)
    if not problems:
        report = capacity_plan(config, outputs, problems)
        if report is not None:
            by_pool = {f"pools[{m.name}].": m for m in models}
            for p in report.problems().items:
                # Replicas versus GPU nodes of a single model is reported below and in
                # _observability_problems, in the config's terms.
                if p.field == "gpu_node_count" and len(models) == 1:
                    continue
                name = p.field
                for prefix, m in by_pool.items():
                    if name.startswith(prefix):
                        key = name.removeprefix(prefix)
                        name = m.fields.get(key, key) if len(models) > 1 else key
                problems.add(name, p.value, p.expected)
    # The worker pool's anti-affinity is required: a replica without its own GPU node stays
    # Pending forever (the seed warns about this), so refuse the plan up front. An autoscaled
    # GPU pool grows to gpu_autoscale_max_nodes for Pending replicas.
    nodes = config.gpu_nodes_max
    source = "gpu_autoscale_max_nodes" if config.gpu_autoscale_max_nodes else "gpu_node_count"
    if (
        not config.models
        and isinstance(config.replicas, int)
        and isinstance(nodes, int)
        and config.replicas > nodes
    ):
        problems.add(
            "replicas",
            config.replicas,
            f"must be at most {source} ({nodes}): each replica needs its "
            "own GPU node (required pod anti-affinity); add GPU nodes or lower replicas",
        )
    return problems


def _model_source_problems(
    problems: Problems, config: ArchitectureConfig, models: tuple[ServedModel, ...]
) -> None:
    """The Spaces source of every model, under the configuration's own key names (bucket,
    region and Secret once, each model's prefix under its entry)."""
    reported: set[str] = set()
    for served in models:
        source = config.model_source(served)
        if source is None:
            return
        names = {
            "bucket": "model_source_bucket",
            "region": "model_source_region",
            "credentials_secret": "model_source_secret",
            "prefix": served.fields.get("source_prefix", "source_prefix"),
        }
        for item in source.problems("source").items:
            name = names[item.field.removeprefix("source.")]
            if name not in reported:
                reported.add(name)
                problems.add(name, item.value, item.expected)


def _model_problems(problems: Problems, model: ServedModel, config: ArchitectureConfig) -> None:
    """One model's keys, named as the configuration names them (``model_id`` for the single
    model of the top-level keys, ``models[1].id`` in a ``models:`` list)."""
    from vllm_doks.k8s.names import VLLM_QUANTIZATION_METHODS, check_model_id

    name = model.fields
    if check_model_id(problems, name["id"], model.id):
        # The seed derives the model's name as element(split("/", model_id), 1).
        problems.check(
            "/" in model.id,
            name["id"],
            model.id,
            "must be 'organization/name' as on Hugging Face, e.g. 'Qwen/Qwen2.5-0.5B-Instruct'",
        )
    check_int_range(problems, name["replicas"], model.replicas, 1)
    if model.quantization:
        problems.check(
            model.quantization in VLLM_QUANTIZATION_METHODS,
            name["quantization"],
            model.quantization,
            f"must be one of vLLM's --quantization methods: {', '.join(VLLM_QUANTIZATION_METHODS)}"
            " (or empty for none)",
        )
    if not config.models:
        return
    if model.max_model_len != str(config.max_model_len or ""):  # the entry's own value
        parse_max_model_len(model.max_model_len, name["max_model_len"], problems)
    check_dns_label(problems, name["name"], model.name, max_len=40)
    if model.served_name is not None:
        problems.check(
            not any(c.isspace() for c in model.served_name),
            name["served_name"],
            model.served_name,
            "must be a name without whitespace, as clients send it in 'model'",
        )
    if model.gpu_node_pool is not None:
        check_dns_label(problems, name["gpu_node_pool"], model.gpu_node_pool)
    elif model.gpu_size != config.gpu_size:
        problems.add(
            name["gpu_node_pool"],
            None,
            f"is required with gpu_size {model.gpu_size!r}: Stack 1's GPU pool has "
            f"{config.gpu_size!r} nodes; name a node pool of {model.gpu_size!r} nodes",
        )
    if model.gpu_size not in GPU_SIZES:
        problems.add(
            name["gpu_size"], model.gpu_size, f"must be one of {', '.join(sorted(GPU_SIZES))}"
        )
    problems.check(
        model.path_prefix.startswith("/")
        and model.path_prefix.endswith(OPENAI_PREFIX)
        and not any(c.isspace() for c in model.path_prefix),
        name["path_prefix"],
        model.path_prefix,
        f"must be an absolute path ending in {OPENAI_PREFIX}, e.g. '/qwen-7b/v1' (rewritten to "
        f"vLLM's {OPENAI_PREFIX})",
    )


def _routing_problems(
    problems: Problems, config: ArchitectureConfig, models: tuple[ServedModel, ...]
) -> None:
    """The routing strategy, and the names and paths the models must not share."""
    from vllm_doks.k8s.names import model_name_from_id

    if not problems.check(
        config.routing in ROUTING_STRATEGIES,
        "routing",
        config.routing,
        f"must be one of {', '.join(ROUTING_STRATEGIES)}",
    ):
        return
    for key in ("name", "served_name", "path_prefix"):
        seen: dict[str, str] = {}
        for m in models:
            value = getattr(m, key) or model_name_from_id(m.id)
            if key == "path_prefix" and config.routing == "prefix-aware":
                continue  # one route to the router serves every model
            if key in ("served_name", "path_prefix") and m.canary is not None:
                continue  # a canary shares its stable entry's name and route
            if value in seen:
                problems.add(
                    m.fields.get(key, key),
                    value,
                    f"must differ from {seen[value]}'s: each model needs its own",
                )
            seen.setdefault(value, m.fields.get(key, key))
    if config.routing == "prefix-aware":
        problems.check(
            "vllm-router" not in {m.name for m in models},
            "models",
            [m.name for m in models],
            "must not name a pool 'vllm-router', the router's name",
        )
    if config.routing == "inference-pool":
        from vllm_doks import contracts

        problems.check(
            config.gateway_class not in contracts.GATEWAY_CLASSES_WITHOUT_INFERENCE_EXTENSION,
            "routing",
            config.routing,
            f"needs a Gateway implementing the Gateway API Inference Extension; gateway_class "
            f"{config.gateway_class!r} does not: use routing: prefix-aware, or the gateway_class "
            "of an implementation such as Envoy Gateway, kgateway or Istio",
        )
        if config.inference_gateway_namespace:
            check_dns_label(
                problems, "inference_gateway_namespace", config.inference_gateway_namespace
            )
        elif config.network_policy:
            problems.add(
                "inference_gateway_namespace",
                "",
                "is required with routing: inference-pool while network_policy is on: the "
                "namespace of the gateway's data plane (e.g. envoy-gateway-system), which the "
                "NetworkPolicies must admit",
            )


def _observability_problems(problems: Problems, config: ArchitectureConfig) -> None:
    """The optional autoscaler, PodMonitor and dashboard, checked with their constructs'
    rules under the config's names (the constructs need a built pool for their own checks).

    The autoscaling bounds must agree with the cloud layer's: the autoscaler's maximum
    cannot exceed the GPU nodes the pool can grow to (``gpu_autoscale_max_nodes``, else
    ``gpu_node_count``), since the worker pool's required anti-affinity puts one replica on
    each GPU node.
    """
    if config.pod_monitor or config.autoscaling:
        check_dns_label(problems, "prometheus_namespace", config.prometheus_namespace)
    if config.pod_monitor and config.prometheus_release:
        from vllm_doks.k8s.pod_monitor import check_label_value

        check_label_value(problems, "prometheus_release", config.prometheus_release)
    if not config.autoscaling:
        return
    from vllm_doks.k8s.autoscaling import _PROMETHEUS_URL  # here: only an autoscaler needs it

    if config.prometheus_server_address:
        problems.check(
            bool(_PROMETHEUS_URL.match(config.prometheus_server_address)),
            "prometheus_server_address",
            config.prometheus_server_address,
            "must be an http(s) URL of Prometheus, e.g. "
            "'http://prometheus-operated.monitoring.svc:9090'",
        )
    if config.autoscaling_min_replicas:
        check_int_range(problems, "autoscaling_min_replicas", config.autoscaling_min_replicas, 1)
    if not check_int_range(
        problems, "autoscaling_max_replicas", config.autoscaling_max_replicas, 1
    ):
        return
    maximum = config.autoscaling_max_replicas
    minimum = config.autoscaling_min
    if isinstance(minimum, int) and minimum >= 1 and maximum < minimum:
        name = "autoscaling_min_replicas" if config.autoscaling_min_replicas else "replicas"
        problems.add(
            "autoscaling_max_replicas",
            maximum,
            f"must be at least {name} ({minimum}), the autoscaler's minimum",
        )
    elif (
        isinstance(config.replicas, int)
        and config.autoscaling_min_replicas
        and not minimum <= config.replicas <= maximum
    ):
        problems.add(
            "replicas",
            config.replicas,
            f"must be between autoscaling_min_replicas ({minimum}) and autoscaling_max_replicas "
            f"({maximum}): the Deployment starts at replicas and each re-apply resets it",
        )
    nodes = config.gpu_nodes_max
    source = "gpu_autoscale_max_nodes" if config.gpu_autoscale_max_nodes else "gpu_node_count"
    if isinstance(nodes, int) and maximum > nodes:
        problems.add(
            "autoscaling_max_replicas",
            maximum,
            f"must be at most {source} ({nodes}): each replica needs its own GPU node "
            "(required pod anti-affinity), so the replicas beyond it would stay Pending; "
            f"lower autoscaling_max_replicas or set gpu_autoscale_max_nodes to at least {maximum}",
        )


def _lora_plan(model: ServedModel) -> tuple[int | None, int]:
    """``(max_loras, max_lora_rank)`` of a model entry's pool for its capacity plan
    (``max_loras`` ``None``: no LoRA)."""
    if not model.adapters and not model.lora_runtime_updates:
        return None, contracts.VLLM_DEFAULT_MAX_LORA_RANK
    return lora_slots_and_rank(model.adapters, model.max_loras, model.max_lora_rank)
