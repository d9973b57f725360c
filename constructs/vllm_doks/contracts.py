"""Every fact about another system that the synthesized output depends on, with its source.

Pure Python (no cdk8s/cdktf import). An image tag, a flag, an environment variable, a metric
name, a label another controller selects on, a path an API key covers, a device resource: each
is written here once, next to where it was checked (repository + tag + path, or a doc URL), and
the constructs, scripts and tests take it from here. When a pinned version moves, this is the
one file to re-check.

Checked 2026-11 against: the ``vllm==0.18.0`` wheel; kubernetes-sigs/gateway-api-inference-
extension tags ``v1.5.0`` and ``v1.6.0``; vllm-project/production-stack tag
``vllm-stack-0.1.12``; prometheus-community/helm-charts kube-prometheus-stack; KEDA v2.20
docs; Cilium docs; the DOKS and ROCm device plugin docs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# --- vLLM -------------------------------------------------------------------------------------

#: The vLLM release every flag, variable, metric and path below was checked against.
#: ``--shutdown-timeout``, the youngest flag we emit, landed in March 2026 (vllm-project/vllm
#: #36666): do not pin an older tag.
VLLM_VERSION = "0.18.0"

#: vLLM's CUDA image (Docker Hub ``vllm/vllm-openai``, the release tag).
#: Source: vllm-project/vllm docs/deployment/docker.md ("vllm/vllm-openai").
VLLM_CUDA_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"
#: vLLM's official ROCm image (Docker Hub ``vllm/vllm-openai-rocm``, published upstream since
#: 2026-01-20). Source: vllm-project/vllm docs/getting_started/installation/gpu.rocm.inc.md.
VLLM_ROCM_IMAGE = f"vllm/vllm-openai-rocm:v{VLLM_VERSION}"

# ``vllm serve`` options we emit. Source: vllm==0.18.0 wheel, vllm/engine/arg_utils.py
# (EngineArgs.add_cli_args: --model l.672, --max-model-len l.694, --quantization l.695,
# --allow-deprecated-quantization l.697, --served-model-name l.720,
# --safetensors-load-strategy l.764, --tensor-parallel-size l.825, --gpu-memory-utilization
# l.963, --kv-cache-dtype l.968, --shutdown-timeout l.1321) and
# vllm/entrypoints/openai/cli_args.py (FrontendArgs.port -> --port). The tests check every
# argument we pass against tests/fixtures/vllm-0.18.0-serve-options.json, extracted from that
# wheel by tests/tools/extract_vllm_options.py.
VLLM_FLAG_MODEL = "--model"
VLLM_FLAG_SERVED_MODEL_NAME = "--served-model-name"
VLLM_FLAG_QUANTIZATION = "--quantization"
VLLM_FLAG_ALLOW_DEPRECATED_QUANTIZATION = "--allow-deprecated-quantization"
VLLM_FLAG_SAFETENSORS_LOAD_STRATEGY = "--safetensors-load-strategy"
VLLM_FLAG_PORT = "--port"
VLLM_FLAG_SHUTDOWN_TIMEOUT = "--shutdown-timeout"
VLLM_FLAG_TENSOR_PARALLEL_SIZE = "--tensor-parallel-size"
VLLM_FLAG_MAX_MODEL_LEN = "--max-model-len"
VLLM_FLAG_KV_CACHE_DTYPE = "--kv-cache-dtype"
VLLM_FLAG_GPU_MEMORY_UTILIZATION = "--gpu-memory-utilization"
# LoRA: vllm==0.18.0 vllm/engine/arg_utils.py (EngineArgs.add_cli_args, "LoRAConfig" group:
# --enable-lora is a BooleanOptionalAction, --max-loras / --max-lora-rank from LoRAConfig) and
# vllm/entrypoints/openai/cli_args.py (BaseFrontendArgs.lora_modules -> --lora-modules,
# nargs "+", parsed by LoRAParserAction: "name=path" when the value has '=' and no ',', else
# JSON {"name", "path", "base_model_name"}; a second --lora-modules replaces the first list).
VLLM_FLAG_ENABLE_LORA = "--enable-lora"
VLLM_FLAG_MAX_LORAS = "--max-loras"
VLLM_FLAG_MAX_LORA_RANK = "--max-lora-rank"
VLLM_FLAG_LORA_MODULES = "--lora-modules"
#: ``--max-lora-rank`` choices and the LoRA defaults. Source: vllm==0.18.0 vllm/config/lora.py
#: (``MaxLoRARanks``; ``LoRAConfig.max_lora_rank = 16``, ``max_loras = Field(default=1,
#: ge=1)``). An adapter whose ``r`` is above ``--max-lora-rank`` is refused when loaded
#: (vllm/lora/peft_helper.py ``validate_legal``: "LoRA rank ... is greater than
#: max_lora_rank"); vLLM never compares the adapter's ``base_model_name_or_path`` with the
#: served model.
VLLM_MAX_LORA_RANKS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DEFAULT_MAX_LORA_RANK = 16
VLLM_DEFAULT_MAX_LORAS = 1

#: ``--safetensors-load-strategy eager``: read whole files into RAM up front, "recommended for
#: models on network filesystems (e.g., Lustre, NFS)". Source: vllm==0.18.0
#: vllm/config/load.py, ``LoadConfig.safetensors_load_strategy`` docstring.
VLLM_SAFETENSORS_LOAD_STRATEGY_NFS = "eager"

#: ``--safetensors-load-strategy prefetch`` (vllm-project/vllm#36012, in v0.18.0): a background
#: thread per worker reads that worker's share of the checkpoint files
#: (``sorted_files[rank::world_size]``) in 16 MiB blocks with 8 threads into the OS page cache
#: while the workers load the same files lazily (memory-mapped) from it. Source: vllm==0.18.0
#: vllm/model_executor/model_loader/weight_utils.py, ``_prefetch_all_checkpoints`` and
#: ``safetensors_weights_iterator``; ``eager`` there is ``load(f.read())``: the whole file's
#: bytes and the tensors made from them, per file, in every worker.
VLLM_SAFETENSORS_LOAD_STRATEGY_PREFETCH = "prefetch"

#: ``--kv-cache-dtype`` choices. Source: vllm==0.18.0 vllm/config/cache.py, ``CacheDType``.
VLLM_KV_CACHE_DTYPES: tuple[str, ...] = (
    "auto",
    "float16",
    "bfloat16",
    "fp8",
    "fp8_e4m3",
    "fp8_e5m2",
    "fp8_inc",
    "fp8_ds_mla",
)

#: ``--quantization`` methods, in vLLM's order. Source: vllm==0.18.0
#: vllm/model_executor/layers/quantization/__init__.py, the ``QuantizationMethods`` literal
#: (also the "Possible choices" of ``--quantization`` in the v0.18.0 CLI reference).
#: ``vllm serve`` refuses anything else with "Unknown quantization method".
VLLM_QUANTIZATION_METHODS: tuple[str, ...] = (
    "awq",
    "fp8",
    "ptpc_fp8",
    "fbgemm_fp8",
    "fp_quant",
    "modelopt",
    "modelopt_fp4",
    "modelopt_mxfp8",
    "modelopt_mixed",
    "gguf",
    "gptq_marlin",
    "awq_marlin",
    "gptq",
    "compressed-tensors",
    "bitsandbytes",
    "experts_int8",
    "quark",
    "moe_wna16",
    "torchao",
    "inc",
    "mxfp4",
    "petit_nvfp4",
    "cpu_awq",
)
#: The deprecated ones (``DEPRECATED_QUANTIZATION_METHODS``, same file): refused unless
#: ``--allow-deprecated-quantization`` is also given.
VLLM_DEPRECATED_QUANTIZATION_METHODS: frozenset[str] = frozenset(
    {"ptpc_fp8", "fbgemm_fp8", "fp_quant", "experts_int8", "petit_nvfp4"}
)

#: What ``--shutdown-timeout N`` does on SIGTERM. Source: vllm==0.18.0
#: vllm/entrypoints/launcher.py (the SIGTERM handler calls ``engine_client.shutdown(
#: timeout=vllm_config.shutdown_timeout)`` before stopping the HTTP server) and
#: vllm/v1/engine/core.py ``_handle_shutdown`` ("0 = abort, >0 = wait": with N > 0 the engine
#: stops taking requests and drains the ones in flight for up to N seconds). vLLM may therefore
#: use the whole N after SIGTERM: the pod's grace period must leave it that long after the
#: preStop hook, or the kubelet's SIGKILL cuts the drain short.
VLLM_SHUTDOWN_TIMEOUT_SEMANTICS = "after SIGTERM, drain in-flight requests for up to N seconds"

# Environment variables vLLM reads. Source: vllm==0.18.0 vllm/envs.py unless noted.
#: The API key (vllm/entrypoints/openai/api_server.py l.272: ``args.api_key or
#: [envs.VLLM_API_KEY]``), so the key comes from a Secret and never appears in the args.
VLLM_API_KEY_ENV = "VLLM_API_KEY"
#: First port of vLLM's internal communication (the seed sets it to the API port).
VLLM_PORT_ENV = "VLLM_PORT"
#: Usage statistics: vLLM reports anonymous usage to ``VLLM_USAGE_STATS_SERVER``
#: (https://stats.vllm.ai) unless one of ``VLLM_NO_USAGE_STATS=1``, ``VLLM_DO_NOT_TRACK=1`` or
#: ``DO_NOT_TRACK=1`` is set (vllm/envs.py l.652-655; vllm/usage/usage_lib.py
#: ``is_usage_stats_enabled``; docs/usage/usage_stats.md "Opting out").
VLLM_NO_USAGE_STATS_ENV = "VLLM_NO_USAGE_STATS"
#: Runtime LoRA loading: with ``"true"`` (or ``"1"``) vLLM attaches ``POST
#: /v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` (vllm/envs.py l.881;
#: vllm/entrypoints/serve/lora/api_router.py ``attach_router``, which logs "This should ONLY be
#: used for local development!"). A path that is not absolute and does not exist is downloaded
#: from the Hub (vllm/lora/utils.py ``get_adapter_absolute_path``).
VLLM_ALLOW_RUNTIME_LORA_UPDATING_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
DO_NOT_TRACK_ENV = "DO_NOT_TRACK"
#: Hugging Face Hub token and offline switch (huggingface_hub docs, "Environment variables":
#: ``HF_TOKEN``, ``HF_HUB_OFFLINE``).
HF_TOKEN_ENV = "HF_TOKEN"
HF_HUB_OFFLINE_ENV = "HF_HUB_OFFLINE"

#: vLLM's API key covers only paths that start with this (vllm==0.18.0
#: vllm/entrypoints/openai/server_utils.py ``AuthenticationMiddleware``: "authentication is
#: skipped [when] the request path doesn't start with /v1 (e.g. /health)"; OPTIONS is skipped
#: too). Everything else the server mounts (``/metrics``, ``/health``, ``/tokenize``,
#: ``/detokenize``, ``/invocations``, ``/pooling``, ``/score``, ``/rerank``, ``/version``, ...)
#: answers without the key.
VLLM_API_KEY_PATH_PREFIX = "/v1"
#: Prometheus metrics (vllm/entrypoints/serve/instrumentator/metrics.py mounts ``/metrics``).
VLLM_METRICS_PATH = "/metrics"
#: Liveness of the server (vllm/entrypoints/serve/instrumentator/health.py).
VLLM_HEALTH_PATH = "/health"

# Metric names, vLLM v1 engine. Source: vllm==0.18.0 vllm/v1/metrics/loggers.py
# (PrometheusStatLogger: "vllm:num_requests_running", "vllm:num_requests_waiting",
# "vllm:kv_cache_usage_perc", "vllm:prompt_tokens", "vllm:generation_tokens" counters (exposed
# with the ``_total`` suffix), "vllm:time_to_first_token_seconds" histogram). The KEDA query,
# the dashboard, the endpoint picker's defaults and the preStop script all use these.
VLLM_METRIC_REQUESTS_WAITING = "vllm:num_requests_waiting"
VLLM_METRIC_REQUESTS_RUNNING = "vllm:num_requests_running"
VLLM_METRIC_KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
#: Replaced by ``vllm:kv_cache_usage_perc`` (deprecated in vllm-project/vllm#18354); the
#: dashboard reads it as a fallback for older images.
VLLM_METRIC_LEGACY_KV_CACHE_USAGE = "vllm:gpu_cache_usage_perc"
VLLM_METRIC_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_METRIC_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_METRIC_TTFT_BUCKET = "vllm:time_to_first_token_seconds_bucket"
#: NVIDIA DCGM exporter's framebuffer memory in use, MiB (NVIDIA/dcgm-exporter
#: etc/default-counters.csv ``DCGM_FI_DEV_FB_USED``).
DCGM_METRIC_FB_USED = "DCGM_FI_DEV_FB_USED"

# --- GPUs on DOKS -----------------------------------------------------------------------------

#: Extended resource each vendor's device plugin advertises, also the key of DOKS's
#: ``NoSchedule`` taint on GPU nodes. Source: DOKS "Managed Elements"
#: (docs.digitalocean.com/products/kubernetes/details/managed/): "AMD ``amd.com/gpu:NoSchedule``,
#: NVIDIA ``nvidia.com/gpu:NoSchedule``"; ROCm/k8s-device-plugin README ("amd.com/gpu").
GPU_RESOURCE_NAMES: Mapping[str, str] = MappingProxyType(
    {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
)
GPU_TAINT_KEYS: Mapping[str, str] = MappingProxyType(
    {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
)
#: Node labels DOKS sets: the node pool's name, and the GPU brand (``nvidia``/``amd``).
#: Source: DOKS "Managed Elements" page (labels ``doks.digitalocean.com/node-pool``,
#: ``doks.digitalocean.com/gpu-brand``).
DOKS_NODE_POOL_LABEL = "doks.digitalocean.com/node-pool"
DOKS_GPU_BRAND_LABEL = "doks.digitalocean.com/gpu-brand"

#: Device nodes the AMD device plugin hands a container for each ``amd.com/gpu``: ``/dev/kfd``
#: and one ``/dev/dri/renderD<N>`` per GPU, with the host's owner, group and mode (0660, group
#: ``render`` or ``video``). A non-root container opens them only with that host group among its
#: groups. Source: ROCm/k8s-device-plugin issue #39 ("crw-rw---- 1 root 106 ... /dev/kfd ...
#: gid 106 is the render group on the underlying worker OS"; the maintainers' answer: pod
#: ``securityContext.supplementalGroups``); ROCm docs "Prerequisites" (users need ``video`` and
#: ``render``). The ``render`` gid is allocated dynamically by each OS image (not fixed), and
#: DigitalOcean does not document it for DOKS GPU nodes; ``video`` is 44 on Debian/Ubuntu
#: (base-passwd). So the library adds the documented ``video`` gid and checks at start that
#: the devices open, failing loudly with the device's gid when they do not.
AMD_GPU_DEVICE_PATHS: tuple[str, ...] = ("/dev/kfd", "/dev/dri")
#: gid of ``video`` in Debian/Ubuntu's static allocation (base-passwd ``group.master``).
DEBIAN_VIDEO_GID = 44

#: ``digitalocean_kubernetes_cluster`` blocks an AMD GPU node pool needs. Source: DigitalOcean
#: API cluster request body ``amd_gpu_device_plugin`` / ``amd_gpu_device_metrics_exporter_plugin``
#: (digitalocean/openapi 5d99aef; DOKS release notes).
AMD_CLUSTER_FLAGS: Mapping[str, Mapping[str, bool]] = MappingProxyType(
    {
        "amd_gpu_device_plugin": MappingProxyType({"enabled": True}),
        "amd_gpu_device_metrics_exporter_plugin": MappingProxyType({"enabled": True}),
    }
)

# --- Kubernetes and its add-ons ---------------------------------------------------------------

#: Label every namespace carries with its own name (Kubernetes >= 1.21, NamespaceDefaultLabelName;
#: kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Node label with the node's host name (well-known label, same page).
HOSTNAME_TOPOLOGY_KEY = "kubernetes.io/hostname"
#: Labels of the cluster DNS pods: CoreDNS keeps kube-dns's ``k8s-app: kube-dns`` (coredns/
#: deployment kubernetes/coredns.yaml.sed; DOKS runs CoreDNS with it).
KUBE_DNS_LABELS: Mapping[str, str] = MappingProxyType({"k8s-app": "kube-dns"})

#: Cilium's reserved identity of the Envoy that forwards Gateway API/Ingress traffic
#: (docs.cilium.io, Policy Language > Entities: "ingress: The Cilium Envoy instance that handles
#: ingress L7 traffic").
CILIUM_INGRESS_ENTITY = "ingress"
#: Label Cilium gives every endpoint with its namespace, usable in ``fromEndpoints``
#: (docs.cilium.io, Policy Language > "Namespaces": ``k8s:io.kubernetes.pod.namespace``).
CILIUM_NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"
#: CiliumNetworkPolicy API version (cilium.io/v2; CRD in /work/shared/crds and
#: tests/fixtures/crds). L7 HTTP rules (``toPorts[].rules.http``) go through Cilium's Envoy,
#: which DOKS runs anyway: its Gateway API implementation is that Envoy.
CILIUM_NETWORK_POLICY_API_VERSION = "cilium.io/v2"

#: Prometheus Operator PodMonitor (prometheus-operator v0.93.0 CRD ``monitoring.coreos.com/v1``).
PROMETHEUS_OPERATOR_API_VERSION = "monitoring.coreos.com/v1"
#: kube-prometheus-stack's Prometheus selects PodMonitors by ``release: <Helm release name>``
#: unless installed with ``prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false``.
#: Source: prometheus-community/helm-charts charts/kube-prometheus-stack/templates/prometheus/
#: prometheus.yaml, e.g. at 1514b965 (``podMonitorSelector: matchLabels: release:
#: {{ $.Release.Name | quote }}`` when
#: ``podMonitorSelectorNilUsesHelmValues`` is true, its default in values.yaml). The chart's
#: README installs it as release ``kube-prometheus-stack``.
PROMETHEUS_RELEASE_LABEL = "release"
DEFAULT_PROMETHEUS_RELEASE = "kube-prometheus-stack"
#: Service the Prometheus Operator creates for every Prometheus (governing Service of its
#: StatefulSets), port 9090 (prometheus-operator Documentation/api.md; pkg/prometheus).
PROMETHEUS_OPERATED_SERVICE = "prometheus-operated"
PROMETHEUS_PORT = 9090

#: KEDA ScaledObject (KEDA v2.20.2 CRD ``keda.sh/v1alpha1``).
KEDA_API_VERSION = "keda.sh/v1alpha1"
#: KEDA's prometheus scaler activates (scales 0 -> 1) only when its query returns a value above
#: ``activationThreshold`` (keda.sh/docs/latest/scalers/prometheus/ "activationThreshold";
#: keda.sh/docs/latest/concepts/scaling-deployments/#activating-and-scaling-thresholds); an
#: empty result is ignored ("ignoreNullValues: Default is true, which means ignoring the empty
#: value list from Prometheus"), i.e. never above the threshold. vLLM's queue
#: gauges exist only while a vLLM pod is scraped, so with zero replicas the query is empty and
#: a pool at ``minReplicaCount: 0`` never wakes: the smallest minimum that works is this.
KEDA_MIN_REPLICAS_WITH_POD_METRICS = 1

#: Grafana's dashboard sidecar (kiwigrid/k8s-sidecar) picks ConfigMaps with this label; the
#: Grafana chart and kube-prometheus-stack default ``sidecar.dashboards.label:
#: grafana_dashboard``, ``labelValue: "1"`` (grafana/helm-charts charts/grafana/values.yaml).
GRAFANA_SIDECAR_LABEL = "grafana_dashboard"
GRAFANA_SIDECAR_LABEL_VALUE = "1"
#: Annotation the sidecar reads a folder from, with ``folderAnnotation: grafana_folder``.
GRAFANA_FOLDER_ANNOTATION = "grafana_folder"

#: cert-manager's Gateway API annotation (cert-manager.io/docs/usage/gateway/).
CERT_MANAGER_CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"

# --- Gateway API and its Inference Extension --------------------------------------------------

#: Gateway API release the Gateway and HTTPRoutes are written for (v1.3.0 standard CRDs in
#: tests/fixtures/crds; ``gateway.networking.k8s.io/v1``). A ``RequestRedirect`` filter
#: with ``scheme: https``, ``statusCode: 301`` is Core support (HTTPRoute spec,
#: gateway-api.sigs.k8s.io/reference/spec/#httprequestredirectfilter).
GATEWAY_API_VERSION = "v1.3.0"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

#: InferencePool API (``inference.networking.k8s.io/v1``): the same schema in
#: gateway-api-inference-extension v1.5.0 and v1.6.0 (config/crd/bases/
#: inference.networking.k8s.io_inferencepools.yaml; v1.6.0 only made ``endpointPickerRef``
#: optional), so the v1.6.0 CRD in /work/shared/crds accepts what the v1.5.0 picker reads.
INFERENCE_POOL_GROUP = "inference.networking.k8s.io"
INFERENCE_POOL_API_VERSION = f"{INFERENCE_POOL_GROUP}/v1"
INFERENCE_POOL_KIND = "InferencePool"
#: Group of the extension's alpha resources the v1.5.0 picker reads when their CRDs exist
#: (pkg/epp/server/controller_config.go: ``gvkExists`` for InferenceObjective and
#: InferenceModelRewrite).
INFERENCE_X_GROUP = "inference.networking.x-k8s.io"

#: The endpoint picker: ``epp:v1.5.0``, the last release that builds it. Evidence: v1.5.0's
#: cloudbuild.yaml runs ``make image-push`` (cmd/epp), v1.6.0's runs only
#: ``make lwepp-image-push`` and v1.6.0 has only cmd/lwepp; v1.6.0's README says "The Endpoint
#: Picker (EPP) ... moved to ... llm-d/llm-d-router" and calls the lightweight picker "a
#: reference ... for conformance test purposes". So ``epp:v1.6.0`` was never published (with
#: ``FailClose`` every request would fail), and lwepp is not meant for production: we pin the
#: full picker of v1.5.0 (its chart: config/charts/inferencepool/values.yaml ``tag: v1.5.0``).
EPP_VERSION = "v1.5.0"
EPP_IMAGE = f"registry.k8s.io/gateway-api-inference-extension/epp:{EPP_VERSION}"
#: Ports and gRPC health service of the v1.5.0 picker (config/charts/epplib/templates/
#: _deployment.yaml: containerPorts 9002 grpc, 9003 grpc-health, 9090 metrics; probes
#: ``grpc: {port: 9003, service: inference-extension}`` for one replica).
EPP_GRPC_PORT = 9002
EPP_HEALTH_PORT = 9003
EPP_METRICS_PORT = 9090
EPP_HEALTH_SERVICE = "inference-extension"
#: The v1.5.0 picker's flags we pass (pkg/epp/server/options.go ``AddFlags``; zap's
#: ``--zap-encoder`` from pkg/common/observability/logging/options.go). Defaults we override,
#: as the v1.5.0 chart does: ``--tracing`` (default true: exports OTLP traces) and
#: ``--metrics-endpoint-auth`` (default true: needs cluster-wide TokenReview and
#: SubjectAccessReview RBAC, which we do not grant).
EPP_FLAGS: tuple[str, ...] = (
    "--pool-name",
    "--pool-namespace",
    "--pool-group",
    "--grpc-port",
    "--grpc-health-port",
    "--metrics-port",
    "--zap-encoder",
    "--tracing",
    "--metrics-endpoint-auth",
)
#: The v1.5.0 picker's RBAC in its namespace, exactly the chart's (config/charts/epplib/
#: templates/_rbac.yaml: pods get/watch/list; config/charts/inferencepool/templates/rbac.yaml:
#: inferencepools, inferenceobjectives, inferencemodelrewrites get/watch/list). The optional
#: metrics-auth ClusterRole is not needed with ``--metrics-endpoint-auth=false``.
EPP_RBAC_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("", ("pods",), ("get", "list", "watch")),
    (INFERENCE_POOL_GROUP, ("inferencepools",), ("get", "list", "watch")),
    (
        INFERENCE_X_GROUP,
        ("inferenceobjectives", "inferencemodelrewrites"),
        ("get", "list", "watch"),
    ),
)
#: GatewayClasses known not to implement the Inference Extension: Cilium's Gateway API has no
#: released InferencePool backend support (cilium/cilium#48813, open; the extension's
#: implementations page gateway-api-inference-extension.sigs.k8s.io/implementations/gateways/
#: does not list Cilium). An HTTPRoute to an InferencePool behind it would never resolve.
GATEWAY_CLASSES_WITHOUT_INFERENCE_EXTENSION: frozenset[str] = frozenset({"cilium"})

# --- vLLM production-stack router -------------------------------------------------------------

#: The router image (vllm-project/production-stack, router release v0.1.12; source tag
#: ``vllm-stack-0.1.12``, src/vllm_router).
ROUTER_IMAGE = "lmcache/lmstack-router:v0.1.12"
#: ``--routing-logic`` values we accept (src/vllm_router/parsers/parser.py choices; the
#: others need LMCache or disaggregated prefill).
ROUTER_ROUTING_LOGICS: tuple[str, ...] = ("prefixaware", "roundrobin", "session")
#: Health endpoint (src/vllm_router/routers/main_router.py ``@main_router.get("/health")``).
ROUTER_HEALTH_PATH = "/health"
#: Pod discovery reads pods of its namespace (src/vllm_router/service_discovery.py
#: ``K8sPodIPServiceDiscovery``: list/watch pods); the upstream chart also grants ``patch``,
#: which discovery does not use.
ROUTER_RBAC_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("", ("pods",), ("get", "list", "watch")),
)
#: The router has no client authentication of its own (no API-key option or middleware in
#: src/vllm_router at vllm-stack-0.1.12); it forwards the client's headers, Authorization
#: included (services/request_service/request.py ``_build_backend_request_headers`` drops only
#: hop-by-hop headers and X-Request-Id), so vLLM checks the key on proxied requests, but
#: ``GET /v1/models`` it answers itself from its discovery cache
#: (routers/main_router.py ``show_models``) without asking vLLM. Discovery sends
#: ``VLLM_API_KEY`` to the pods when the variable is set (service_discovery.py).
ROUTER_PATHS_ANSWERED_WITHOUT_KEY: tuple[str, ...] = ("/v1/models",)

# --- Kubernetes and Terraform behaviour Stack 2 via Terraform relies on ----------------------

#: The garbage collector's finalizer for foreground cascading deletion: a Job deleted without a
#: propagation policy (as the Terraform kubernetes provider deletes) keeps its pods otherwise.
#: Source: kubernetes.io/docs/concepts/architecture/garbage-collection/#foreground-deletion.
FOREGROUND_DELETION_FINALIZER = "foregroundDeletion"
#: Kinds whose replica count an autoscaler owns, with the default kind of ``scaleTargetRef``:
#: KEDA ``ScaledObject`` (kind defaults to Deployment; https://keda.sh/docs/2.15/reference/
#: scaledobject-spec/) and ``HorizontalPodAutoscaler`` (kind is required there).
SCALER_KINDS: frozenset[tuple[str, str]] = frozenset(
    {(KEDA_API_VERSION.split("/")[0], "ScaledObject"), ("autoscaling", "HorizontalPodAutoscaler")}
)
SCALE_TARGET_DEFAULT_KIND = "Deployment"
#: hashicorp/kubernetes provider (bindings generated from v2.38.0; source: github.com/hashicorp/
#: terraform-provider-kubernetes tag v2.38.0, manifest/provider/{provider,plan,apply,read}.go;
#: docs/resources/manifest.md): ``kubernetes_manifest.computed_fields`` when unset. Setting the
#: attribute replaces the default, so lists extend it.
MANIFEST_DEFAULT_COMPUTED_FIELDS: tuple[str, ...] = ("metadata.annotations", "metadata.labels")
#: ``terraform_data`` (the replace trigger of Jobs) exists since Terraform 1.4
#: (https://developer.hashicorp.com/terraform/language/resources/terraform-data).
TERRAFORM_DATA_REQUIRED_VERSION = ">= 1.4.0"

# --- The test control plane (vllm_doks.rehearsal) --------------------------------------------

#: etcd's health endpoint on its client URL (etcd v3.4 docs, "Monitoring etcd": ``/health``).
ETCD_HEALTH_PATH = "/health"

# --- The DigitalOcean provider and cdktf, as the deploy rehearsal drives them ----------------

#: Environment the DigitalOcean provider reads: its API address (``api_endpoint`` defaults from
#: it), the token, and godo's retry count. Source: digitalocean/terraform-provider-digitalocean
#: tag v2.99.1, ``digitalocean/provider.go`` (``DefaultFunc: schema.EnvDefaultFunc(...)``).
DIGITALOCEAN_API_URL_ENV = "DIGITALOCEAN_API_URL"
DIGITALOCEAN_TOKEN_ENV = "DIGITALOCEAN_TOKEN"
DIGITALOCEAN_HTTP_RETRY_MAX_ENV = "DIGITALOCEAN_HTTP_RETRY_MAX"
#: The DigitalOcean provider versions whose ``digitalocean_nfs`` has the ``host`` and
#: ``mount_path`` attributes: from 2.72.0 on. They came with digitalocean/terraform-provider-
#: digitalocean pull request #1483 ("digitalocean_nfs resource and datasource now support host
#: and mount_path outputs"; issue #1480: v2.70.0 has no ``mount_path``); the prebuilt bindings,
#: generated from 2.71.0, have neither (cdktf-cdktf-provider-digitalocean 13.14.1, ``Nfs``).
DIGITALOCEAN_PROVIDER_CONSTRAINT = ">= 2.72.0, < 3.0.0"
#: ``cdktf deploy``/``destroy`` flag that skips the provider-lock step, which asks the registry
#: for every provider even with a filesystem mirror (cdktf-cli 0.21.0 ``cdktf deploy --help``).
CDKTF_SKIP_PROVIDER_LOCK_FLAG = "--skip-provider-lock"
#: Node labels DOKS sets besides the node-pool name (kubectl get node --show-labels on DOKS;
#: well-known labels: kubernetes.io/docs/reference/labels-annotations-taints/).
DOKS_NODE_POOL_ID_LABEL = "doks.digitalocean.com/node-pool-id"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
REGION_LABEL = "topology.kubernetes.io/region"

# --- Cold start: compile cache, trusted weights, smoke test (issue 15) -----------------------

#: Where vLLM keeps its caches, the torch.compile cache included (``torch_compile_cache/<hash>``,
#: with ``inductor_cache`` and ``triton_cache`` inside: vLLM sets ``TORCHINDUCTOR_CACHE_DIR``
#: and ``TRITON_CACHE_DIR`` itself). Source: vllm==0.18.0 vllm/envs.py (``VLLM_CACHE_ROOT``),
#: vllm/compilation/backends.py (``VllmBackend.__call__``), compiler_interface.py
#: (``InductorAdaptor.initialize_cache``).
VLLM_CACHE_ROOT_ENV = "VLLM_CACHE_ROOT"
#: Environment variables vLLM 0.18.0 leaves out of its compile-cache hash (``ignored_factors``
#: in ``envs.compile_factors``) that our pods set; ``VLLM_API_KEY`` is *not* among them.
VLLM_COMPILE_HASH_IGNORED_ENV: frozenset[str] = frozenset(
    {"VLLM_PORT", "VLLM_CACHE_ROOT", "VLLM_HOST_IP", "VLLM_NO_USAGE_STATS", "VLLM_DO_NOT_TRACK"}
)
#: Name prefix of the Service Cilium creates for each Gateway (``cilium-gateway-<gateway>``).
#: Source: cilium/cilium operator/pkg/model/translation/gateway-api/translator.go,
#: ``ciliumGatewayPrefix``.
CILIUM_GATEWAY_SERVICE_PREFIX = "cilium-gateway-"

# --- curl ---------------------------------------------------------------------------------------

#: curl reads its default config file ``$CURL_HOME/.curlrc`` before the command line's options
#: (unless ``-q`` comes first), one long option per line, e.g. ``header = "name: value"``.
#: Source: curl docs/cmdline-opts/config.d ("The default config file is checked for in the
#: following places in this order: 1) "$CURL_HOME/.curlrc" ...") and disable.d; CURL_HOME has
#: been read since long before curl 7.81 (Ubuntu 22.04, the vLLM image's base).
CURL_HOME_ENV = "CURL_HOME"
CURL_DEFAULT_CONFIG_FILE = ".curlrc"
#: The Hugging Face Hub's per-file hashes, as huggingface_hub 0.36 (the 0.x line vLLM 0.18
#: pulls in through ``transformers<5``) exposes them from ``HfApi.model_info(...,
#: files_metadata=True)`` (``GET /api/models/<repo>/revision/<rev>?blobs=True``):
#: ``RepoSibling.lfs.sha256`` and ``.lfs.size`` for LFS files, ``RepoSibling.blob_id`` (the git
#: blob SHA-1: ``sha1(b"blob <size>\\0" + content)``) for the others; ``ModelInfo.sha`` is the
#: commit the revision resolved to. Source: huggingface_hub 0.36.2 hf_api.py (``RepoSibling``,
#: ``BlobLfsInfo``, ``model_info``).
HF_HUB_FILES_METADATA_PARAM = "blobs"

#: A new GPU node's budget to join, seconds: cluster-autoscaler's ``--max-node-provision-time``
#: default of 15 minutes, after which it gives up on the node (kubernetes/autoscaler
#: cluster-autoscaler/FAQ.md, "What are the parameters to CA?"). DigitalOcean publishes no
#: provisioning time for GPU Droplets, so the autoscaler's own patience is the bound used.
NODE_PROVISIONING_SECONDS = 900
#: Download size of the vLLM image, GiB: "the image is around 12 GB" for
#: ``vllm/vllm-openai:latest`` (vllm-project/vllm#27154, October 2025; unpacked 28.6 GB,
#: vllm-project/vllm#22377).
VLLM_IMAGE_DOWNLOAD_GIB = 12.0
#: torch.compile without a cache, seconds, as a planning figure covering the reports: ~70 s
#: for a 70B on 8 GPUs (vllm-project/vllm#19824), 166 s measured on a TP=2 deployment
#: (mitchross/talos-argocd-proxmox#1848); 2222 s for Nemotron 3 (vllm-project/vllm#34399) is an
#: outlier it does not cover.
COMPILE_COLD_SECONDS = 180
#: torch.compile from a warm cache, seconds: 7.5 s (vllm-project/vllm#20264), ~7 s
#: (llm-d-incubation/llm-d-fast-model-actuation#111), 45 s -> 8 s (ai-dynamo/dynamo#3257).
COMPILE_WARM_SECONDS = 10
#: vLLM's start-up besides loading and compiling, seconds: process and CUDA initialisation,
#: memory profiling, KV-cache allocation, CUDA graph capture. vllm-project/vllm#20264 logs 34 s
#: of engine init (17 s of it graph capture) plus ~30 s unlogged before the first answer.
ENGINE_START_SECONDS = 90

# --- DigitalOcean Spaces (S3 API) as a model source ---------------------------------------------

#: A bucket's own endpoint (virtual-hosted style): DigitalOcean's Spaces API reference
#: (docs.digitalocean.com/reference/api/spaces/) addresses buckets as
#: ``${BUCKET}.${REGION}.digitaloceanspaces.com``; the provider's ``digitalocean_spaces_bucket``
#: computes the same host as ``bucket_domain_name`` (digitalocean/digitalocean 2.99.1 schema).
SPACES_BUCKET_URL_TEMPLATE = "https://{bucket}.{region}.digitaloceanspaces.com"
#: How a request to Spaces is signed: AWS Signature Version 4 with the Spaces region slug in the
#: credential scope ``${ACCESS_KEY}/${YYYYMMDD}/${REGION_SLUG}/s3/aws4_request`` (same Spaces
#: reference, "Authentication"); the algorithm itself (canonical request, string to sign,
#: ``AWS4<secret>`` -> date -> region -> service -> ``aws4_request`` signing key, and S3's
#: required ``x-amz-content-sha256`` header) is AWS's: docs.aws.amazon.com/IAM/latest/UserGuide/
#: create-signed-request.html and docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-
#: auth.html, whose published examples the tests reproduce. fetch_model.py implements it with
#: the standard library (the vLLM image ships no boto3 we could rely on).
SPACES_SIGNATURE_ALGORITHM = "AWS4-HMAC-SHA256"
# What an object's ETag proves: Spaces follows S3 ("If an object is created by either the
# Multipart Upload or Part Copy operation, the ETag is not an MD5 digest"; DigitalOcean's answer
# in its community question "contents-of-etag-returned-from-spaces-isn-t-always-md-5", quoting
# S3's API reference for ETag). S3 tools upload multi-GB safetensors in parts, so the ETag
# cannot verify them: the download verifies against a sha256 manifest uploaded with the files
# and checks the ETag as an MD5 only when it is one (32 hex digits, no ``-<parts>`` suffix).
#: The Secret keys the download reads the Spaces key pair from (the names AWS tools use).
SPACES_ACCESS_KEY_ID_KEY = "AWS_ACCESS_KEY_ID"
SPACES_SECRET_ACCESS_KEY_KEY = "AWS_SECRET_ACCESS_KEY"
#: ``digitalocean_spaces_key`` grant permission that reads a bucket and nothing else; valid:
#: ``read``, ``readwrite``, ``fullaccess`` (digitalocean/digitalocean 2.99.1 schema, checked with
#: ``terraform providers schema -json``; the prebuilt 2.71.0 bindings have the resource too,
#: ``cdktf_cdktf_provider_digitalocean.spaces_key``).
SPACES_KEY_READ_PERMISSION = "read"
