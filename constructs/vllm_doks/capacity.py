"""Synth-time capacity planning: does each model fit its GPUs, the pools their nodes, and all
models the NFS share? And how long may a model take to load?

Pure Python (no cdk8s/cdktf import): data in (:class:`ClusterPlan` of :class:`PoolPlan`),
a :class:`CapacityReport` out, with a human table, deterministic JSON and the
:class:`~vllm_doks.validation.Problems` of a plan that cannot work.

Units: every ``*_gb`` here is GiB (2**30 bytes), as elsewhere in this library
(``nfs_size_gb`` is the share's GiB) and as the GPU slugs' memory figures are.

What vLLM would do with each replica comes from :mod:`vllm_doks.model_arch` (vLLM v0.18's
own arithmetic, with its sources): weights per GPU from the model's architecture (built-in
table or a ``config.json``; only Linear layers quantized, ``embed_tokens``/``lm_head`` in
bf16, split by tensor parallelism), usable memory = GPU memory as CUDA reports it x
``--gpu-memory-utilization``, KV memory after a profiling estimate, KV tokens, max length
and concurrency, and vLLM's start/refuse verdict with fixes. Only when the architecture is
unknown and ``parameters_b`` is given does the older weights-only check apply (weights =
parameters x bytes per parameter, refused under :data:`MIN_KV_HEADROOM_GB` of headroom).

* A replica uses every GPU of one node (``--tensor-parallel-size`` = GPUs of the size).
* GPU nodes: one replica per node (hard anti-affinity, and in any case a replica takes all
  GPUs of its node); pools on the same GPU size add up.
* NFS: each distinct model's checkpoint once, at its size on disk, plus 10 % slack: bf16
  unless the model id names a pre-quantized checkpoint (``FP8``/``INT8``/``W8A8`` -> 1 byte
  per Linear parameter; ``AWQ``/``GPTQ``/``INT4``/``W4A16``/``4bit`` -> ~0.52) or the
  quantization is AWQ/GPTQ. Online ``fp8`` quantization reads a bf16 checkpoint.
* Host side: RAM for eager safetensors loading and ``/dev/shm`` against the node's RAM;
  cost per hour and per month at the minimum and maximum replica counts.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from vllm_doks.cold_start import (
    COMPILE_CACHE_GIB,
    ColdStartBudget,
    ColdStartFigures,
    cold_start_budget,
)
from vllm_doks.contracts import VLLM_DEFAULT_MAX_LORA_RANK, VLLM_MAX_LORA_RANKS
from vllm_doks.gpu_catalog import GPU_SIZES, GpuSize, unknown_size_problem
from vllm_doks.model_arch import (
    KV_CACHE_DTYPE_BYTES,
    MODEL_ARCHITECTURES,
    ModelArchitecture,
    VllmMemoryPlan,
    batch_defaults,
    linear_bytes,
    lookup_architecture,
    plan_vllm_memory,
)
from vllm_doks.validation import Problem, Problems, ValidationError, check_int_range
from vllm_doks.weights import choose_load_strategy

_GIB = float(2**30)

#: Parameter counts (billions) of well-known models, from their Hugging Face model cards.
#: Anything else needs ``PoolPlan.parameters_b``.
MODEL_PARAMETERS_B: Mapping[str, float] = MappingProxyType(
    {
        "Qwen/Qwen2.5-0.5B-Instruct": 0.49,
        "Qwen/Qwen2.5-1.5B-Instruct": 1.54,
        "Qwen/Qwen2.5-3B-Instruct": 3.09,
        "Qwen/Qwen2.5-7B-Instruct": 7.6,
        "Qwen/Qwen2.5-14B-Instruct": 14.7,
        "Qwen/Qwen2.5-32B-Instruct": 32.5,
        "Qwen/Qwen2.5-72B-Instruct": 72.7,
        "Qwen/Qwen2.5-72B-Instruct-AWQ": 72.7,
        "meta-llama/Llama-3.1-8B-Instruct": 8.0,
        "meta-llama/Llama-3.1-70B-Instruct": 70.6,
        "meta-llama/Llama-3.3-70B-Instruct": 70.6,
        "mistralai/Mistral-7B-Instruct-v0.3": 7.25,
        "mistralai/Mistral-Small-24B-Instruct-2501": 23.6,
    }
)

#: 4-bit weights: half a byte plus group scales/zeros (~12.5 % for group size 128).
FOUR_BIT_BYTES = 0.5625
_BYTES_BY_QUANTIZATION: Mapping[str, float] = MappingProxyType(
    {
        # unquantized: the checkpoint's 16-bit dtype
        "": 2.0,
        "none": 2.0,
        "auto": 2.0,
        "bf16": 2.0,
        "bfloat16": 2.0,
        "fp16": 2.0,
        "float16": 2.0,
        "half": 2.0,
        "fp32": 4.0,
        "float32": 4.0,
        # 8-bit
        "fp8": 1.0,
        "fbgemm_fp8": 1.0,
        "ptpc_fp8": 1.0,
        "modelopt": 1.0,
        "int8": 1.0,
        "w8a8": 1.0,
        "experts_int8": 1.0,
        # 4-bit
        "awq": FOUR_BIT_BYTES,
        "awq_marlin": FOUR_BIT_BYTES,
        "gptq": FOUR_BIT_BYTES,
        "gptq_marlin": FOUR_BIT_BYTES,
        "bitsandbytes": FOUR_BIT_BYTES,
        "int4": FOUR_BIT_BYTES,
        "w4a16": FOUR_BIT_BYTES,
    }
)
_FOUR_BIT_ID_MARKERS = ("awq", "gptq", "int4", "w4a16", "4bit", "4-bit", "bnb")
_EIGHT_BIT_ID_MARKERS = ("fp8", "int8", "w8a8", "8bit", "8-bit")

#: Least KV-cache headroom (GiB) a replica must keep: vLLM also needs room for activations,
#: CUDA graphs and at least one full-length sequence, so a plan below this will not start.
MIN_KV_HEADROOM_GB = 1.0
#: Share of the NFS need added as slack (tokenizer files, partial downloads, a new version).
NFS_SLACK = 0.10
#: Assumed sequential read throughput of a Managed NFS share into one pod, MiB/s. A
#: conservative planning figure, not a measured SLA: override it with what you observe.
DEFAULT_NFS_READ_MB_PER_S = 250.0
#: The seed's startup window (12 checks x 10 s after a 120 s delay, its README's "up to 120
#: seconds for model loading"): vLLM's own start-up plus a small model's load.
DEFAULT_STARTUP_BASE_SECONDS = 120
#: Kubernetes' default ``progressDeadlineSeconds``.
K8S_DEFAULT_PROGRESS_DEADLINE_SECONDS = 600

_KNOWN_QUANTIZATIONS = ", ".join(sorted(q for q in _BYTES_BY_QUANTIZATION if q))


def bytes_per_parameter(quantization: str | None) -> float:
    """Bytes one parameter takes in GPU memory under vLLM's ``--quantization``.

    ``None``/``""``/``none``/``bf16`` -> 2; ``fp8``/``int8``-class -> 1; ``awq``/``gptq``
    4-bit -> ~0.56 (half a byte plus group scales). Raises :class:`ValidationError` for an
    unknown method.
    """
    key = (quantization or "").strip().lower()
    try:
        return _BYTES_BY_QUANTIZATION[key]
    except KeyError:
        raise ValidationError(
            [Problem("quantization", quantization, f"must be one of: {_KNOWN_QUANTIZATIONS}")],
            "bytes_per_parameter",
        ) from None


def checkpoint_bytes_per_parameter(model_id: str, quantization: str | None = None) -> float:
    """Bytes one parameter takes on disk (and so on the share, and read at start-up).

    See the module doc: bf16 unless the id or the quantization says pre-quantized.
    """
    lowered = model_id.lower()
    q = (quantization or "").strip().lower()
    if any(m in lowered for m in _FOUR_BIT_ID_MARKERS) or _BYTES_BY_QUANTIZATION.get(q) == (
        FOUR_BIT_BYTES
    ):
        return FOUR_BIT_BYTES
    if any(m in lowered for m in _EIGHT_BIT_ID_MARKERS):
        return 1.0
    return 2.0


def memory_bytes_per_parameter(model_id: str, quantization: str | None) -> float:
    """Bytes per parameter in GPU memory: the quantization's, or a pre-quantized
    checkpoint's own when no quantization is given (vLLM reads it from the config)."""
    per = bytes_per_parameter(quantization)
    if not (quantization or "").strip() or (quantization or "").strip().lower() == "auto":
        return min(per, checkpoint_bytes_per_parameter(model_id))
    return per


def lookup_parameters_b(model_id: str) -> float | None:
    """Parameter count (billions) from the built-in table, matching ids case-insensitively."""
    if model_id in MODEL_PARAMETERS_B:
        return MODEL_PARAMETERS_B[model_id]
    lowered = model_id.lower()
    for known, value in MODEL_PARAMETERS_B.items():
        if known.lower() == lowered:
            return value
    return None


def weights_gb(parameters_b: float, bytes_per_param: float) -> float:
    """GiB that ``parameters_b`` billion parameters take at ``bytes_per_param``."""
    return parameters_b * 1e9 * bytes_per_param / _GIB


def startup_window_seconds(
    weights_gb: float,
    nfs_read_mb_per_s: float = DEFAULT_NFS_READ_MB_PER_S,
    base_seconds: int = DEFAULT_STARTUP_BASE_SECONDS,
) -> int:
    """Seconds the startup probe should allow vLLM to become healthy.

    ``base_seconds`` (the seed's 120 s, vLLM's own start-up) plus the time to read
    ``weights_gb`` GiB of checkpoint from NFS at ``nfs_read_mb_per_s`` MiB/s, rounded up.
    Pass the checkpoint's size on disk (what is read), not its quantized size in memory.
    A 0.5B model stays within a few seconds of the base; a 72B one gets about 10 minutes.
    """
    if nfs_read_mb_per_s <= 0:
        raise ValidationError(
            [Problem("nfs_read_mb_per_s", nfs_read_mb_per_s, "must be greater than 0")],
            "startup_window_seconds",
        )
    if weights_gb < 0 or base_seconds < 0:
        raise ValidationError(
            [
                Problem(
                    "weights_gb/base_seconds",
                    (weights_gb, base_seconds),
                    "must not be negative",
                )
            ],
            "startup_window_seconds",
        )
    return base_seconds + math.ceil(weights_gb * 1024 / nfs_read_mb_per_s)


def probe_failure_threshold(window_seconds: int, period: int = 10) -> int:
    """Startup-probe ``failureThreshold`` so that ``period x threshold`` (seconds) covers
    the window: 12 for the seed's 120 s at 10 s."""
    if period <= 0:
        raise ValidationError(
            [Problem("period", period, "must be at least 1 second")],
            "probe_failure_threshold",
        )
    return max(1, math.ceil(window_seconds / period))


def progress_deadline_seconds(startup_budget_seconds: int, margin_seconds: int = 120) -> int:
    """A Deployment ``progressDeadlineSeconds`` that does not give up on a rollout before
    the startup probe would: the probe's whole budget (initial delay + period x threshold)
    plus a margin for scheduling and image pull, never below Kubernetes' default 600 s."""
    return max(K8S_DEFAULT_PROGRESS_DEADLINE_SECONDS, startup_budget_seconds + margin_seconds)


@dataclass(frozen=True, kw_only=True)
class PoolPlan:
    """One vLLM worker pool: a model served by ``replicas`` pods on one GPU size."""

    name: str
    model_id: str
    gpu_size: str | GpuSize = "gpu-h100x1-80gb"
    """A catalogue slug, or a :class:`GpuSize` for a size the catalogue lacks."""
    replicas: int = 1
    quantization: str | None = None
    """vLLM ``--quantization`` (``None``/``""`` for none)."""
    parameters_b: float | None = None
    """Parameter count in billions; overrides the built-in table, required for models
    not in it."""
    gpu_memory_utilization: float = 0.9
    """vLLM ``--gpu-memory-utilization`` (the seed's default 0.9)."""
    anti_affinity_required: bool = True
    """Hard pod anti-affinity: at most one replica per node (the seed's)."""
    max_replicas: int | None = None
    """Most replicas an autoscaler may run (at least ``replicas``): the GPU nodes needed are
    counted for it. ``None`` (default): no autoscaling, ``replicas`` is the count."""
    architecture: ModelArchitecture | None = None
    """The model's architecture (e.g. from :func:`~vllm_doks.model_arch.load_architecture`).
    Default ``None``: the built-in table
    (:data:`~vllm_doks.model_arch.MODEL_ARCHITECTURES`)."""
    max_model_len: int | None = None
    """vLLM ``--max-model-len``: a length, ``-1`` for vLLM's auto-fit. Default ``None``:
    vLLM's default, the model's own maximum."""
    kv_cache_dtype: str | None = None
    """vLLM ``--kv-cache-dtype`` (``fp8`` halves the KV cache). Default ``None``: ``auto``."""
    max_num_batched_tokens: int | None = None
    """vLLM ``--max-num-batched-tokens``. Default ``None``: vLLM's per-GPU default."""
    max_num_seqs: int | None = None
    """vLLM ``--max-num-seqs``. Default ``None``: vLLM's per-GPU default."""
    shm_gb: float = 16.0
    """Size of the pod's memory-backed ``/dev/shm``, GiB (it counts as host RAM). Default 16."""
    min_replicas: int | None = None
    """Fewest replicas an autoscaler keeps, for the cost line. Default ``None``: ``replicas``."""
    max_loras: int | None = None
    """vLLM ``--max-loras`` when the pool serves LoRA adapters: their buffers (with
    ``max_lora_rank``) come out of the KV cache. Default ``None``: LoRA off."""
    max_lora_rank: int = VLLM_DEFAULT_MAX_LORA_RANK
    """vLLM ``--max-lora-rank``, with ``max_loras``. Default 16 (vLLM's)."""


#: Largest checkpoint shard assumed, GiB (Hugging Face ``save_pretrained`` writes 5 GB
#: shards by default). Eager safetensors loading holds a shard's bytes and its tensors at
#: once in every tensor-parallel worker.
SHARD_GB = 5e9 / 2**30
#: Host memory of one vLLM process besides the shard being loaded (Python, CUDA context,
#: tokenizer), GiB. An estimate.
PROCESS_BASELINE_GB = 3.0
#: Hours in a month for the cost line (DigitalOcean bills up to 672 h/month for Droplets;
#: GPU Droplets run continuously here, so the calendar average is used).
HOURS_PER_MONTH = 730


@dataclass(frozen=True, kw_only=True)
class ClusterPlan:
    pools: Sequence[PoolPlan]
    gpu_node_count: int | Mapping[str, int]
    """GPU nodes available: one number when every pool uses one GPU size (the seed's single
    GPU node pool), else GPU nodes per size slug."""
    nfs_size_gb: int
    """Size of the NFS share, GiB."""
    nfs_read_mb_per_s: float = DEFAULT_NFS_READ_MB_PER_S
    startup_base_seconds: int = DEFAULT_STARTUP_BASE_SECONDS
    cold_start: ColdStartFigures = field(default_factory=ColdStartFigures)
    """The figures of each pool's cold-start budget. Default: the sourced defaults of
    :class:`~vllm_doks.cold_start.ColdStartFigures`."""
    compile_cache: bool = False
    """Whether pods keep vLLM's compile cache on the share (a later start compiles warm).
    Default ``False``."""


@dataclass(frozen=True)
class PoolEstimate:
    """What :func:`plan_capacity` worked out for one pool (``None`` where it could not)."""

    name: str
    model_id: str
    parameters_b: float | None
    parameters_source: str
    """``table``, ``prop`` or ``unknown``."""
    quantization: str
    gpu_size: str
    gpu_count: int | None
    tensor_parallel_size: int | None
    replicas: int
    gpu_memory_utilization: float
    weights_gb: float | None
    gpu_memory_per_replica_gb: float | None
    usable_gb: float | None
    kv_headroom_gb: float | None
    kv_headroom_pct: float | None
    """KV-cache headroom as a percentage of usable memory."""
    checkpoint_gb: float | None
    """The model's checkpoint on the share (no slack)."""
    startup_window_seconds: int | None
    max_replicas: int | None = None
    """The autoscaling maximum, if any (left out of :meth:`CapacityReport.to_dict` when
    ``None``)."""
    architecture_source: str | None = None
    """Where the architecture came from (``config.json`` URL or path); ``None``: only a
    parameter count was known (no KV-cache plan)."""
    vllm: VllmMemoryPlan | None = None
    """vLLM's memory arithmetic for one replica (per GPU), when the architecture is known."""
    kv_cache_dtype: str = "auto"
    host_ram_gb: float | None = None
    """Host RAM of one node, GiB."""
    host_ram_needed_gb: float | None = None
    """Host RAM loading needs (eager safetensors per TP worker + /dev/shm), GiB: an estimate."""
    cost_per_hour_usd: tuple[float, float] | None = None
    """GPU nodes' price per hour at the minimum and maximum replica counts."""
    min_replicas: int | None = None
    """The autoscaling minimum, if any (for the cost line)."""

    load_strategy: str | None = None
    """vLLM ``--safetensors-load-strategy`` chosen for the pool (``eager`` or ``prefetch``)."""
    load_strategy_reason: str | None = None
    """Why that strategy."""
    cold_start: ColdStartBudget | None = None
    """Seconds from "a replica is wanted" to "it answers", per phase; ``None`` when the
    checkpoint size is unknown."""

    @property
    def fits(self) -> bool:
        if self.vllm is not None:
            return self.vllm.starts
        return self.kv_headroom_gb is not None and self.kv_headroom_gb > 0


@dataclass(frozen=True)
class CapacityReport:
    pools: tuple[PoolEstimate, ...]
    gpu_nodes_needed: Mapping[str, int]
    """GPU nodes needed per size slug."""
    gpu_nodes_available: Mapping[str, int | None]
    nfs_needed_gb: float
    """All distinct checkpoints (and the compile caches) plus slack, GiB."""
    nfs_size_gb: int
    _problems: tuple[Problem, ...] = field(default=(), repr=False)
    compile_cache_gb: float = 0.0
    """Of ``nfs_needed_gb``, the compile caches' part (before slack), GiB."""

    def problems(self) -> Problems:
        """Every reason the plan cannot work, each with its fix; empty when it can."""
        return Problems(where="capacity plan", items=list(self._problems))

    def check(self) -> CapacityReport:
        """Raise :class:`ValidationError` listing every problem; else return ``self``."""
        self.problems().raise_if_any()
        return self

    def pool(self, name: str) -> PoolEstimate:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pools": [_pool_dict(p) for p in self.pools],
            "gpu_nodes": {
                slug: {
                    "needed": self.gpu_nodes_needed[slug],
                    "available": self.gpu_nodes_available.get(slug),
                }
                for slug in sorted(self.gpu_nodes_needed)
            },
            "nfs": {
                "needed_gb": round(self.nfs_needed_gb, 2),
                "size_gb": self.nfs_size_gb,
                "compile_cache_gb": round(self.compile_cache_gb, 2),
            },
            "problems": [
                {"field": p.field, "value": _jsonable(p.value), "expected": p.expected}
                for p in self._problems
            ],
            "units": "GiB",
        }

    def to_json(self) -> str:
        """Machine-readable report: sorted keys, fixed rounding, trailing newline."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    def table(self) -> str:
        """A human table (for stderr) of every pool, the GPU nodes and the share."""
        header = (
            "pool",
            "model",
            "quant",
            "kv",
            "gpu size",
            "TP",
            "repl",
            "weights/GPU",
            "usable/GPU",
            "KV memory",
            "KV tokens",
            "max len",
            "conc",
            "startup",
        )
        rows = [header]
        for p in self.pools:
            v = p.vllm
            rows.append(
                (
                    p.name,
                    p.model_id,
                    p.quantization or "none",
                    p.kv_cache_dtype,
                    p.gpu_size,
                    str(p.tensor_parallel_size or "?"),
                    (
                        f"{p.replicas}-{p.max_replicas}"
                        if p.max_replicas is not None
                        else str(p.replicas)
                    ),
                    _fmt(v.weights_gib if v else _per_gpu(p.weights_gb, p), " GiB"),
                    _fmt(v.requested_gib if v else _per_gpu(p.usable_gb, p), " GiB"),
                    _fmt(v.available_kv_gib if v else _per_gpu(p.kv_headroom_gb, p), " GiB"),
                    f"{v.kv_tokens:,}" if v else "?",
                    str(v.max_model_len) if v else "?",
                    f"{v.max_concurrency:.1f}x" if v else "?",
                    f"{p.startup_window_seconds}s" if p.startup_window_seconds else "?",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "Capacity plan (per GPU; usable = GPU memory as CUDA reports it x "
            "--gpu-memory-utilization; KV memory = usable - weights - profiling estimate)"
        ]
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        for p in self.pools:
            if p.host_ram_needed_gb is not None and p.host_ram_gb is not None:
                lines.append(
                    f"Host RAM {p.gpu_size}: loading needs ~{p.host_ram_needed_gb:.0f} GiB "
                    f"({p.load_strategy or 'eager'} safetensors x {p.tensor_parallel_size} "
                    f"worker(s) + /dev/shm"
                    + (" + page cache" if p.load_strategy == "prefetch" else "")
                    + f"), node has {p.host_ram_gb:.0f} GiB"
                )
            if p.load_strategy_reason is not None:
                lines.append(
                    f"Load strategy {p.name}: {p.load_strategy}, as {p.load_strategy_reason}"
                )
            if p.cold_start is not None:
                lines.append(f"Cold start {p.name}: {p.cold_start.summary()}")
            if p.cost_per_hour_usd is not None:
                low, high = p.cost_per_hour_usd
                lines.append(
                    f"Cost {p.name}: ${low:,.2f}/h (${low * HOURS_PER_MONTH:,.0f}/month) at "
                    f"{p.min_replicas or p.replicas} replica(s)"
                    + (
                        f", ${high:,.2f}/h (${high * HOURS_PER_MONTH:,.0f}/month) at "
                        f"{p.max_replicas}"
                        if p.max_replicas is not None
                        else ""
                    )
                )
        for slug in sorted(self.gpu_nodes_needed):
            have = self.gpu_nodes_available.get(slug)
            lines.append(
                f"GPU nodes {slug}: need {self.gpu_nodes_needed[slug]}, "
                f"have {have if have is not None else '?'}"
            )
        lines.append(
            f"NFS share: need {self.nfs_needed_gb:.1f} GiB (checkpoints"
            + (f" + compile caches {self.compile_cache_gb:g} GiB" if self.compile_cache_gb else "")
            + f" + {NFS_SLACK:.0%} slack), have {self.nfs_size_gb} GiB"
        )
        if self._problems:
            lines.append(f"{len(self._problems)} problem(s):")
            lines.extend(f"  - {p}" for p in self._problems)
        else:
            lines.append("OK: the plan fits.")
        return "\n".join(lines) + "\n"


def plan_capacity(plan: ClusterPlan) -> CapacityReport:
    """Estimate every pool of ``plan`` and collect the problems of a plan that cannot work.

    Never raises for an impossible plan: read ``report.problems()`` or call
    ``report.check()``.
    """
    problems = Problems(where="capacity plan")
    estimates: list[PoolEstimate] = []
    nodes_needed: dict[str, int] = {}
    users_by_size: dict[str, list[str]] = {}
    checkpoints: dict[str, float] = {}
    seen_names: set[str] = set()

    for index, pool in enumerate(plan.pools):
        where = f"pools[{pool.name or index}]"
        if pool.name in seen_names:
            problems.add(f"{where}.name", pool.name, "must be unique among the pools")
        seen_names.add(pool.name)
        estimate, size = _estimate_pool(pool, where, plan, problems)
        estimates.append(estimate)
        count = pool.replicas if pool.max_replicas is None else pool.max_replicas
        if size is not None and isinstance(count, int):
            nodes_needed[size.slug] = nodes_needed.get(size.slug, 0) + count
            users_by_size.setdefault(size.slug, []).append(
                f"{pool.name} ({count}{' at most' if pool.max_replicas is not None else ''})"
            )
        if estimate.checkpoint_gb is not None:
            checkpoints[pool.model_id] = max(
                checkpoints.get(pool.model_id, 0.0), estimate.checkpoint_gb
            )

    available = _nodes_available(plan, nodes_needed, problems)
    for slug in sorted(nodes_needed):
        need, have = nodes_needed[slug], available.get(slug)
        if have is not None and need > have:
            hard = [p for p in plan.pools if _slug_of(p.gpu_size) == slug]
            why = (
                "hard anti-affinity places one replica per node"
                if all(p.anti_affinity_required for p in hard)
                else "each replica takes every GPU of its node"
            )
            field_name = (
                "gpu_node_count"
                if isinstance(plan.gpu_node_count, int)
                else f"gpu_node_count[{slug}]"
            )
            problems.add(
                field_name,
                have,
                f"{slug} needs at least {need} GPU nodes for "
                f"{', '.join(users_by_size[slug])} replicas ({why}): raise gpu_node_count "
                f"to {need} or lower replicas",
            )

    compile_caches = COMPILE_CACHE_GIB * len(plan.pools) if plan.compile_cache else 0.0
    nfs_needed = (sum(checkpoints.values()) + compile_caches) * (1 + NFS_SLACK)
    if check_int_range(problems, "nfs_size_gb", plan.nfs_size_gb, 1) and (
        nfs_needed > plan.nfs_size_gb
    ):
        problems.add(
            "nfs_size_gb",
            plan.nfs_size_gb,
            f"the models ({', '.join(sorted(checkpoints))})"
            + (f" and {len(plan.pools)} compile cache(s)" if compile_caches else "")
            + f" need about {nfs_needed:.1f} GiB "
            f"on the share including {NFS_SLACK:.0%} slack: raise nfs_size_gb to at least "
            f"{math.ceil(nfs_needed)}",
        )

    return CapacityReport(
        pools=tuple(estimates),
        gpu_nodes_needed=MappingProxyType(dict(sorted(nodes_needed.items()))),
        gpu_nodes_available=MappingProxyType(dict(sorted(available.items()))),
        nfs_needed_gb=nfs_needed,
        compile_cache_gb=compile_caches,
        nfs_size_gb=plan.nfs_size_gb,
        _problems=tuple(problems.items),
    )


def _estimate_pool(
    pool: PoolPlan, where: str, plan: ClusterPlan, problems: Problems
) -> tuple[PoolEstimate, GpuSize | None]:
    size: GpuSize | None
    if isinstance(pool.gpu_size, GpuSize):
        size = pool.gpu_size
    else:
        size = GPU_SIZES.get(pool.gpu_size)
        if size is None:
            problems.items.append(unknown_size_problem(f"{where}.gpu_size", pool.gpu_size))
    if check_int_range(problems, f"{where}.replicas", pool.replicas, 1) and (
        pool.max_replicas is not None
    ):
        check_int_range(problems, f"{where}.max_replicas", pool.max_replicas, pool.replicas)
    lora_ok = pool.max_loras is None
    if pool.max_loras is not None:
        lora_ok = check_int_range(problems, f"{where}.max_loras", pool.max_loras, 1)
        lora_ok &= problems.check(
            pool.max_lora_rank in VLLM_MAX_LORA_RANKS,
            f"{where}.max_lora_rank",
            pool.max_lora_rank,
            f"must be one of vLLM v0.18's --max-lora-rank values: "
            f"{', '.join(map(str, VLLM_MAX_LORA_RANKS))}",
        )
    util = pool.gpu_memory_utilization
    util_ok = problems.check(
        isinstance(util, int | float) and not isinstance(util, bool) and 0 < util <= 1,
        f"{where}.gpu_memory_utilization",
        util,
        "must be a fraction greater than 0 and at most 1, e.g. 0.9",
    )

    arch = pool.architecture or lookup_architecture(pool.model_id)
    source = "prop"
    params = pool.parameters_b
    if params is None and arch is not None:
        params = arch.total_parameters() / 1e9
        source = "architecture"
    elif params is None:
        params = lookup_parameters_b(pool.model_id)
        source = "table" if params is not None else "unknown"
        if params is None:
            problems.add(
                f"{where}.model_config_json",
                None,
                f"model {pool.model_id!r} is not in the built-in table "
                f"({', '.join(sorted(MODEL_ARCHITECTURES))}): pass the path of its "
                "config.json (model_config_json) for a KV-cache plan, or at least "
                "parameters_b, its parameter count in billions (weights only)",
            )
    elif not (isinstance(params, int | float) and not isinstance(params, bool) and params > 0):
        problems.add(f"{where}.parameters_b", params, "must be a number of billions above 0")
        params = None

    mem_bpp: float | None
    lin_bpp: float | None
    try:
        mem_bpp = memory_bytes_per_parameter(pool.model_id, pool.quantization)
        lin_bpp = linear_bytes(pool.model_id, pool.quantization)
    except ValidationError as err:
        problems.extend(Problem(f"{where}.{p.field}", p.value, p.expected) for p in err.problems)
        mem_bpp = lin_bpp = None
    kv_dtype = (pool.kv_cache_dtype or "auto").strip().lower()
    kv_ok = problems.check(
        kv_dtype in KV_CACHE_DTYPE_BYTES,
        f"{where}.kv_cache_dtype",
        pool.kv_cache_dtype,
        f"must be one of vLLM's --kv-cache-dtype values: {', '.join(KV_CACHE_DTYPE_BYTES)}",
    )
    max_len = pool.max_model_len
    len_ok = max_len is None or problems.check(
        isinstance(max_len, int)
        and not isinstance(max_len, bool)
        and (max_len == -1 or max_len >= 1),
        f"{where}.max_model_len",
        max_len,
        "must be a whole number of tokens (at least 1), or -1 for vLLM's auto-fit",
    )

    tp = size.tensor_parallel_size if size is not None else None
    vllm: VllmMemoryPlan | None = None
    if (
        arch is not None
        and size is not None
        and tp is not None
        and lin_bpp is not None
        and util_ok
        and kv_ok
        and len_ok
    ):
        tokens_default, seqs_default = batch_defaults(size.reported_gpu_memory_gb, size.gpu_model)
        settings = _Settings(
            arch=arch,
            tp=tp,
            util=util,
            lin_bpp=lin_bpp,
            kv_dtype=kv_dtype,
            max_len=max_len,
            batched=pool.max_num_batched_tokens or tokens_default,
            seqs=pool.max_num_seqs or seqs_default,
            lora_gib=arch.lora_gib_per_gpu(
                max_loras=pool.max_loras,
                max_lora_rank=pool.max_lora_rank,
                tensor_parallel_size=tp,
            )
            if pool.max_loras and lora_ok
            else 0.0,
        )
        vllm = settings.plan(size)
        if not vllm.starts:
            problems.add(
                f"{where}.gpu_size",
                size.slug,
                f"vLLM would refuse to start {pool.model_id} "
                f"({pool.quantization or 'unquantized'}, kv_cache_dtype {kv_dtype}) on "
                f"{size.slug} at --gpu-memory-utilization {util}: {vllm.refusal}. "
                f"Fixes: {'; '.join(settings.fixes(size, vllm)) or 'none found'}",
            )

    weights = (
        vllm.weights_gib * tp
        if vllm is not None and tp is not None
        else weights_gb(params, mem_bpp)
        if params is not None and mem_bpp is not None
        else None
    )
    disk = (
        _checkpoint_gb(arch, pool.model_id, pool.quantization)
        if arch is not None
        else weights_gb(params, checkpoint_bytes_per_parameter(pool.model_id, pool.quantization))
        if params is not None
        else None
    )
    per_replica = size.reported_gpu_memory_gb * size.gpu_count if size is not None else None
    usable = per_replica * util if per_replica is not None and util_ok else None
    headroom = usable - weights if usable is not None and weights is not None else None
    headroom_pct = 100.0 * headroom / usable if headroom is not None and usable else None

    if (
        vllm is None
        and headroom is not None
        and weights is not None
        and usable is not None
        and size is not None
        and headroom < MIN_KV_HEADROOM_GB
    ):
        fits = [
            s.slug
            for s in GPU_SIZES.values()
            if s.reported_gpu_memory_gb * s.gpu_count * util - weights >= MIN_KV_HEADROOM_GB
        ]
        suggestion = f" (sizes that would hold them: {', '.join(sorted(fits))})" if fits else ""
        problems.add(
            f"{where}.gpu_size",
            size.slug,
            f"{pool.model_id} needs about {weights:.1f} GiB of weights "
            f"({pool.quantization or 'unquantized'}) but {size.slug} gives "
            f"{usable:.1f} GiB usable at --gpu-memory-utilization {util}, leaving "
            f"{max(headroom, 0):.1f} GiB (under {MIN_KV_HEADROOM_GB:g}) for the KV cache: "
            "quantize (e.g. fp8), pick a bigger GPU size, or use a multi-GPU size for tensor "
            f"parallelism{suggestion}",
        )

    load = (
        choose_load_strategy(
            checkpoint_gib=disk,
            host_ram_gib=size.host_ram_gb if size is not None else None,
            tensor_parallel_size=tp,
            shm_gib=pool.shm_gb,
            shard_gib=SHARD_GB,
            process_baseline_gib=PROCESS_BASELINE_GB,
        )
        if tp is not None and disk is not None
        else None
    )
    host_needed = (
        load.host_ram_needed_gib
        if load is not None
        else tp * (2 * SHARD_GB + PROCESS_BASELINE_GB) + pool.shm_gb
        if tp is not None
        else None
    )
    if size is not None and size.host_ram_gb is not None and host_needed is not None:
        problems.check(
            host_needed <= size.host_ram_gb,
            f"{where}.gpu_size",
            size.slug,
            f"loading needs ~{host_needed:.0f} GiB of host RAM (eager safetensors loading "
            f"holds a ~{SHARD_GB:.1f} GiB shard twice in each of {tp} worker(s), plus "
            f"/dev/shm) but the node has {size.host_ram_gb:.0f} GiB: pick a larger size",
        )
    top = pool.replicas if pool.max_replicas is None else pool.max_replicas
    bottom = pool.replicas if pool.min_replicas is None else pool.min_replicas
    cost = (
        (size.price_per_hour_usd * bottom, size.price_per_hour_usd * top)
        if size is not None
        and size.price_per_hour_usd is not None
        and isinstance(bottom, int)
        and isinstance(top, int)
        else None
    )

    readable = (
        disk is not None
        and isinstance(plan.nfs_read_mb_per_s, int | float)
        and plan.nfs_read_mb_per_s > 0
        and plan.startup_base_seconds >= 0
    )
    budget = (
        cold_start_budget(
            disk, plan.nfs_read_mb_per_s, figures=plan.cold_start, compile_cache=plan.compile_cache
        )
        if readable and disk is not None
        else None
    )
    # The probe window covers a cold start from container start (load, cold compile, engine
    # start), never less than the seed's window plus the load.
    window = (
        max(
            startup_window_seconds(disk, plan.nfs_read_mb_per_s, plan.startup_base_seconds),
            budget.startup_window_seconds,
        )
        if budget is not None and disk is not None
        else None
    )
    estimate = PoolEstimate(
        name=pool.name,
        model_id=pool.model_id,
        parameters_b=params,
        parameters_source=source,
        quantization=(pool.quantization or "").strip().lower(),
        gpu_size=size.slug if size is not None else str(pool.gpu_size),
        gpu_count=size.gpu_count if size is not None else None,
        tensor_parallel_size=size.tensor_parallel_size if size is not None else None,
        replicas=pool.replicas,
        gpu_memory_utilization=util,
        weights_gb=weights,
        gpu_memory_per_replica_gb=per_replica,
        usable_gb=usable,
        kv_headroom_gb=headroom,
        kv_headroom_pct=headroom_pct,
        checkpoint_gb=disk,
        startup_window_seconds=window,
        cold_start=budget,
        max_replicas=pool.max_replicas,
        architecture_source=arch.source if arch is not None else None,
        vllm=vllm,
        kv_cache_dtype=kv_dtype,
        host_ram_gb=size.host_ram_gb if size is not None else None,
        host_ram_needed_gb=host_needed,
        load_strategy=load.strategy if load is not None else None,
        load_strategy_reason=load.reason if load is not None else None,
        cost_per_hour_usd=cost,
        min_replicas=pool.min_replicas,
    )
    return estimate, size


@dataclass(frozen=True, kw_only=True)
class _Settings:
    """One replica's vLLM settings, to re-plan with one thing changed (the fixes)."""

    arch: ModelArchitecture
    tp: int
    util: float
    lin_bpp: float
    kv_dtype: str
    max_len: int | None
    batched: int
    seqs: int
    lora_gib: float = 0.0

    def plan(self, size: GpuSize, **changes: Any) -> VllmMemoryPlan:
        s = dataclasses.replace(self, **changes) if changes else self
        return plan_vllm_memory(
            s.arch,
            gpu_memory_gib=size.reported_gpu_memory_gb,
            tensor_parallel_size=size.tensor_parallel_size,
            gpu_memory_utilization=s.util,
            linear_bytes_per_param=s.lin_bpp,
            kv_dtype_bytes=KV_CACHE_DTYPE_BYTES[s.kv_dtype],
            max_model_len=s.max_len,
            max_num_batched_tokens=s.batched,
            max_num_seqs=s.seqs,
            lora_gib=s.lora_gib,
        )

    def fixes(self, size: GpuSize, refused: VllmMemoryPlan) -> list[str]:
        """Changes that make vLLM start, each with its number, cheapest first."""
        out: list[str] = []
        if refused.max_model_len > refused.derived_max_len:
            return [f"max_model_len: {refused.derived_max_len} (the model's maximum) or less"]
        if refused.estimated_max_len > 0:
            out.append(f"max_model_len: {_round_len(refused.estimated_max_len)}")
        if self.kv_dtype not in ("fp8", "fp8_e4m3", "fp8_e5m2"):
            fp8 = self.plan(size, kv_dtype="fp8")
            if fp8.starts:
                out.append("kv_cache_dtype: fp8")
            elif fp8.estimated_max_len > 0:
                out.append(
                    f"kv_cache_dtype: fp8 with max_model_len: {_round_len(fp8.estimated_max_len)}"
                )
        for step in range(1, 100):
            util = round(self.util + step / 100, 2)
            if util > 0.95:
                break
            if self.plan(size, util=util).starts:
                out.append(f"gpu_memory_utilization: {util}")
                break
        if not any(f.startswith("gpu_memory_utilization") for f in out):
            combo = self.plan(size, util=0.95, kv_dtype="fp8", max_len=None)
            if combo.estimated_max_len > 0 and combo.available_kv_gib > 0:
                out.append(
                    "gpu_memory_utilization: 0.95 with kv_cache_dtype: fp8 and max_model_len: "
                    f"{_round_len(combo.estimated_max_len)}"
                )
        bigger = sorted(
            (
                (other.price_per_hour_usd or math.inf, other.slug)
                for other in GPU_SIZES.values()
                if other.slug != size.slug
                and other.vendor == size.vendor
                and self.plan(other).starts
            ),
        )
        if bigger:
            out.append(
                "gpu_size: "
                + ", ".join(
                    f"{slug}" + (f" (${price:.2f}/h)" if price != math.inf else "")
                    for price, slug in bigger
                )
            )
        return out


def _round_len(length: int) -> int:
    """A round max length at or below ``length`` (a multiple of 1024 from 4096 up)."""
    return length // 1024 * 1024 if length >= 4096 else length // 16 * 16 or length


def _checkpoint_gb(arch: ModelArchitecture, model_id: str, quantization: str | None) -> float:
    """The checkpoint's size on disk, GiB (what NFS stores and the pod reads)."""
    from vllm_doks.model_arch import checkpoint_linear_bytes, weights_gib_per_gpu

    return weights_gib_per_gpu(arch, 1, checkpoint_linear_bytes(model_id, quantization))


def _per_gpu(value: float | None, pool: PoolEstimate) -> float | None:
    return value / pool.gpu_count if value is not None and pool.gpu_count else value


def _pool_dict(p: PoolEstimate) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in vars(p).items():
        if key in ("max_replicas", "min_replicas") and value is None:
            continue
        if key == "cold_start":
            if value is not None:
                out["cold_start"] = vars(value) | {
                    "cold_seconds": value.cold_seconds,
                    "restart_seconds": value.restart_seconds,
                    "startup_window_seconds": value.startup_window_seconds,
                }
            continue
        if key == "vllm":
            if value is not None:
                # LoRA only when the pool serves adapters: other reports stay as they were.
                plan = {k: v for k, v in vars(value).items() if k != "lora_gib" or v}
                out["kv"] = {k: _jsonable(v) for k, v in plan.items()} | {
                    "verdict": "start" if value.starts else "refuse"
                }
            continue
        if key == "cost_per_hour_usd":
            if value is not None:
                low, high = value
                out["cost"] = {
                    "per_hour_usd": {"min_replicas": round(low, 2), "max_replicas": round(high, 2)},
                    "per_month_usd": {
                        "min_replicas": round(low * HOURS_PER_MONTH, 2),
                        "max_replicas": round(high * HOURS_PER_MONTH, 2),
                    },
                    "hours_per_month": HOURS_PER_MONTH,
                }
            continue
        out[key] = _jsonable(value)
    return out


def _slug_of(gpu_size: str | GpuSize) -> str:
    return gpu_size.slug if isinstance(gpu_size, GpuSize) else gpu_size


def _nodes_available(
    plan: ClusterPlan, needed: Mapping[str, int], problems: Problems
) -> dict[str, int | None]:
    counts = plan.gpu_node_count
    if isinstance(counts, Mapping):
        available: dict[str, int | None] = {}
        for slug in needed:
            value = counts.get(slug)
            if value is None:
                problems.add(
                    f"gpu_node_count[{slug}]",
                    None,
                    f"must give the GPU nodes of size {slug}, which a pool uses",
                )
                available[slug] = None
            elif check_int_range(problems, f"gpu_node_count[{slug}]", value, 0):
                available[slug] = value
            else:
                available[slug] = None
        return available
    if not check_int_range(problems, "gpu_node_count", counts, 0):
        return dict.fromkeys(needed)
    if len(needed) > 1:
        problems.add(
            "gpu_node_count",
            counts,
            f"pools use several GPU sizes ({', '.join(sorted(needed))}): give a mapping of "
            "GPU nodes per size slug",
        )
        return dict.fromkeys(needed)
    return dict.fromkeys(needed, counts)


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "?" if value is None else f"{value:.{digits}f}{unit}"


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, GpuSize):
        return value.slug
    return repr(value)


def _round_floats(values: Mapping[str, object]) -> dict[str, object]:
    return {k: _jsonable(v) for k, v in values.items()}
