"""VllmWorkerPool: vLLM replicas on a GPU node pool, serving one model from the NFS store."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import cdk8s
from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.gpu_catalog import (
    VENDOR_VLLM_IMAGES,
    GpuSize,
    lookup_gpu_size,
    resolve_gpu_size,
)
from vllm_doks.handoff import GpuPoolRef, node_pool_and_size
from vllm_doks.k8s import kube
from vllm_doks.k8s.checks import (
    check_image,
    check_namespace_names,
    check_quantity,
    check_request_within_limit,
    check_secret_key,
    check_service_name,
    check_word,
)
from vllm_doks.k8s.compile_cache import CompileCachePod, compile_cache_key
from vllm_doks.k8s.lora import LoraOptions
from vllm_doks.k8s.model_download import ModelDownload
from vllm_doks.k8s.names import (
    HOSTNAME_TOPOLOGY_KEY,
    VLLM_DEPRECATED_QUANTIZATION_METHODS,
    VLLM_QUANTIZATION_METHODS,
)
from vllm_doks.k8s.network_policies import Namespaces
from vllm_doks.k8s.pod_security import (
    MODELS_VOLUME,
    SHM_VOLUME,
    container_security_context,
    env,
    gpu_tolerations,
    models_volume,
    node_pool_selector,
    optional_secret_env,
    pod_security_context,
    required_secret_env,
    resource_requirements,
    tmp_mount,
    tmp_volume,
)
from vllm_doks.k8s.probes import ProbeTimings
from vllm_doks.k8s.scripts import CHECK_GPU_DEVICES, PRESTOP_DRAIN, WAIT_FOR_MODEL, sh_command
from vllm_doks.k8s.suppressions import HIGH_UID_REASON, checkov_skip_annotations, image_skips
from vllm_doks.k8s.values import quantity
from vllm_doks.k8s.workload import (
    ServingWorkload,
    check_ingress_options,
    rolling_update,
    service_port,
    serving_container,
)
from vllm_doks.model_arch import KV_CACHE_DTYPE_BYTES as VLLM_KV_CACHE_DTYPES
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_dns_label, check_dns_subdomain, check_int_range

AntiAffinity = Literal["required", "preferred", "none"]

#: The container is called ``vllm`` whatever the pool's name, so the seed's
#: ``kubectl set image deployment/vllm vllm=vllm/vllm-openai:<tag>`` keeps working.
CONTAINER_NAME = "vllm"
PORT_NAME = "http"

#: vLLM's API-key variable (:data:`vllm_doks.contracts.VLLM_API_KEY_ENV`): the key comes from a
#: Secret and never appears in the args.
API_KEY_ENV = contracts.VLLM_API_KEY_ENV

#: Lets ``--quantization`` take one of vLLM's deprecated methods.
ALLOW_DEPRECATED_QUANTIZATION = contracts.VLLM_FLAG_ALLOW_DEPRECATED_QUANTIZATION

#: Seconds the shutdown budget keeps between vLLM's ``--shutdown-timeout`` running out and the
#: kubelet's SIGKILL, for vLLM to stop its engine processes and exit:
#: ``termination_grace_period_seconds >= drain_deadline_seconds + shutdown_timeout_seconds +
#: SHUTDOWN_MARGIN_SECONDS`` (the preStop hook's time counts against the grace period, and
#: vLLM may use its whole ``--shutdown-timeout`` after SIGTERM: see
#: :data:`vllm_doks.contracts.VLLM_SHUTDOWN_TIMEOUT_SEMANTICS`).
SHUTDOWN_MARGIN_SECONDS = 5

#: Requests and limits of the init container, which only runs ``sh`` and ``sleep``.
WAIT_FOR_MODEL_REQUESTS = {"cpu": "10m", "memory": "16Mi"}
WAIT_FOR_MODEL_LIMITS = {"cpu": "100m", "memory": "64Mi"}

#: Why the vLLM Deployment carries the checkov waivers it does (see k8s/suppressions.py).
CPU_LIMIT_REASON = (
    "no CPU limit on the vLLM container by design: CFS throttling of its API server, "
    "scheduler and tokenizer threads adds latency to every request. It has a CPU request, "
    "and the init container has limits"
)
MEMORY_LIMIT_REASON = (
    "no memory limit on the vLLM container unless memory_limit is set: eager loading reads "
    "whole weight files into RAM, and an OOM kill mid-load costs a full reload from NFS. It "
    "has a memory request covering /dev/shm, and the init container has limits"
)
API_KEY_ENV_REASON = (
    "vLLM reads its API key only from the VLLM_API_KEY environment variable or --api-key "
    "(which would show it in the pod spec), so it comes from a secretKeyRef"
)
HF_TOKEN_ENV_REASON = "HF_TOKEN comes from a secretKeyRef as in the seed"
SECRET_REF_ONLY = "The manifest holds only Secret references, never a value"


@cache  # an immutable struct; see pod_security.py on why factories are cached
def _wait_resources() -> k8s.ResourceRequirements:
    """Requests and limits of the init containers that wait for a download."""
    return resource_requirements(WAIT_FOR_MODEL_REQUESTS, WAIT_FOR_MODEL_LIMITS)


@dataclass(frozen=True, kw_only=True)
class VllmWorkerPoolProps:
    """Props of :class:`VllmWorkerPool`."""

    model: ModelDownload
    """The model to serve, from :meth:`NfsModelStore.add_model`. It also fixes the namespace
    (the store's) and the claim the pods mount. Required."""
    gpu_node_pool_name: str | None = None
    """DOKS GPU node pool to run on (Stack 1's ``gpu_node_pool_name``). Required unless
    ``gpu_pool`` names it. Default ``None``."""
    gpu_pool: GpuPoolRef | None = None
    """The GPU node pool as one value, its name and size (Stack 1's hand-off ``gpu_pool``, or
    the :class:`~vllm_doks.handoff.GpuPoolRef` given to ``add_model``), instead of
    ``gpu_node_pool_name`` and ``gpu_size``. Default ``None``."""
    replicas: int = 1
    """Number of vLLM pods. With the default required anti-affinity each needs its own GPU
    node. Default 1."""
    quantization: str | None = None
    """vLLM ``--quantization`` method, e.g. ``"fp8"``, one of vLLM v0.18.0's methods
    (:data:`~vllm_doks.k8s.names.VLLM_QUANTIZATION_METHODS`); ``None`` (or ``""``, as the seed
    writes it) to serve the weights as they are. A deprecated method also needs
    ``"--allow-deprecated-quantization"`` in ``extra_args``. Default ``None``."""
    max_model_len: int | None = None
    """vLLM ``--max-model-len``: a length in tokens, or ``-1`` for vLLM's auto-fit (the
    longest that fits the KV cache). Default ``None``: not passed (the model's own maximum)."""
    kv_cache_dtype: str | None = None
    """vLLM ``--kv-cache-dtype``, e.g. ``"fp8"`` (half the KV cache of bf16). Default ``None``:
    not passed (``auto``, the model's dtype)."""
    gpu_memory_utilization: float | None = None
    """vLLM ``--gpu-memory-utilization``, the fraction of GPU memory vLLM may use (above 0, at
    most 1). Default ``None``: not passed (vLLM's 0.9)."""
    gpu_size: str | GpuSize | None = None
    """GPU Droplet size of the node pool (Stack 1's ``gpu_size``): a slug of
    :data:`vllm_doks.gpu_catalog.GPU_SIZES` or a :class:`~vllm_doks.gpu_catalog.GpuSize` (from
    :func:`~vllm_doks.gpu_catalog.custom_gpu_size`, for a size added later). It sets the
    extended resource the pods request (``nvidia.com/gpu`` or ``amd.com/gpu``), the only GPU
    taint they tolerate, the default image (CUDA or ROCm) and the default GPUs per replica
    (every GPU of the node, with ``--tensor-parallel-size`` above 1). Default ``None``:
    ``gpu_pool``'s size, else ``"gpu-h100x1-80gb"`` (the seed's).

    AMD sizes on DOKS: Stack 1 turns on the cluster's AMD GPU device plugin, which hands each
    pod its ``/dev/kfd`` and ``/dev/dri/renderD*`` device nodes for its ``amd.com/gpu``
    request; no ``privileged``, no hostPath and no extra capability is needed (none is set).
    Those nodes are group-owned (``video``/``render``, mode 0660) on the host, so a pod
    running as uid 1000 can open them only if the node makes them accessible or the pod
    carries the host's group id as a supplemental group (ROCm/k8s-device-plugin#39): see
    ``supplemental_groups``, and the ``check-gpu-devices`` init container AMD pods run."""
    image: str | None = None
    """vLLM image, pinned (a tag other than ``latest``, or a digest). Default ``None``: the GPU
    size's image, ``vllm/vllm-openai:v0.18.0`` (CUDA) for NVIDIA sizes and
    ``vllm/vllm-openai-rocm:v0.18.0`` (ROCm) for AMD ones; the flags this construct emits
    need at least that release."""
    name: str = "vllm"
    """Name of the Deployment and the Service, value of the ``app`` label; the disruption
    budget is ``<name>-pdb``. Default ``"vllm"`` (the seed's)."""
    port: int = 8000
    """Port vLLM listens on and the Service exposes. Default 8000."""
    served_model_name: str | None = None
    """Model name clients send in requests. Default: the model's name, e.g.
    ``"Qwen2.5-0.5B-Instruct"`` (the seed's)."""
    probes: ProbeTimings = field(default_factory=ProbeTimings)
    """Probe timings. Default: the seed's (see :class:`ProbeTimings`)."""
    termination_grace_period_seconds: int = 70
    """Time a terminating pod gets to drain before it is killed: the preStop hook's drain,
    then vLLM's ``--shutdown-timeout``, then :data:`SHUTDOWN_MARGIN_SECONDS` must fit in it
    (checked). Default 70 (the seed's)."""
    shutdown_timeout_seconds: int | None = None
    """vLLM ``--shutdown-timeout``: after SIGTERM vLLM stops taking requests and lets the ones
    in flight finish for up to this long. Default: what the grace period leaves after the
    drain deadline and the margin (33 with the defaults)."""
    drain_deadline_seconds: int | None = None
    """Longest the preStop hook holds SIGTERM back while requests are running or waiting,
    counted from the start of the hook. Default: half of the grace period less the margin,
    rounded down (32 with the defaults)."""
    prestop_settle_seconds: int = 5
    """Pause at the start of the preStop hook so the Service and the Gateway stop routing to
    the pod before the drain counts requests. Default 5 (the seed's ``sleep 5``)."""
    shm_size: str = "16Gi"
    """Size of the memory-backed ``/dev/shm``. Default ``"16Gi"`` (the seed's)."""
    gpus_per_replica: int | None = None
    """GPUs per pod (requests = limits), from 1 to the size's GPU count. Above 1,
    ``--tensor-parallel-size`` follows. Default ``None``: every GPU of the node (the size's
    ``gpu_count``: 1 for the seed's H100 x1, 8 for an x8 size)."""
    cpu_request: str | None = "2"
    """CPU request. Default ``"2"``: with a request the pod is Burstable, not BestEffort (the
    first evicted under node pressure). No CPU limit: throttling vLLM's scheduler and
    tokenizer threads costs latency. ``None`` for no request."""
    memory_request: str | None = "16Gi"
    """Memory request. Default ``"16Gi"``, at least ``/dev/shm``, which counts as the pod's
    memory; fits the smallest DigitalOcean GPU Droplet. ``None`` for no request."""
    memory_limit: str | None = None
    """Memory limit. Default ``None``: eager loading from NFS reads whole weight files into
    RAM, and an OOM kill mid-load is worse than no cap on a node the anti-affinity gives this
    pod alone. Set it (well above the model's size plus ``shm_size``) to bound the pod."""
    extra_args: tuple[str, ...] = ()
    """More ``vllm serve`` arguments, appended after ours (so they win). Default none."""
    hf_token_secret_name: str | None = "hf-token"
    """Secret with a Hugging Face token, mapped to ``HF_TOKEN`` if it exists (``optional``).
    ``None`` to not reference one. Default ``"hf-token"`` (the seed's)."""
    hf_token_secret_key: str = "HF_TOKEN"
    """Key of the token in that Secret. Default ``"HF_TOKEN"``."""
    api_key_secret_name: str | None = "vllm-api-key"
    """Secret holding the API key clients must send as ``Authorization: Bearer <key>``; vLLM
    reads it from ``VLLM_API_KEY``. Create it before (or right after) applying::

        kubectl -n vllm create secret generic vllm-api-key \\
            --from-literal=VLLM_API_KEY="$(openssl rand -hex 32)"

    The reference is not optional: until the Secret exists the pods stay in
    ``CreateContainerConfigError`` rather than serving without a key. vLLM checks the key on
    paths under ``/v1`` only; ``/health`` and ``/metrics`` (the probes, the preStop hook) stay
    open, which is why :meth:`GatewayEndpoint.route_to` exposes ``/v1`` only by default.
    ``None`` turns authentication off: anyone who reaches the port may use the model.
    Default ``"vllm-api-key"``."""
    api_key_secret_key: str = "VLLM_API_KEY"
    """Key of the API key in that Secret. Default ``"VLLM_API_KEY"``."""
    network_policy: bool = True
    """Restrict ingress to the pods to the vLLM port from the gateway's data path (and
    ``allow_from_namespaces``), with a NetworkPolicy ``<name>-ingress``; see
    :mod:`vllm_doks.k8s.network_policies`. Default ``True``."""
    cilium_gateway_policy: bool = True
    """With ``network_policy``, admit the vLLM port from Cilium's Gateway API Envoy with a
    CiliumNetworkPolicy ``<name>-from-gateway`` (``fromEntities: [ingress]``): DOKS's
    Gateway implementation, whose traffic no plain NetworkPolicy can select. ``False`` on a
    cluster without Cilium; then list the gateway's namespace in ``allow_from_namespaces``.
    Default ``True``."""
    allow_from_namespaces: tuple[str, ...] = ()
    """With ``network_policy``, namespaces whose pods may also reach the vLLM port directly,
    on every path: vLLM's endpoints outside ``/v1`` (``/tokenize``, ``/invocations``,
    ``/pooling``, ...) answer them without the API key. Default none."""
    metrics_from_namespaces: tuple[str, ...] = ()
    """With ``network_policy`` and ``cilium_gateway_policy``, namespaces whose pods may send
    ``GET /metrics`` (and nothing else) to the vLLM port, e.g. ``("monitoring",)`` for
    Prometheus: a CiliumNetworkPolicy ``<name>-metrics`` with an L7 HTTP rule, enforced by
    Cilium's Envoy. Use it rather than ``allow_from_namespaces`` for scrapers. Default none."""
    supplemental_groups: tuple[int, ...] | None = None
    """Extra groups of the pod's processes. AMD GPUs: the device plugin hands the container
    ``/dev/kfd`` and ``/dev/dri/renderD*`` with the host's group and mode 0660, so uid 1000
    opens them only with that group. Default ``None``: for AMD sizes Debian's ``video`` gid
    (44, :data:`vllm_doks.contracts.DEBIAN_VIDEO_GID`), none for NVIDIA. AMD pods also run an
    init container ``check-gpu-devices`` that fails with the devices' gids when they cannot be
    opened: put that gid here."""
    anti_affinity: AntiAffinity = "required"
    """Pod anti-affinity on ``kubernetes.io/hostname``: ``"required"`` (at most one pod per
    node, the seed's), ``"preferred"`` (spread when possible) or ``"none"``."""
    progress_deadline_seconds: int = 1800
    """Seconds a rollout may make no progress before the Deployment reports it failed. Default
    1800: a first rollout waits for the model download plus model loading, far beyond
    Kubernetes' 600."""
    model_wait_interval_seconds: int = 10
    """How often the init container looks for the downloaded model. Default 10."""
    lora: LoraOptions | None = None
    """LoRA adapters to serve next to the model (:class:`~vllm_doks.k8s.lora.LoraOptions`):
    vLLM's LoRA flags, and one more init container per adapter waiting for its download.
    Default ``None``: no LoRA."""
    safetensors_load_strategy: str = contracts.VLLM_SAFETENSORS_LOAD_STRATEGY_NFS
    """vLLM ``--safetensors-load-strategy``: ``eager`` or ``prefetch`` (the capacity plan picks
    one per pool, :func:`vllm_doks.weights.choose_load_strategy`). Default ``eager``."""
    compile_cache: bool = False
    """Keep vLLM's compile cache on the model's NFS share, so only the first pod of a
    configuration compiles (:mod:`vllm_doks.k8s.compile_cache`). Default ``False``."""

    def _node_pool(self, problems: Problems) -> tuple[str | None, str | GpuSize]:
        return node_pool_and_size(
            problems,
            self.gpu_pool,
            name=("gpu_node_pool_name", self.gpu_node_pool_name),
            size=("gpu_size", self.gpu_size),
        )

    @property
    def gpu(self) -> GpuSize:
        """The size entry of the node pool's size (raises ValidationError for an unknown
        slug)."""
        _, size = self._node_pool(Problems())
        return size if isinstance(size, GpuSize) else lookup_gpu_size(size)

    @property
    def resolved_image(self) -> str:
        """``image``, or the GPU size's vLLM image when it is ``None``."""
        return self.image if self.image is not None else self.gpu.vllm_image

    @property
    def resolved_gpus_per_replica(self) -> int:
        """``gpus_per_replica``, or every GPU of the size's node when it is ``None``."""
        if self.gpus_per_replica is not None:
            return self.gpus_per_replica
        return self.gpu.gpu_count

    @property
    def resolved_drain_deadline_seconds(self) -> int:
        if self.drain_deadline_seconds is not None:
            return self.drain_deadline_seconds
        return (self.termination_grace_period_seconds - SHUTDOWN_MARGIN_SECONDS) // 2

    @property
    def resolved_shutdown_timeout_seconds(self) -> int:
        if self.shutdown_timeout_seconds is not None:
            return self.shutdown_timeout_seconds
        return max(
            0,
            self.termination_grace_period_seconds
            - SHUTDOWN_MARGIN_SECONDS
            - self.resolved_drain_deadline_seconds,
        )

    @property
    def resolved_supplemental_groups(self) -> tuple[int, ...]:
        """``supplemental_groups``, or (``None``) ``video``'s gid for AMD sizes."""
        if self.supplemental_groups is not None:
            return self.supplemental_groups
        return (contracts.DEBIAN_VIDEO_GID,) if self.gpu.vendor == "amd" else ()

    def problems(self) -> Problems:
        problems = Problems()
        problems.check(
            isinstance(self.model, ModelDownload),
            "model",
            self.model,
            "must be a ModelDownload, as returned by NfsModelStore.add_model()",
        )
        node_pool, gpu_size = self._node_pool(problems)
        problems.check(
            node_pool is not None or self.gpu_pool is not None,  # a bad gpu_pool is reported
            "gpu_node_pool_name",
            node_pool,
            "is required: the DOKS node pool to run on (or gpu_pool, its name and size)",
        )
        if node_pool is not None:
            check_dns_label(problems, "gpu_node_pool_name", node_pool)
        check_int_range(problems, "replicas", self.replicas, 0)
        if self.quantization:
            known = problems.check(
                self.quantization in VLLM_QUANTIZATION_METHODS,
                "quantization",
                self.quantization,
                f"must be one of vLLM v0.18's --quantization methods: "
                f"{', '.join(VLLM_QUANTIZATION_METHODS)}; or None / '' for none (a method of "
                f"another vLLM release can go in extra_args)",
            )
            if known and self.quantization in VLLM_DEPRECATED_QUANTIZATION_METHODS:
                problems.check(
                    isinstance(self.extra_args, tuple)
                    and ALLOW_DEPRECATED_QUANTIZATION in self.extra_args,
                    "quantization",
                    self.quantization,
                    f"is deprecated in vLLM v0.18, which refuses it unless extra_args also "
                    f"contains {ALLOW_DEPRECATED_QUANTIZATION!r}",
                )
        if self.max_model_len is not None:
            problems.check(
                isinstance(self.max_model_len, int)
                and not isinstance(self.max_model_len, bool)
                and (self.max_model_len == -1 or self.max_model_len >= 1),
                "max_model_len",
                self.max_model_len,
                "must be a whole number of tokens (at least 1), or -1 for vLLM's auto-fit",
            )
        if self.kv_cache_dtype is not None:
            problems.check(
                self.kv_cache_dtype in VLLM_KV_CACHE_DTYPES,
                "kv_cache_dtype",
                self.kv_cache_dtype,
                f"must be one of vLLM v0.18's --kv-cache-dtype values: "
                f"{', '.join(VLLM_KV_CACHE_DTYPES)}",
            )
        if self.gpu_memory_utilization is not None:
            problems.check(
                isinstance(self.gpu_memory_utilization, int | float)
                and not isinstance(self.gpu_memory_utilization, bool)
                and 0 < self.gpu_memory_utilization <= 1,
                "gpu_memory_utilization",
                self.gpu_memory_utilization,
                "must be a fraction greater than 0 and at most 1, e.g. 0.95",
            )
        size = resolve_gpu_size(problems, "gpu_size", gpu_size, escape="gpu_size=")
        if self.image is not None:
            if check_image(problems, "image", self.image) and size is not None:
                # The CUDA build finds no GPU on an AMD node and the ROCm build none on an
                # NVIDIA node; refuse the other vendor's pinned image.
                other = {v: i for v, i in VENDOR_VLLM_IMAGES.items() if v != size.vendor}
                for vendor, image in other.items():
                    problems.check(
                        self.image.split(":")[0].split("@")[0] != image.split(":")[0],
                        "image",
                        self.image,
                        f"is vLLM's {vendor.upper()} build, but gpu_size {size.slug} has "
                        f"{size.vendor.upper()} GPUs: use {size.vllm_image} (or leave image "
                        f"unset)",
                    )
        elif size is not None:
            check_image(problems, "gpu_size.vllm_image", size.vllm_image)
        check_service_name(problems, "name", self.name, max_len=63 - len("-pdb"))
        check_int_range(problems, "port", self.port, 1, 65535)
        if self.served_model_name is not None:
            check_word(
                problems,
                "served_model_name",
                self.served_model_name,
                "must be a non-empty name without whitespace",
            )
        if isinstance(self.probes, ProbeTimings):
            problems.extend(self.probes.problems().items)
        else:
            problems.add("probes", self.probes, "must be a ProbeTimings")
        grace = self.termination_grace_period_seconds
        if check_int_range(
            problems, "termination_grace_period_seconds", grace, SHUTDOWN_MARGIN_SECONDS + 1
        ):
            shutdown = self.resolved_shutdown_timeout_seconds
            shutdown_ok = problems.check(
                isinstance(shutdown, int) and not isinstance(shutdown, bool) and shutdown >= 0,
                "shutdown_timeout_seconds",
                shutdown,
                "must be a whole number of seconds, 0 or more",
            )
            settle = self.prestop_settle_seconds
            if check_int_range(problems, "prestop_settle_seconds", settle, 0):
                deadline = self.resolved_drain_deadline_seconds
                deadline_ok = problems.check(
                    isinstance(deadline, int)
                    and not isinstance(deadline, bool)
                    and deadline >= settle,
                    "drain_deadline_seconds",
                    deadline,
                    f"must be a whole number of seconds, at least prestop_settle_seconds "
                    f"({settle})",
                )
                if shutdown_ok and deadline_ok:
                    # The budget: preStop drain, then vLLM's own drain after SIGTERM, then
                    # time to exit, all inside the grace period the kubelet counts from the
                    # start of the preStop hook.
                    needed = deadline + shutdown + SHUTDOWN_MARGIN_SECONDS
                    problems.check(
                        needed <= grace,
                        "termination_grace_period_seconds",
                        grace,
                        f"must be at least drain_deadline_seconds ({deadline}) + "
                        f"shutdown_timeout_seconds ({shutdown}) + {SHUTDOWN_MARGIN_SECONDS} s "
                        f"margin = {needed}: the preStop drain counts against the grace "
                        f"period and vLLM may use its whole --shutdown-timeout after SIGTERM; "
                        f"raise the grace period or lower the other two",
                    )
        check_quantity(problems, "shm_size", self.shm_size)
        if self.gpus_per_replica is not None and size is not None:
            problems.check(
                isinstance(self.gpus_per_replica, int)
                and not isinstance(self.gpus_per_replica, bool)
                and 1 <= self.gpus_per_replica <= size.gpu_count,
                "gpus_per_replica",
                self.gpus_per_replica,
                f"must be a whole number from 1 to the {size.gpu_count} GPU(s) of a "
                f"{size.slug} node (a pod cannot span nodes); None uses all of them",
            )
        quantities_ok = True
        problems.check(
            self.safetensors_load_strategy
            in (
                contracts.VLLM_SAFETENSORS_LOAD_STRATEGY_NFS,
                contracts.VLLM_SAFETENSORS_LOAD_STRATEGY_PREFETCH,
            ),
            "safetensors_load_strategy",
            self.safetensors_load_strategy,
            "must be 'eager' or 'prefetch' (from NFS, vLLM's default 'lazy' turns page faults "
            "into small random reads)",
        )
        for field_name in ("cpu_request", "memory_request", "memory_limit"):
            value = getattr(self, field_name)
            if value is not None:
                quantities_ok &= check_quantity(problems, field_name, value)
        if quantities_ok and self.memory_request is not None and self.memory_limit is not None:
            check_request_within_limit(
                problems, "memory_request", self.memory_request, "memory_limit", self.memory_limit
            )
        problems.check(
            isinstance(self.extra_args, tuple) and all(isinstance(a, str) for a in self.extra_args),
            "extra_args",
            self.extra_args,
            "must be a tuple of strings, e.g. ('--max-model-len', '8192')",
        )
        if self.hf_token_secret_name is not None:
            check_dns_subdomain(problems, "hf_token_secret_name", self.hf_token_secret_name)
            check_secret_key(problems, "hf_token_secret_key", self.hf_token_secret_key)
        if self.api_key_secret_name is not None:
            check_dns_subdomain(problems, "api_key_secret_name", self.api_key_secret_name)
            check_secret_key(problems, "api_key_secret_key", self.api_key_secret_key)
        check_ingress_options(problems, self)
        check_namespace_names(problems, "metrics_from_namespaces", self.metrics_from_namespaces)
        problems.check(
            not self.metrics_from_namespaces
            or (self.network_policy is True and self.cilium_gateway_policy is True),
            "metrics_from_namespaces",
            self.metrics_from_namespaces,
            "needs network_policy=True and cilium_gateway_policy=True (an L7 rule only "
            "Cilium enforces); without Cilium use allow_from_namespaces, which admits "
            "every path of the port",
        )
        if self.supplemental_groups is not None:
            problems.check(
                isinstance(self.supplemental_groups, tuple)
                and all(
                    isinstance(g, int) and not isinstance(g, bool) and 0 < g < 2**31
                    for g in self.supplemental_groups
                ),
                "supplemental_groups",
                self.supplemental_groups,
                "must be a tuple of group ids from 1 to 2147483647, e.g. (44,)",
            )
        problems.check(
            self.anti_affinity in ("required", "preferred", "none"),
            "anti_affinity",
            self.anti_affinity,
            "must be 'required', 'preferred' or 'none'",
        )
        check_int_range(problems, "progress_deadline_seconds", self.progress_deadline_seconds, 1)
        check_int_range(
            problems, "model_wait_interval_seconds", self.model_wait_interval_seconds, 1
        )
        lora_ok = self.lora is None or problems.check(
            isinstance(self.lora, LoraOptions), "lora", self.lora, "must be a LoraOptions"
        )
        if self.lora is not None and lora_ok and isinstance(self.model, ModelDownload):
            served = self.served_model_name or self.model.model_name
            problems.extend(self.lora.problems(self.model, served).items)
        return problems


@takes_props(VllmWorkerPoolProps)
class VllmWorkerPool(ServingWorkload):
    """vLLM serving one model from an :class:`NfsModelStore`, on a DOKS GPU node pool.

    Renders the seed's Deployment, ClusterIP Service and PodDisruptionBudget:

    * rollouts replace one pod at a time without a surge pod (GPU nodes are the constraint):
      ``RollingUpdate`` with ``maxSurge: 0``, ``maxUnavailable: 1``; the budget allows one
      voluntary disruption at a time;
    * pods wait in an init container until the model's download is complete, then load it
      with ``--safetensors-load-strategy eager`` (sequential reads, which NFS serves well);
    * on termination a preStop hook holds SIGTERM back until ``/metrics`` shows no running
      or waiting requests (bounded), then vLLM's ``--shutdown-timeout`` finishes the rest;
    * non-root, read-only root filesystem, no capabilities; ``/tmp`` and ``/dev/shm`` are
      the only writable paths, and the model share is mounted read-only;
    * clients authenticate with the API key from the Secret ``vllm-api-key`` (vLLM's
      ``VLLM_API_KEY``), unless ``api_key_secret_name=None`` turns that off;
    * a NetworkPolicy ``<name>-ingress`` and a CiliumNetworkPolicy ``<name>-from-gateway``
      let only the Gateway's data path reach the vLLM port (see
      :mod:`vllm_doks.k8s.network_policies`).

    Checks that checkov reports for these pods and that are waived on purpose (no CPU limit,
    uid 1000, ...) are annotated on the Deployment with their reasons
    (:mod:`vllm_doks.k8s.suppressions`).
    """

    def __init__(self, scope: Construct, id: str, props: VllmWorkerPoolProps) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)

        model = props.model
        self.props = props
        self.model = model
        self.deployment_name = props.name
        self.service_name = props.name
        self.pdb_name = f"{props.name}-pdb"
        self.service_port = props.port
        self.model_id = model.model_id
        self.model_name = model.model_name
        self.served_model_name = props.served_model_name or model.model_name
        self.replicas = props.replicas
        self.quantization = props.quantization or None
        self.gpu_size: GpuSize = props.gpu
        self.gpu_node_pool_name: str = props._node_pool(Problems())[0] or ""
        #: The node pool the pods run on, name and size.
        self.gpu_pool = GpuPoolRef(self.gpu_node_pool_name, self.gpu_size.slug)
        self.gpus_per_replica = props.resolved_gpus_per_replica
        self.image = props.resolved_image
        self.shutdown_timeout_seconds = props.resolved_shutdown_timeout_seconds
        self.drain_deadline_seconds = props.resolved_drain_deadline_seconds
        self.api_key_secret_name = props.api_key_secret_name
        self._select(namespace=model.namespace, app=props.name)

        self._serve(
            name=props.name,
            replicas=props.replicas,
            progress_deadline_seconds=props.progress_deadline_seconds,
            # One pod at a time and no surge pod: GPU nodes are the constraint.
            strategy=rolling_update(max_surge=0, max_unavailable=1),
            annotations=checkov_skip_annotations(self._checkov_skips()),
            pod_spec=self._pod_spec(),
            ports=[service_port(PORT_NAME, props.port)],
            disruption_budget=self.pdb_name,
        )

        self.metrics_network_policy: cdk8s.ApiObject | None = None
        self._restrict_ingress(props)
        if props.network_policy and props.metrics_from_namespaces:
            self.metrics_network_policy = self.connections.allow_from(
                Namespaces(props.metrics_from_namespaces),
                port=props.port,
                http_get=contracts.VLLM_METRICS_PATH,
                id="MetricsNetworkPolicy",
                name=f"{props.name}-metrics",
            )

    @property
    def vllm_args(self) -> list[str]:
        """The ``vllm serve`` arguments of the container, in order."""
        props = self.props
        args = [
            contracts.VLLM_FLAG_MODEL,
            self.model.model_dir,
            contracts.VLLM_FLAG_SERVED_MODEL_NAME,
            self.served_model_name,
        ]
        if self.quantization:
            args += [contracts.VLLM_FLAG_QUANTIZATION, self.quantization]
        # Memory settings only when set: unset, vLLM's own defaults apply.
        if props.max_model_len is not None:
            args += [contracts.VLLM_FLAG_MAX_MODEL_LEN, str(props.max_model_len)]
        if props.kv_cache_dtype is not None:
            args += [contracts.VLLM_FLAG_KV_CACHE_DTYPE, props.kv_cache_dtype]
        if props.gpu_memory_utilization is not None:
            args += [
                contracts.VLLM_FLAG_GPU_MEMORY_UTILIZATION,
                f"{props.gpu_memory_utilization:g}",
            ]
        args += [
            contracts.VLLM_FLAG_SAFETENSORS_LOAD_STRATEGY,
            props.safetensors_load_strategy,
            contracts.VLLM_FLAG_PORT,
            str(props.port),
            contracts.VLLM_FLAG_SHUTDOWN_TIMEOUT,
            str(self.shutdown_timeout_seconds),
        ]
        if self.gpus_per_replica > 1:
            # One replica spans the GPUs it requests (all of the node's by default).
            args += [contracts.VLLM_FLAG_TENSOR_PARALLEL_SIZE, str(self.gpus_per_replica)]
        if props.lora is not None:
            args += props.lora.vllm_args()
        return [*args, *props.extra_args]

    def _checkov_skips(self) -> list[tuple[str, str]]:
        props = self.props
        skips = [("CKV_K8S_11", CPU_LIMIT_REASON)]
        if props.memory_limit is None:
            skips.append(("CKV_K8S_13", MEMORY_LIMIT_REASON))
        reasons = [
            reason
            for reason, used in (
                (API_KEY_ENV_REASON, props.api_key_secret_name is not None),
                (HF_TOKEN_ENV_REASON, props.hf_token_secret_name is not None),
            )
            if used
        ]
        if reasons:
            skips.append(("CKV_K8S_35", f"{'; '.join(reasons)}. {SECRET_REF_ONLY}"))
        skips.append(("CKV_K8S_40", HIGH_UID_REASON))
        return skips + image_skips(self.image)

    @property
    def compile_cache(self) -> CompileCachePod | None:
        """The compile cache's pod parts, or ``None`` when ``compile_cache`` is off."""
        if not self.props.compile_cache:
            return None
        return CompileCachePod(
            claim_name=self.model.pvc_name,
            key=compile_cache_key(
                model_id=self.model_id,
                revision=self.model.revision,
                image=self.image,
                gpu_size=self.gpu_size.slug,
                tensor_parallel_size=self.gpus_per_replica,
                quantization=self.quantization,
                kv_cache_dtype=self.props.kv_cache_dtype,
                vllm_args=self.vllm_args,
            ),
            image=self.image,
            port=self.props.port,
        )

    def _pod_spec(self) -> k8s.PodSpec:
        props = self.props
        model = self.model
        cache = self.compile_cache
        models_mount = kube.VolumeMount(
            name=MODELS_VOLUME, mount_path=model.mount_path, read_only=True
        )
        return kube.PodSpec(
            termination_grace_period_seconds=props.termination_grace_period_seconds,
            automount_service_account_token=False,
            # Service links would inject VLLM_PORT=tcp://<ip>:<port> for a Service named
            # "vllm"; vLLM reads VLLM_PORT and refuses a URL there.
            enable_service_links=False,
            security_context=pod_security_context(props.resolved_supplemental_groups),
            tolerations=gpu_tolerations(self.gpu_size),
            node_selector=node_pool_selector(self.gpu_node_pool_name),
            affinity=self._affinity(),
            init_containers=[
                *self._gpu_check_containers(),
                self._wait_container(
                    "wait-for-model", model.marker_path, model.wait_hint, models_mount
                ),
                *self._lora_waits(models_mount),
                *([cache.seed_container(), cache.publish_container()] if cache else []),
            ],
            containers=[
                serving_container(
                    name=CONTAINER_NAME,
                    image=self.image,
                    args=self.vllm_args,
                    ports={PORT_NAME: props.port},
                    env=self._env() + (cache.env() if cache else []),
                    resources=self._resources(),
                    volume_mounts=[
                        models_mount,
                        tmp_mount(),
                        kube.VolumeMount(name=SHM_VOLUME, mount_path="/dev/shm"),
                    ],
                    startup_probe=props.probes.startup_probe(PORT_NAME),
                    readiness_probe=props.probes.readiness_probe(PORT_NAME),
                    liveness_probe=props.probes.liveness_probe(PORT_NAME),
                    lifecycle=kube.Lifecycle(
                        pre_stop=kube.LifecycleHandler(
                            exec=kube.ExecAction(
                                command=sh_command(
                                    PRESTOP_DRAIN,
                                    str(props.port),
                                    str(self.drain_deadline_seconds),
                                    str(props.prestop_settle_seconds),
                                ),
                            ),
                        ),
                    ),
                )
            ],
            volumes=[
                models_volume(model.pvc_name, read_only=True),
                *([cache.volume()] if cache else []),
                tmp_volume(),
                kube.Volume(
                    name=SHM_VOLUME,
                    # PyTorch and NCCL exchange tensors through /dev/shm; the runtime's
                    # default 64 MiB is far too small.
                    empty_dir=kube.EmptyDirVolumeSource(
                        medium="Memory",
                        size_limit=quantity(props.shm_size),
                    ),
                ),
            ],
        )

    def _wait_container(
        self, name: str, marker_path: str, hint: str, models_mount: k8s.VolumeMount
    ) -> k8s.Container:
        """An init container that waits until a download's completion marker is on the share.
        Same image as vLLM: no second image to pull, and it is already local when the vLLM
        container starts."""
        return kube.Container(
            name=name,
            image=self.image,
            image_pull_policy="IfNotPresent",
            command=sh_command(
                WAIT_FOR_MODEL, marker_path, str(self.props.model_wait_interval_seconds), hint
            ),
            resources=_wait_resources(),
            security_context=container_security_context(),
            volume_mounts=[models_mount],
        )

    def _lora_waits(self, models_mount: k8s.VolumeMount) -> list[k8s.Container]:
        """One more wait-for-model init container per LoRA adapter, for its download."""
        return [
            self._wait_container(
                f"wait-for-lora-{i}", adapter.marker_path, adapter.download.wait_hint, models_mount
            )
            for i, adapter in enumerate(self.props.lora.adapters if self.props.lora else ())
        ]

    def _env(self) -> list[k8s.EnvVar]:
        props = self.props
        variables = [
            # uid 1000 has no passwd entry in the image; libraries that ask for the user
            # name (torch.compile's cache path) would fail without USER.
            env("USER", "vllm"),
            env("HOME", "/tmp"),
            # The seed's. vLLM takes it as the first port for internal communication and
            # skips ports already bound, like the API port it binds before the engine starts.
            env(contracts.VLLM_PORT_ENV, str(props.port)),
        ]
        if props.hf_token_secret_name is not None:
            variables.append(
                optional_secret_env(
                    contracts.HF_TOKEN_ENV, props.hf_token_secret_name, props.hf_token_secret_key
                )
            )
        if props.api_key_secret_name is not None:
            # vLLM then requires "Authorization: Bearer <key>" on every path under /v1 and
            # leaves the others open (AuthenticationMiddleware in
            # vllm/entrypoints/openai/server_utils.py, v0.18.0: "the request path doesn't
            # start with /v1 (e.g. /health)" skips the check), so the probes' /health and the
            # preStop hook's /metrics keep working without the key.
            variables.append(
                required_secret_env(
                    API_KEY_ENV, props.api_key_secret_name, props.api_key_secret_key
                )
            )
        # Weights come from the share only; never reach out to the Hub at startup.
        variables.append(env(contracts.HF_HUB_OFFLINE_ENV, "1"))
        # No anonymous usage reports to stats.vllm.ai from inside the cluster (vLLM sends them
        # unless one of these is set; see contracts.VLLM_NO_USAGE_STATS_ENV).
        variables.append(env(contracts.VLLM_NO_USAGE_STATS_ENV, "1"))
        variables.append(env(contracts.DO_NOT_TRACK_ENV, "1"))
        if props.lora is not None:
            variables += props.lora.env()
        return variables

    def _gpu_check_containers(self) -> list[k8s.Container]:
        """AMD only: an init container that opens the GPU device nodes as the pod's user and
        fails, naming the devices' gids, when it cannot (see ``supplemental_groups``). It
        requests the same GPUs, which the kubelet then hands on to the vLLM container."""
        if self.gpu_size.vendor != "amd":
            return []
        gpus = {self.gpu_size.resource_name: self.gpus_per_replica}
        return [
            kube.Container(
                name="check-gpu-devices",
                image=self.image,
                image_pull_policy="IfNotPresent",
                command=sh_command(CHECK_GPU_DEVICES, *contracts.AMD_GPU_DEVICE_PATHS),
                resources=resource_requirements(
                    {**gpus, **WAIT_FOR_MODEL_REQUESTS}, {**gpus, **WAIT_FOR_MODEL_LIMITS}
                ),
                security_context=container_security_context(),
            )
        ]

    def _resources(self) -> k8s.ResourceRequirements:
        props = self.props
        gpus: dict[str, str | int] = {self.gpu_size.resource_name: self.gpus_per_replica}
        requests, limits = dict(gpus), dict(gpus)
        if props.cpu_request is not None:
            requests["cpu"] = props.cpu_request
        if props.memory_request is not None:
            requests["memory"] = props.memory_request
        if props.memory_limit is not None:
            limits["memory"] = props.memory_limit
        return resource_requirements(requests, limits)

    def _affinity(self) -> k8s.Affinity | None:
        term = kube.PodAffinityTerm(
            label_selector=kube.LabelSelector(match_labels=self.selector_labels),
            topology_key=HOSTNAME_TOPOLOGY_KEY,
        )
        if self.props.anti_affinity == "required":
            return kube.Affinity(
                pod_anti_affinity=kube.PodAntiAffinity(
                    required_during_scheduling_ignored_during_execution=[term]
                ),
            )
        if self.props.anti_affinity == "preferred":
            return kube.Affinity(
                pod_anti_affinity=kube.PodAntiAffinity(
                    preferred_during_scheduling_ignored_during_execution=[
                        kube.WeightedPodAffinityTerm(weight=100, pod_affinity_term=term)
                    ],
                ),
            )
        return None
