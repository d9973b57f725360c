"""One typed configuration for the whole architecture, and where its values come from.

Keys are the seed's Terraform input names (Stack 1 and Stack 2) plus a few this library adds,
so a ``terraform.tfvars`` translates line for line into the YAML config file. Precedence,
lowest first: built-in defaults < config file < ``VLLM_DOKS_<KEY>`` environment variables <
command-line flags. Nothing here reads the network; constructs never read this module's
sources themselves, they receive typed props built from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vllm_doks import contracts
from vllm_doks.handoff import HANDOFF_KEYS as HANDOFF_KEYS
from vllm_doks.handoff import OPTIONAL_HANDOFF_KEYS, StackOneOutputs, gpu_node_pool_name
from vllm_doks.handoff import STACK2_OUTPUT_DESCRIPTIONS as STACK2_OUTPUT_DESCRIPTIONS
from vllm_doks.rollout_config import AdapterConfig, CanaryConfig, parse_adapters, parse_canary
from vllm_doks.validation import Problems, list_of_mappings
from vllm_doks.weights import SpacesSource

ENV_PREFIX = "VLLM_DOKS_"

#: Credentials people reach for as inputs (the seed's Stack 2 has ``hf_token``). They are
#: refused so that no token is ever written into a config-derived file; each says where the
#: credential goes instead.
SECRET_INPUTS: dict[str, str] = {
    "hf_token": "is not an input here, so the token never lands in a synthesized file: create "
    "the Secret instead (kubectl -n vllm create secret generic hf-token "
    "--from-literal=HF_TOKEN=...), or for Stack 2 via Terraform set TF_VAR_hf_token",
    "api_key": "is not an input here: create the Secret instead (kubectl -n vllm create secret "
    "generic vllm-api-key --from-literal=VLLM_API_KEY=...), or for Stack 2 via Terraform set "
    "TF_VAR_vllm_api_key",
}


def _input(default: Any, help: str, stack: str) -> Any:
    return field(default=default, metadata={"help": help, "stack": stack})


ROUTING_STRATEGIES = ("round-robin", "prefix-aware", "inference-pool")

#: Path prefix of the OpenAI API, the one vLLM serves.
OPENAI_PREFIX = "/v1"


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """One entry of the config file's ``models:`` list: a model on the shared NFS store, served
    by a worker pool of its own. Empty values fall back to the top-level keys."""

    id: str
    """Hugging Face model id, e.g. ``Qwen/Qwen2.5-7B-Instruct``. Required."""
    served_name: str = ""
    """Name clients send as ``"model"`` (``--served-model-name``). Default: the model's name,
    the last part of ``id``."""
    name: str = ""
    """Name of the worker pool's Deployment and Service. Default: ``vllm`` for a single model,
    else the served name as a DNS label."""
    replicas: int | None = None
    """vLLM replicas. Default: the top-level ``replicas``."""
    quantization: str | None = None
    """``--quantization`` method. Default: the top-level ``quantization``."""
    max_model_len: str = ""
    """Context length for the model (``--max-model-len``). Default: the top-level
    ``max_model_len`` when the configuration has one, else vLLM's (the model's own)."""
    parameters_b: str = ""
    """Parameter count in billions for the capacity plan. Default: the built-in table (and the
    top-level ``model_parameters_b`` for a single model)."""
    gpu_size: str = ""
    """GPU Droplet size of the pool's nodes. Default: the top-level ``gpu_size``."""
    gpu_node_pool: str = ""
    """DOKS node pool to run on. Default: Stack 1's GPU pool; required for another
    ``gpu_size`` (Stack 1 creates one pool, of the top-level ``gpu_size``)."""
    path_prefix: str = ""
    """Path on the Gateway, rewritten to vLLM's ``/v1``. Default: ``/v1`` for a single model
    or with ``routing: prefix-aware`` (the router picks the pool by the model in the request
    body), else ``/<name>/v1``."""
    adapters: tuple[AdapterConfig, ...] = ()
    """LoRA adapters served next to the model: a list of ``{id, revision, name, rank,
    base_model}`` (see the README's "Rollouts and LoRA adapters"). Default: none."""
    max_loras: int | None = None
    """vLLM ``--max-loras`` with adapters. Default: the number of adapters."""
    max_lora_rank: int | None = None
    """vLLM ``--max-lora-rank`` with adapters. Default: the smallest that holds them."""
    lora_runtime_updates: bool = False
    """Let clients with the API key load and unload adapters at run time
    (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``; see the README for the trade-off). Default off."""
    canary: CanaryConfig | None = None
    """This entry's pool is the canary of another entry's: ``{of: <its name>, weight: N,
    steps: [0, 10, 50, 100], promoted: false}``; it serves the same served name and joins
    that entry's route with ``weight`` percent. Default: none."""
    revision: str = ""
    """Commit (40 hex digits) of ``id`` to download and verify. Default: the top-level
    ``model_revision`` for a single model, else the hub's default branch."""
    source_prefix: str = ""
    """With ``model_source_bucket``: key prefix of this model's files in the bucket, ending in
    ``/``. Default: ``<id>/``, e.g. ``Qwen/Qwen2.5-7B-Instruct/``."""


#: The keys of a ``models:`` entry, in the order of :class:`ModelConfig`.
MODEL_KEYS = tuple(f.name for f in fields(ModelConfig))


@dataclass(frozen=True)
class ServedModel:
    """A ``models:`` entry (or the single model of the top-level keys) with every default
    filled in; ``fields`` maps each key to its name in the configuration, for messages."""

    id: str
    served_name: str | None
    name: str
    replicas: int
    quantization: str
    max_model_len: str
    parameters_b: str
    gpu_size: str
    gpu_node_pool: str | None
    path_prefix: str
    fields: Mapping[str, str]
    adapters: tuple[AdapterConfig, ...] = ()
    max_loras: int | None = None
    max_lora_rank: int | None = None
    lora_runtime_updates: bool = False
    canary: CanaryConfig | None = None
    revision: str = ""
    """Pinned commit, or ``""`` for the hub's default branch."""
    source_prefix: str = ""
    """Key prefix of the model's files in ``model_source_bucket`` (``<id>/`` when empty)."""

    @property
    def rewrite_prefix_to(self) -> str | None:
        return None if self.path_prefix == OPENAI_PREFIX else OPENAI_PREFIX


@dataclass(frozen=True, kw_only=True)
class ArchitectureConfig:
    """Every input of the architecture with its default (the seed's values where it has them;
    Stack 1's required inputs default to the seed's example ``terraform.tfvars``)."""

    # Stack 1 (cloud layer)
    name_prefix: str = _input("my-vllm", "Prefix for all resource names", "1")
    region: str = _input("nyc2", "DigitalOcean region (must have H100 GPUs and Managed NFS)", "1")
    vpc_cidr: str = _input("10.200.0.0/22", "CIDR block for VPC", "1")
    doks_cluster_subnet: str = _input("172.16.0.0/20", "CIDR block for DOKS cluster subnet", "1")
    doks_service_subnet: str = _input("192.168.0.0/22", "CIDR block for DOKS service subnet", "1")
    nfs_size_gb: int = _input(1000, "Size of NFS share in GB for model storage", "1")
    nfs_snapshot_name: str = _input(
        "",
        "Name of a digitalocean_nfs_snapshot of the share to take (set it after the model "
        "download was verified); empty: none",
        "1",
    )
    gpu_node_count: int = _input(2, "Number of H100 GPU nodes in the GPU node pool", "1")
    gpu_autoscale_max_nodes: int = _input(
        0,
        "Autoscale the GPU node pool from gpu_node_count up to this many nodes; 0: fixed size",
        "1",
    )
    gpu_size: str = _input(
        "gpu-h100x1-80gb",
        "GPU Droplet size of the GPU pool and the vLLM pods (see the GPU table)",
        "1",
    )
    doks_control_plane_ha: bool = _input(
        False, "Enable high availability for DOKS control plane", "1"
    )
    doks_surge_upgrade: bool = _input(
        False, "Surge upgrades (off: GPU capacity is usually contracted)", "1"
    )
    management_node_pool_min_nodes: int = _input(2, "Minimum nodes in management node pool", "1")
    management_node_pool_max_nodes: int = _input(3, "Maximum nodes in management node pool", "1")
    allow_unlisted_region: bool = _input(
        False, "Allow a region not (yet) in the supported list", "1"
    )
    management_node_size: str = _input(
        "",
        "Droplet size of the management pool (empty: the cheapest available 2 vCPU / 4 GB "
        "size at creation, kept afterwards)",
        "1",
    )
    kubernetes_version: str = _input(
        "",
        "DOKS version slug, e.g. 1.34.1-do.0 (empty: the newest at creation, kept afterwards; "
        "set a newer one to upgrade)",
        "1",
    )
    state_bucket: str = _input(
        "", "Spaces bucket for remote Terraform state (empty: local state file)", "1"
    )
    state_key: str = _input("vllm-doks/infra.tfstate", "Object key of the state in the bucket", "1")
    state_spaces_region: str = _input("nyc3", "Spaces region of the state bucket", "1")
    create_model_source_bucket: bool = _input(
        False,
        "Create model_source_bucket (a Spaces bucket in model_source_region) and a read-only "
        "Spaces key for it; outputs model_bucket_* give its endpoint and the key pair",
        "1",
    )
    kubernetes_via_terraform: bool = _input(
        False,
        "Also synthesize Stack 2 as a Terraform stack (vllm-kubernetes) in the cloud layer",
        "2",
    )
    # Stack 2 (Kubernetes layer)
    model_id: str = _input(
        "Qwen/Qwen2.5-0.5B-Instruct", "HuggingFace model ID to download and serve", "2"
    )
    model_revision: str = _input(
        "",
        "Commit (40 hex digits) of model_id to download, so every cluster serves the same "
        "weights; empty: the hub's default branch at download time (files are verified "
        "against the hub's hashes either way)",
        "2",
    )
    model_source_bucket: str = _input(
        "",
        "Spaces bucket to download the models from instead of the Hugging Face hub (each "
        "model under its id, e.g. Qwen/Qwen2.5-0.5B-Instruct/, with its sha256 manifest); "
        "empty: the hub",
        "2",
    )
    model_source_region: str = _input("nyc3", "Spaces region of model_source_bucket", "2")
    model_source_secret: str = _input(
        "spaces-model-source",
        "Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of a Spaces key that reads "
        "model_source_bucket (create it with kubectl)",
        "2",
    )
    replicas: int = _input(1, "Number of vLLM replicas (set > 1 for HA)", "2")
    model_parameters_b: str = _input(
        "",
        "Parameter count of model_id in billions, for the capacity plan (empty: the built-in "
        "table of well-known models)",
        "2",
    )
    quantization: str = _input("", "Quantization method (e.g., fp8); empty for none", "2")
    max_model_len: str = _input(
        "",
        "vLLM --max-model-len: a number of tokens, or 'auto' (vLLM's -1: the longest that "
        "fits the KV cache); empty: not passed (vLLM uses the model's own maximum)",
        "2",
    )
    kv_cache_dtype: str = _input(
        "", "vLLM --kv-cache-dtype (e.g. fp8 halves the KV cache); empty: not passed (auto)", "2"
    )
    gpu_memory_utilization: str = _input(
        "",
        "vLLM --gpu-memory-utilization, a fraction of GPU memory (e.g. 0.95); empty: not "
        "passed (vLLM's 0.9)",
        "2",
    )
    model_config_json: str = _input(
        "",
        "Path of the model's config.json, for the capacity plan of a model outside the "
        "built-in table",
        "2",
    )
    hf_token_secret: str = _input(
        "hf-token",
        "Secret holding HF_TOKEN for gated models (create it with kubectl; optional)",
        "2",
    )
    namespace: str = _input("vllm", "Kubernetes namespace where vLLM is deployed", "2")
    vllm_image: str = _input("", "vLLM image (empty: the library's pinned release)", "2")
    gateway_class: str = _input("cilium", "GatewayClass of the Gateway", "2")
    api_key_secret: str = _input(
        "vllm-api-key",
        "Secret holding VLLM_API_KEY that clients must send (create it with kubectl; "
        "required while set); empty turns API-key authentication off",
        "2",
    )
    tls_certificate_secret: str = _input(
        "",
        "TLS Secret for an HTTPS listener on the Gateway (e.g. issued by cert-manager); "
        "empty: HTTP only",
        "2",
    )
    tls_hostname: str = _input(
        "", "Host name of the HTTPS listener (needed with cert_manager_cluster_issuer)", "2"
    )
    cert_manager_cluster_issuer: str = _input(
        "",
        "cert-manager ClusterIssuer that issues tls_certificate_secret for tls_hostname; "
        "empty: none",
        "2",
    )
    compile_cache: bool = _input(
        True,
        "Keep vLLM's torch.compile cache on the NFS share (per configuration, published "
        "atomically), so only the first pod of a configuration compiles",
        "2",
    )
    smoke_test: bool = _input(
        True,
        "Job sending one authenticated chat completion through the Gateway after apply and "
        "reporting its latency (Stack 2 via Terraform waits for it)",
        "2",
    )
    smoke_test_url: str = _input(
        "",
        "Chat completions URL the smoke test calls; empty: the Cilium Gateway Service "
        "(cilium-gateway-<gateway>) in the namespace (with another gateway_class, no smoke "
        "test unless this is set)",
        "2",
    )
    network_policy: bool = _input(
        True,
        "NetworkPolicies: only the Gateway reaches vLLM's port, downloads get no ingress and "
        "only DNS + HTTPS egress",
        "2",
    )
    autoscaling: bool = _input(
        False,
        "KEDA ScaledObject scaling the vLLM Deployment on vLLM's queue metrics from Prometheus "
        "(needs KEDA and autoscaling_max_replicas)",
        "2",
    )
    autoscaling_min_replicas: int = _input(
        0, "Fewest replicas with autoscaling; 0: the value of replicas", "2"
    )
    autoscaling_max_replicas: int = _input(
        0,
        "Most replicas with autoscaling (at most gpu_autoscale_max_nodes, or gpu_node_count "
        "without it); required with autoscaling",
        "2",
    )
    prometheus_server_address: str = _input(
        "",
        "Prometheus URL the autoscaler queries; empty: the Prometheus Operator's Service "
        "prometheus-operated in prometheus_namespace, port 9090",
        "2",
    )
    pod_monitor: bool = _input(
        False,
        "Prometheus Operator PodMonitor scraping vLLM's /metrics (the NetworkPolicy then admits "
        "prometheus_namespace)",
        "2",
    )
    prometheus_namespace: str = _input("monitoring", "Namespace of the Prometheus pods", "2")
    prometheus_release: str = _input(
        contracts.DEFAULT_PROMETHEUS_RELEASE,
        "Value of the PodMonitor's release label, which kube-prometheus-stack's Prometheus "
        "selects PodMonitors by (its Helm release name); empty: no release label",
        "2",
    )
    grafana_dashboard: bool = _input(
        False, "Grafana dashboard ConfigMap (grafana_dashboard label) for Grafana's sidecar", "2"
    )
    routing: str = _input(
        "round-robin",
        "How the Gateway reaches the replicas: round-robin (the pools' Services), prefix-aware "
        "(vLLM production-stack router: one /v1 for every model) or inference-pool (Gateway "
        "API Inference Extension; not on Cilium)",
        "2",
    )
    inference_gateway_namespace: str = _input(
        "",
        "Namespace of the gateway's data plane with routing: inference-pool (its NetworkPolicies "
        "admit it; required while network_policy is on)",
        "2",
    )
    models: tuple[ModelConfig, ...] = field(
        default=(),
        metadata={
            "help": "Several models on the one NFS share, each with its own worker pool (a "
            "list, see the README's 'Several models'); empty: the single model of model_id",
            "stack": "2",
            "file_only": True,
        },
    )

    @property
    def prometheus_url(self) -> str:
        """``prometheus_server_address``, or the Prometheus Operator's Service in
        ``prometheus_namespace``."""
        return (
            self.prometheus_server_address
            or f"http://prometheus-operated.{self.prometheus_namespace}.svc:9090"
        )

    @property
    def autoscaling_min(self) -> int:
        """The autoscaler's minimum: ``autoscaling_min_replicas``, or ``replicas`` when 0."""
        return self.autoscaling_min_replicas or self.replicas

    @property
    def gpu_nodes_max(self) -> int:
        """GPU nodes the pool can grow to: ``gpu_autoscale_max_nodes``, else
        ``gpu_node_count``."""
        return self.gpu_autoscale_max_nodes or self.gpu_node_count

    @property
    def state_backend_enabled(self) -> bool:
        return bool(self.state_bucket)

    def model_source(self, served: ServedModel) -> SpacesSource | None:
        """Where ``served`` is downloaded from: its place in ``model_source_bucket``, or
        ``None`` for the Hugging Face Hub."""
        if not self.model_source_bucket:
            return None
        return SpacesSource(
            bucket=self.model_source_bucket,
            region=self.model_source_region,
            prefix=served.source_prefix,
            credentials_secret=self.model_source_secret,
        )

    def replace(self, **changes: Any) -> ArchitectureConfig:
        return dataclasses.replace(self, **changes)

    def served_models(self) -> tuple[ServedModel, ...]:
        """The models to serve with every default resolved: the ``models:`` list, or the one
        model of the top-level keys (``model_id``, ``replicas``, ...)."""
        from vllm_doks.k8s.names import dns_label, model_name_from_id

        top_max_len = str(self.max_model_len or "")
        # The single model of the top-level keys is an entry with every value left to them;
        # its messages name those keys.
        models = self.models or (ModelConfig(id=self.model_id),)
        top_level_fields = {
            "id": "model_id",
            "revision": "model_revision",
            "replicas": "replicas",
            "quantization": "quantization",
            "parameters_b": "model_parameters_b",
            "gpu_size": "gpu_size",
            "max_model_len": "max_model_len",
            "source_prefix": "model_source_bucket",
        }
        # A canary entry shares its stable entry's route: it does not make the set "several".
        single = sum(1 for m in models if m.canary is None) == 1
        served: list[ServedModel] = []
        for i, m in enumerate(models):
            served_name = m.served_name or None
            name = m.name or (
                dns_label(f"{m.canary.of}-canary", max_len=40)
                if m.canary is not None
                else "vllm"
                if single
                else dns_label(served_name or model_name_from_id(str(m.id)), max_len=40)
            )
            one_url = single or self.routing == "prefix-aware"
            served.append(
                ServedModel(
                    id=m.id,
                    served_name=served_name,
                    name=name,
                    replicas=self.replicas if m.replicas is None else m.replicas,
                    quantization=self.quantization if m.quantization is None else m.quantization,
                    max_model_len=str(m.max_model_len or top_max_len),
                    parameters_b=m.parameters_b or (self.model_parameters_b if single else ""),
                    gpu_size=m.gpu_size or self.gpu_size,
                    gpu_node_pool=m.gpu_node_pool or None,
                    path_prefix=m.path_prefix
                    or (OPENAI_PREFIX if one_url else f"/{name}{OPENAI_PREFIX}"),
                    fields=(
                        {key: f"models[{i}].{key}" for key in MODEL_KEYS}
                        if self.models
                        else top_level_fields
                    ),
                    adapters=m.adapters,
                    max_loras=m.max_loras,
                    max_lora_rank=m.max_lora_rank,
                    lora_runtime_updates=m.lora_runtime_updates,
                    canary=m.canary,
                    revision=m.revision or (self.model_revision if single else ""),
                    source_prefix=m.source_prefix or f"{m.id}/",
                )
            )
        return tuple(served)


def config_fields() -> tuple[dataclasses.Field[Any], ...]:
    return fields(ArchitectureConfig)


def _coerce(name: str, raw: object, target: type | str, problems: Problems, source: str) -> Any:
    """Turn a YAML/env/CLI value into the field's type, recording a problem if it can't."""
    kind = target if isinstance(target, str) else target.__name__
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in (
            "true",
            "1",
            "yes",
            "on",
            "false",
            "0",
            "no",
            "off",
        ):
            return raw.lower() in ("true", "1", "yes", "on")
        problems.add(name, raw, f"must be true or false (from {source})")
        return None
    if kind == "int":
        if isinstance(raw, bool):
            problems.add(name, raw, f"must be a whole number (from {source})")
            return None
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                pass
        problems.add(name, raw, f"must be a whole number (from {source})")
        return None
    if raw is None:
        return ""
    if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        return str(raw)
    problems.add(name, raw, f"must be a string (from {source})")
    return None


def load_config(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> ArchitectureConfig:
    """Build the configuration from defaults, a YAML file, the environment and overrides.

    Unknown keys and values of the wrong type are reported together in one ValidationError.
    """
    problems = Problems()
    known = {f.name: f for f in config_fields()}
    values: dict[str, Any] = {}

    def apply(source: str, mapping: Mapping[str, object]) -> None:
        for key, raw in mapping.items():
            if key in SECRET_INPUTS:
                # Never echo the value: it is a credential.
                problems.add(key, "<redacted>", SECRET_INPUTS[key])
                continue
            f = known.get(key)
            if f is None:
                problems.add(
                    key, raw, f"is not a known input (from {source}); known: {', '.join(known)}"
                )
                continue
            if f.metadata.get("file_only"):
                if not source.startswith("config file"):
                    problems.add(key, raw, f"can be set in the config file only (from {source})")
                else:
                    values[key] = _parse_models(raw, problems, source)
                continue
            value = _coerce(key, raw, f.type, problems, source)
            if value is not None:
                values[key] = value

    if config_file is not None:
        import yaml  # here: a synth without --config does not load it

        path = Path(config_file)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            problems.add("--config", str(path), f"must be a readable YAML file ({e.strerror})")
            loaded = {}
        except yaml.YAMLError as e:
            problems.add("--config", str(path), f"must be valid YAML ({e})")
            loaded = {}
        if not isinstance(loaded, dict):
            problems.add("--config", str(path), "must be a YAML mapping of input names to values")
            loaded = {}
        apply(f"config file {path}", loaded)
    if env is not None:
        apply(
            "environment",
            {
                k[len(ENV_PREFIX) :].lower(): v
                for k, v in env.items()
                if k.startswith(ENV_PREFIX)
                and (
                    k[len(ENV_PREFIX) :].lower() in known
                    or k[len(ENV_PREFIX) :].lower() in SECRET_INPUTS
                )
            },
        )
    if overrides:
        apply("command line", overrides)
    problems.raise_if_any()
    return ArchitectureConfig(**values)


def _parse_models(raw: object, problems: Problems, source: str) -> tuple[ModelConfig, ...]:
    """The ``models:`` list: a mapping per model with the keys of :class:`ModelConfig`."""
    types = {f.name: f.type for f in fields(ModelConfig)}
    models: list[ModelConfig] = []
    for where, entry in list_of_mappings(
        raw,
        "models",
        problems,
        source=source,
        keys=MODEL_KEYS,
        noun="model",
        list_example="[{id: Qwen/Qwen2.5-7B-Instruct}]",
        entry_example="{id: Qwen/Qwen2.5-7B-Instruct}",
    ):
        values: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "adapters":
                values[key] = parse_adapters(value, f"{where}.adapters", problems, source)
                continue
            if key == "canary":
                values[key] = parse_canary(value, f"{where}.canary", problems, source)
                continue
            kind = str(types[key]).removesuffix(" | None")
            if key == "max_model_len" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            coerced = _coerce(f"{where}.{key}", value, kind, problems, source)
            if coerced is not None:
                values[key] = coerced
        if not values.get("id"):
            problems.add(f"{where}.id", entry.get("id"), "is required: the Hugging Face model id")
            continue
        models.append(ModelConfig(**values))
    return tuple(models)


# --- Stack 1 -> Stack 2 hand-off (the type lives in the core: vllm_doks.handoff) -----------


@dataclass(frozen=True)
class InfraOutputs(StackOneOutputs[int]):
    """Stack 1 outputs as the Kubernetes layer needs them: the core hand-off with values, as
    an outputs file gives them."""

    origins: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each value was read: ``"<file>: <key path>"``, e.g.
    ``"infra-outputs.json: vllm-infra.nfs_host"`` (empty for example values)."""

    def handoff_table(self) -> str:
        """The values taken from Stack 1's outputs and where each came from, as a table."""
        rows = [
            (key, str(getattr(self, key)), self.origins.get(key, "example value"))
            for key in HANDOFF_KEYS
            if getattr(self, key) is not None
        ]
        widths = [max(len(r[i]) for r in [("input", "value", "from"), *rows]) for i in range(3)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in [("input", "value", "from"), *rows]
        ]
        return "Stack 1 outputs used:\n" + "\n".join(lines)

    def conflicts(self, config: ArchitectureConfig) -> list[str]:
        """Where the outputs file and the configuration disagree, each with the value that
        wins (the outputs': they describe what Stack 1 actually created)."""
        if self.examples:
            return []
        found: list[str] = []
        expected_pool = gpu_node_pool_name(config.name_prefix, config.gpu_size)
        if self.gpu_node_pool_name != expected_pool:
            found.append(
                f"gpu_node_pool_name: the outputs' {self.gpu_node_pool_name!r} "
                f"({self.origins.get('gpu_node_pool_name', '?')}) is used, not {expected_pool!r} "
                f"from the config's name_prefix {config.name_prefix!r} and gpu_size "
                f"{config.gpu_size!r}; check that the config and the outputs file belong to the "
                "same deployment"
            )
        if self.gpu_node_pool_size is not None and self.gpu_node_pool_size != config.gpu_size:
            found.append(
                f"gpu_node_pool_size: the outputs' {self.gpu_node_pool_size!r} "
                f"({self.origins.get('gpu_node_pool_size', '?')}) is used for Stack 1's pool "
                f"(GPU resource, taint, image), not the config's gpu_size {config.gpu_size!r}; "
                "check that the config and the outputs file belong to the same deployment"
            )
        if self.nfs_size_gb != config.nfs_size_gb:
            found.append(
                f"nfs_size_gb: the outputs' {self.nfs_size_gb} GB "
                f"({self.origins.get('nfs_size_gb', '?')}) is used for the PersistentVolume and "
                f"the capacity plan, not the config's {config.nfs_size_gb}; re-deploy Stack 1 "
                "if the config is the one you want"
            )
        return found

    @classmethod
    def examples_for(cls, config: ArchitectureConfig) -> InfraOutputs:
        """Stand-ins before Stack 1 exists. The NFS address cannot be known in advance, so it
        gets a name under ``.invalid`` (RFC 2606: never resolves) rather than a plausible IP;
        pool name and size follow from the config and are real."""

        return cls(
            nfs_host="nfs-host-from-stack-1.invalid",
            nfs_mount_path="/nfs-mount-path-from-stack-1",
            nfs_size_gb=config.nfs_size_gb,
            gpu_node_pool_name=gpu_node_pool_name(config.name_prefix, config.gpu_size),
            gpu_node_pool_size=config.gpu_size,
            examples=("nfs_host", "nfs_mount_path"),
        )


def parse_infra_outputs(text: str, source: str = "outputs file") -> InfraOutputs:
    """Read Stack 1 outputs from either shape users have:

    * ``cdktf deploy --outputs-file``: ``{"<stack>": {"nfs_host": "10.0.0.5", ...}}``
    * ``terraform output -json``: ``{"nfs_host": {"value": "10.0.0.5", "type": "string"}, ...}``
    """
    problems = Problems(where=source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        problems.add(
            "outputs",
            text[:40],
            f"must be JSON from `cdktf deploy --outputs-file` or `terraform output -json` ({e})",
        )
        problems.raise_if_any()
    flat: dict[str, object] = {}
    key_path = "{}"  # how a key is spelled in the file, for the hand-off table
    if isinstance(data, dict):
        if all(isinstance(v, dict) and "value" in v for v in data.values()) and data:
            flat = {k: v["value"] for k, v in data.items()}
            key_path = "{}.value"
        else:
            stacks = {
                name: v for name, v in data.items() if isinstance(v, dict) and "nfs_host" in v
            }
            if len(stacks) > 1:
                problems.add(
                    "outputs",
                    sorted(data),
                    "holds several stacks with nfs_host; pass one stack's outputs",
                )
            elif stacks:
                ((stack, values),) = stacks.items()
                flat = dict(values)
                key_path = f"{stack}.{{}}"
            elif "nfs_host" in data:
                flat = dict(data)
    for key in HANDOFF_KEYS:
        if key not in OPTIONAL_HANDOFF_KEYS and (key not in flat or flat[key] in (None, "")):
            problems.add(
                key, flat.get(key), f"missing from {source}: expected Stack 1's output {key}"
            )
    size = flat.get("nfs_size_gb")
    if size is not None and not (
        isinstance(size, int) or (isinstance(size, str) and size.isdigit())
    ):
        problems.add("nfs_size_gb", size, "must be a whole number of GB")
    problems.raise_if_any()
    return InfraOutputs(
        nfs_host=str(flat["nfs_host"]),
        nfs_mount_path=str(flat["nfs_mount_path"]),
        nfs_size_gb=int(str(flat["nfs_size_gb"])),
        gpu_node_pool_name=str(flat["gpu_node_pool_name"]),
        gpu_node_pool_size=str(flat["gpu_node_pool_size"])
        if flat.get("gpu_node_pool_size")
        else None,
        origins={key: f"{source}: {key_path.format(key)}" for key in HANDOFF_KEYS if key in flat},
    )
