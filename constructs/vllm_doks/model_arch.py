"""What vLLM v0.18 does with a model's GPU memory, from the model's architecture.

Pure Python (no cdk8s/cdktf, no network): a :class:`ModelArchitecture` (built-in table of
well-known models, or a model's ``config.json``) in; weights per GPU, KV-cache bytes per
token, available KV memory, KV tokens and vLLM's start/refuse verdict out
(:func:`plan_vllm_memory`).

External facts, each with its source (the lead may move them to ``contracts.py``):

* vLLM v0.18.0 (PyPI wheel ``vllm-0.18.0-cp38-abi3-manylinux_2_31_x86_64.whl``):

  - ``vllm/v1/worker/utils.py`` ``request_memory``: requested = ``ceil(total_memory x
    gpu_memory_utilization)`` with ``total_memory`` as CUDA reports it
    (``torch.cuda.mem_get_info``), not the marketing figure.
  - ``vllm/v1/worker/gpu_worker.py`` ``determine_available_memory``: available KV memory =
    requested - (weights + torch activation peak of ``profile_run`` + non-torch increase).
    CUDA-graph memory is only subtracted with ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1``
    (default off in v0.18, "will become the default in v0.19"), so it is not counted here.
  - ``vllm/v1/core/kv_cache_utils.py`` ``_check_enough_kv_cache_memory``: available <= 0 ->
    "No available memory for the cache blocks"; one ``max_model_len`` request needing more
    than the available memory -> "To serve at least one request with the models's max seq
    len (...)" with "the estimated maximum model length is N"; ``get_num_blocks`` =
    available // page_size // layers, "GPU KV cache size" = blocks x block size (16);
    ``_auto_fit_max_model_len`` for ``--max-model-len -1``.
  - ``vllm/config/model.py`` ``_get_and_verify_max_len``: default max length is the
    config's ``max_position_embeddings`` times the rope-scaling factor except for rope types
    ``su``/``longrope``/``llama3`` (yarn: ``original_max_position_embeddings x factor``); a
    user length above it is a ValueError.
  - ``vllm/model_executor/layers/quantization/fp8.py`` ``Fp8Config.get_quant_method``:
    only ``LinearBase`` (and MoE) layers are quantized; ``VocabParallelEmbedding``
    (``embed_tokens``) and ``ParallelLMHead`` (``lm_head``) keep the model dtype.
  - ``vllm/engine/arg_utils.py`` ``get_batch_defaults``: for the OpenAI API server,
    ``max_num_batched_tokens`` 8192 and ``max_num_seqs`` 1024 on GPUs with >= 70 GiB that
    are not A100 (H100, H200, MI300X), else 2048 and 256.
  - ``vllm/model_executor/model_loader/weight_utils.py``: ``--safetensors-load-strategy
    eager`` does ``load(f.read())`` per shard: a whole shard's bytes plus its tensors in
    host RAM at once, in every tensor-parallel worker.

* Architectures: each model's ``config.json`` on Hugging Face (URL per row of
  :data:`MODEL_ARCHITECTURES`).

The profiling overhead (activation peak + non-torch memory) is an ESTIMATE, see
:func:`profiling_overhead_gib`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vllm_doks.contracts import VLLM_KV_CACHE_DTYPES, VLLM_MAX_LORA_RANKS
from vllm_doks.validation import Problem, ValidationError

GIB = float(2**30)
#: vLLM's default KV-cache block size (tokens per block) on CUDA.
BLOCK_SIZE = 16
#: Bytes of the model dtype (bf16/fp16) for everything vLLM keeps unquantized.
MODEL_DTYPE_BYTES = 2

_HF = "https://huggingface.co/{}/blob/main/config.json"


@dataclass(frozen=True, kw_only=True)
class ModelArchitecture:
    """The numbers of a decoder-only transformer that decide its GPU memory in vLLM."""

    layers: int
    """``num_hidden_layers``."""
    attention_heads: int
    """``num_attention_heads``."""
    kv_heads: int
    """``num_key_value_heads`` (grouped-query attention); equal to the heads without GQA."""
    head_dim: int
    """``head_dim``, else ``hidden_size // num_attention_heads``."""
    hidden_size: int
    intermediate_size: int
    """MLP width of a dense layer (``intermediate_size``)."""
    vocab_size: int
    tied_embeddings: bool
    """``tie_word_embeddings``: ``lm_head`` shares ``embed_tokens`` (no second matrix)."""
    max_position_embeddings: int
    """vLLM's default ``--max-model-len`` (after rope scaling, see :func:`derived_max_len`)."""
    attention_bias: bool = False
    """q/k/v projections carry biases (Qwen2 family)."""
    sliding_window: int | None = None
    """Sliding-window size when every layer uses it (recorded; the planner treats layers as
    full attention, which is conservative)."""
    kv_lora_rank: int | None = None
    """MLA (DeepSeek V2/V3): the compressed KV width; the cache holds ``kv_lora_rank +
    qk_rope_head_dim`` values per token and layer, not split by tensor parallelism."""
    qk_rope_head_dim: int = 0
    num_experts: int = 0
    """Routed experts per MoE layer (0: dense)."""
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    source: str = ""
    """Where the numbers come from (a ``config.json`` URL or path)."""

    def kv_bytes_per_token(self, tensor_parallel_size: int, kv_dtype_bytes: float) -> float:
        """KV-cache bytes one token takes on one GPU: ``2 x layers x max(1, kv_heads // tp)
        x head_dim x dtype bytes`` (MLA: ``layers x (kv_lora_rank + rope dim) x bytes``)."""
        if self.kv_lora_rank:
            return self.layers * (self.kv_lora_rank + self.qk_rope_head_dim) * kv_dtype_bytes
        per_gpu_heads = max(1, self.kv_heads // tensor_parallel_size)
        return 2 * self.layers * per_gpu_heads * self.head_dim * kv_dtype_bytes

    def linear_parameters_per_gpu(self, tensor_parallel_size: int) -> float:
        """Parameters of the Linear layers (what ``--quantization`` quantizes) on one GPU."""
        tp = tensor_parallel_size
        h, d = self.hidden_size, self.head_dim
        q = h * self.attention_heads * d / tp
        # K/V heads are replicated when there are fewer of them than GPUs.
        kv = 2 * h * max(1, self.kv_heads // tp) * d
        o = self.attention_heads * d * h / tp
        if self.num_experts:
            mlp = (
                self.num_experts * 3 * h * self.moe_intermediate_size
                + 3 * h * self.shared_expert_intermediate_size
            ) / tp + h * self.num_experts
        else:
            mlp = 3 * h * self.intermediate_size / tp
        return self.layers * (q + kv + o + mlp)

    def unquantized_parameters_per_gpu(self, tensor_parallel_size: int) -> float:
        """Parameters that stay in the model dtype on one GPU: ``embed_tokens`` and
        ``lm_head`` (vocabulary-parallel, split by TP), norms and attention biases."""
        tp = tensor_parallel_size
        embeddings = self.vocab_size * self.hidden_size / tp
        lm_head = 0 if self.tied_embeddings else embeddings
        norms = (2 * self.layers + 1) * self.hidden_size
        bias = (
            self.layers
            * (self.attention_heads / tp + 2 * max(1, self.kv_heads // tp))
            * self.head_dim
            if self.attention_bias
            else 0
        )
        return embeddings + lm_head + norms + bias

    def lora_elements_per_slot_and_rank(self, tensor_parallel_size: int) -> float:
        """Elements vLLM v0.18 allocates on one GPU per LoRA slot and unit of rank.

        With ``--enable-lora`` vLLM wraps every Linear layer in a LoRA layer that holds
        ``max_loras`` stacked A (``rank x input``) and B (``output x rank``) matrices in the
        model dtype, allocated while the model loads (``create_lora_weights`` in
        ``vllm/lora/layers/base_linear.py`` and ``column_parallel_linear.py``, called from
        ``load_lora_model`` inside ``GpuModelRunner.load_model``'s memory measurement, so
        they count as model memory). Column-parallel layers (q/k/v, gate/up) split their
        output by tensor parallelism, row-parallel ones (o, down) their input. The
        vocabulary matrices (``embed_tokens`` and ``lm_head``) are counted whole, whether or
        not the model's vLLM class wraps them: an upper bound. MoE experts: each expert's
        gate/up/down, the same way (an estimate)."""
        tp = tensor_parallel_size
        h, d = self.hidden_size, self.head_dim
        q_out = self.attention_heads * d / tp
        kv_out = 2 * max(1, self.kv_heads // tp) * d
        qkv = 3 * h + q_out + kv_out  # three A slices of the hidden size; B per slice
        o = q_out + h
        if self.num_experts:
            inter = self.moe_intermediate_size / tp
            mlp = self.num_experts * (2 * h + 2 * inter + inter + h)
        else:
            inter = self.intermediate_size / tp
            mlp = (2 * h + 2 * inter) + (inter + h)  # gate/up (two slices) + down
        vocabulary = 2 * (self.vocab_size + h)
        return self.layers * (qkv + o + mlp) + vocabulary

    def lora_gib_per_gpu(
        self, *, max_loras: int, max_lora_rank: int, tensor_parallel_size: int
    ) -> float:
        """GiB of LoRA buffers on one GPU for ``--max-loras`` and ``--max-lora-rank`` (model
        dtype, see :meth:`lora_elements_per_slot_and_rank`)."""
        elements = self.lora_elements_per_slot_and_rank(tensor_parallel_size)
        return max_loras * max_lora_rank * elements * MODEL_DTYPE_BYTES / GIB

    def total_parameters(self) -> float:
        """All parameters (TP 1), e.g. ~0.49e9 for Qwen2.5-0.5B."""
        return self.linear_parameters_per_gpu(1) + self.unquantized_parameters_per_gpu(1)


def _arch(model_id: str, **values: Any) -> ModelArchitecture:
    values.setdefault("head_dim", values["hidden_size"] // values["attention_heads"])
    return ModelArchitecture(source=_HF.format(model_id), **values)


def _qwen25(model_id: str, layers: int, heads: int, kv: int, hidden: int, inter: int,
            vocab: int, tied: bool) -> ModelArchitecture:  # fmt: skip
    return _arch(
        model_id, layers=layers, attention_heads=heads, kv_heads=kv, hidden_size=hidden,
        intermediate_size=inter, vocab_size=vocab, tied_embeddings=tied,
        max_position_embeddings=32768, attention_bias=True,
    )  # fmt: skip


def _llama(model_id: str, layers: int, heads: int, kv: int, hidden: int, inter: int,
           vocab: int, max_pos: int) -> ModelArchitecture:  # fmt: skip
    return _arch(
        model_id, layers=layers, attention_heads=heads, kv_heads=kv, hidden_size=hidden,
        intermediate_size=inter, vocab_size=vocab, tied_embeddings=False,
        max_position_embeddings=max_pos,
    )  # fmt: skip


#: Architectures of well-known models, each from its ``config.json`` (``source``). Llama 3.1
#: uses rope type ``llama3``, which vLLM does not scale: its default length is 131072.
MODEL_ARCHITECTURES: Mapping[str, ModelArchitecture] = MappingProxyType(
    {
        a.source.split("https://huggingface.co/")[1].split("/blob/")[0]: a
        for a in (
            _qwen25("Qwen/Qwen2.5-0.5B-Instruct", 24, 14, 2, 896, 4864, 151936, True),
            _qwen25("Qwen/Qwen2.5-1.5B-Instruct", 28, 12, 2, 1536, 8960, 151936, True),
            _qwen25("Qwen/Qwen2.5-3B-Instruct", 36, 16, 2, 2048, 11008, 151936, True),
            _qwen25("Qwen/Qwen2.5-7B-Instruct", 28, 28, 4, 3584, 18944, 152064, False),
            _qwen25("Qwen/Qwen2.5-14B-Instruct", 48, 40, 8, 5120, 13824, 152064, False),
            _qwen25("Qwen/Qwen2.5-32B-Instruct", 64, 40, 8, 5120, 27648, 152064, False),
            _qwen25("Qwen/Qwen2.5-72B-Instruct", 80, 64, 8, 8192, 29568, 152064, False),
            _qwen25("Qwen/Qwen2.5-72B-Instruct-AWQ", 80, 64, 8, 8192, 29568, 152064, False),
            _qwen25("Qwen/Qwen2.5-7B-Instruct-AWQ", 28, 28, 4, 3584, 18944, 152064, False),
            _llama("meta-llama/Llama-3.1-8B-Instruct", 32, 32, 8, 4096, 14336, 128256, 131072),
            _llama("meta-llama/Llama-3.1-70B-Instruct", 80, 64, 8, 8192, 28672, 128256, 131072),
            _llama("meta-llama/Llama-3.3-70B-Instruct", 80, 64, 8, 8192, 28672, 128256, 131072),
            _llama(
                "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
                80,
                64,
                8,
                8192,
                28672,
                128256,
                131072,
            ),
            _llama("mistralai/Mistral-7B-Instruct-v0.3", 32, 32, 8, 4096, 14336, 32768, 32768),
            _llama(
                "mistralai/Mistral-Small-24B-Instruct-2501",
                40,
                32,
                8,
                5120,
                32768,
                131072,
                32768,
            ),
        )
    }
)


def lookup_architecture(model_id: str) -> ModelArchitecture | None:
    """The built-in architecture of ``model_id`` (case-insensitive), or ``None``."""
    for known, arch in MODEL_ARCHITECTURES.items():
        if known.lower() == model_id.lower():
            return arch
    return None


def architecture_from_config(config: Mapping[str, Any], source: str = "") -> ModelArchitecture:
    """A :class:`ModelArchitecture` from a Hugging Face ``config.json`` mapping.

    Multimodal configs with a ``text_config`` use it. Raises :class:`ValidationError` naming
    each missing or invalid key.
    """
    cfg: Mapping[str, Any] = config.get("text_config") or config
    problems: list[Problem] = []

    def need(key: str, *alternatives: str) -> int:
        for k in (key, *alternatives):
            value = cfg.get(k)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        problems.append(
            Problem(f"config.json:{key}", cfg.get(key), "must be a whole number above 0")
        )
        return 1

    layers = need("num_hidden_layers", "n_layer", "num_layers")
    heads = need("num_attention_heads", "n_head")
    hidden = need("hidden_size", "n_embd", "d_model")
    vocab = need("vocab_size")
    kv = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    experts = int(cfg.get("num_experts") or cfg.get("n_routed_experts") or
                  cfg.get("num_local_experts") or 0)  # fmt: skip
    inter = cfg.get("intermediate_size")
    if not isinstance(inter, int) or inter <= 0:
        if experts:
            inter = 0
        else:
            need("intermediate_size")
            inter = 1
    max_pos = derived_max_len(cfg)
    if problems:
        raise ValidationError(problems, f"model config {source or '(mapping)'}")
    window = cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None
    return ModelArchitecture(
        layers=layers,
        attention_heads=heads,
        kv_heads=int(kv),
        head_dim=int(head_dim),
        hidden_size=hidden,
        intermediate_size=int(inter),
        vocab_size=vocab,
        tied_embeddings=bool(cfg.get("tie_word_embeddings", config.get("tie_word_embeddings"))),
        max_position_embeddings=max_pos,
        attention_bias=bool(cfg.get("attention_bias") or cfg.get("model_type") == "qwen2"),
        sliding_window=int(window) if isinstance(window, int) else None,
        kv_lora_rank=cfg.get("kv_lora_rank") or None,
        qk_rope_head_dim=int(cfg.get("qk_rope_head_dim") or 0),
        num_experts=experts,
        moe_intermediate_size=int(cfg.get("moe_intermediate_size") or 0),
        shared_expert_intermediate_size=int(
            cfg.get("shared_expert_intermediate_size")
            or (cfg.get("n_shared_experts") or 0) * (cfg.get("moe_intermediate_size") or 0)
        ),
        source=source,
    )


def load_architecture(path: str | Path) -> ModelArchitecture:
    """Read a model's ``config.json`` from ``path`` (a clear error if unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ValidationError(
            [Problem("model_config_json", str(path), f"must be a readable config.json ({err})")],
            "model config",
        ) from None
    if not isinstance(data, dict):
        raise ValidationError(
            [Problem("model_config_json", str(path), "must hold a JSON object")], "model config"
        )
    return architecture_from_config(data, str(path))


def derived_max_len(cfg: Mapping[str, Any]) -> int:
    """vLLM's default max length from a config (``_get_and_verify_max_len``)."""
    length = float(cfg.get("max_position_embeddings") or cfg.get("n_positions") or 2048)
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters")
    if isinstance(rope, Mapping):
        kind = rope.get("rope_type") or rope.get("type")
        if kind not in ("su", "longrope", "llama3"):
            factor = float(rope.get("factor") or 1.0)
            if kind == "yarn" and rope.get("original_max_position_embeddings"):
                length = float(rope["original_max_position_embeddings"])
            length *= factor
    return int(length)


# --- quantization ---------------------------------------------------------------------

#: 4-bit weights with group size 128: half a byte plus an fp16 scale and a 4-bit zero point
#: per group of 128 (AWQ/GPTQ layout).
INT4_BYTES = 0.5 + 2.5 / 128
_LINEAR_BYTES: Mapping[str, float] = MappingProxyType(
    {
        "": 2.0, "none": 2.0, "auto": 2.0, "bf16": 2.0, "bfloat16": 2.0, "fp16": 2.0,
        "float16": 2.0, "half": 2.0, "fp32": 4.0, "float32": 4.0,
        "fp8": 1.0, "fbgemm_fp8": 1.0, "ptpc_fp8": 1.0, "modelopt": 1.0, "int8": 1.0,
        "w8a8": 1.0, "experts_int8": 1.0, "compressed-tensors": 1.0,
        "awq": INT4_BYTES, "awq_marlin": INT4_BYTES, "gptq": INT4_BYTES,
        "gptq_marlin": INT4_BYTES, "bitsandbytes": INT4_BYTES, "int4": INT4_BYTES,
        "w4a16": INT4_BYTES,
    }
)  # fmt: skip
_FOUR_BIT_ID_MARKERS = ("awq", "gptq", "int4", "w4a16", "4bit", "4-bit", "bnb")
_EIGHT_BIT_ID_MARKERS = ("fp8", "int8", "w8a8", "8bit", "8-bit")
KNOWN_QUANTIZATIONS = tuple(sorted(q for q in _LINEAR_BYTES if q))

#: Bytes per value of each ``--kv-cache-dtype`` choice (the choices themselves are the
#: contract :data:`vllm_doks.contracts.VLLM_KV_CACHE_DTYPES`); ``auto`` is the model dtype.
KV_CACHE_DTYPE_BYTES: Mapping[str, float] = MappingProxyType(
    {d: 1.0 if d.startswith("fp8") else 2.0 for d in VLLM_KV_CACHE_DTYPES}
)


def linear_bytes(model_id: str, quantization: str | None) -> float:
    """Bytes per Linear-layer parameter in GPU memory: the ``--quantization`` method's, or
    the checkpoint's own when none is given (a pre-quantized id, e.g. ``...-FP8``/``-AWQ``).
    Raises :class:`ValidationError` for an unknown method."""
    q = (quantization or "").strip().lower()
    if q not in _LINEAR_BYTES:
        expected = f"must be one of: {', '.join(KNOWN_QUANTIZATIONS)}"
        raise ValidationError([Problem("quantization", quantization, expected)], "linear_bytes")
    if q in ("", "auto"):
        return checkpoint_linear_bytes(model_id, None)
    return _LINEAR_BYTES[q]


def checkpoint_linear_bytes(model_id: str, quantization: str | None) -> float:
    """Bytes per Linear parameter on disk: bf16 unless the id names a pre-quantized
    checkpoint or the method needs one (AWQ/GPTQ). Online ``fp8`` reads a bf16 checkpoint."""
    lowered = model_id.lower()
    q = (quantization or "").strip().lower()
    if any(m in lowered for m in _FOUR_BIT_ID_MARKERS) or _LINEAR_BYTES.get(q) == INT4_BYTES:
        return INT4_BYTES
    if any(m in lowered for m in _EIGHT_BIT_ID_MARKERS):
        return 1.0
    return 2.0


def weights_gib_per_gpu(
    arch: ModelArchitecture, tensor_parallel_size: int, linear_bytes_per_param: float
) -> float:
    """GiB of weights on one GPU: Linear layers at ``linear_bytes_per_param``, embeddings,
    ``lm_head`` and norms at the model dtype (what fp8/AWQ leave unquantized), TP-split."""
    tp = tensor_parallel_size
    return (
        arch.linear_parameters_per_gpu(tp) * linear_bytes_per_param
        + arch.unquantized_parameters_per_gpu(tp) * MODEL_DTYPE_BYTES
    ) / GIB


# --- profiling overhead (estimate) ----------------------------------------------------

#: Non-torch memory vLLM's profiler finds (cuBLAS workspaces, NCCL buffers), GiB: fitted on
#: the ``non_torch_memory`` values published logs print: 0.35 (vllm#10517, TP 1), 0.03
#: (vllm#13882, TP 1), 0.34-0.43 (vllm#16570, TP 4) -> 0.25 at TP 1, 0.4 with tensor
#: parallelism. No sample's KV result was used (tests/fixtures/vllm_startup_logs.yaml).
NON_TORCH_GIB_TP1 = 0.25
NON_TORCH_GIB_TP = 0.4


def batch_defaults(gpu_memory_gib: float, gpu_model: str) -> tuple[int, int]:
    """``(max_num_batched_tokens, max_num_seqs)`` vLLM v0.18's API server picks on a GPU
    (``arg_utils.get_batch_defaults``): 8192/1024 from 70 GiB except A100, else 2048/256."""
    if gpu_memory_gib >= 70 and "a100" not in gpu_model.lower():
        return 8192, 1024
    return 2048, 256


def profiling_overhead_gib(
    arch: ModelArchitecture,
    tensor_parallel_size: int,
    max_num_batched_tokens: int,
    max_num_seqs: int,
) -> float:
    """ESTIMATE of the memory vLLM's profile run takes beyond the weights (GiB per GPU).

    Its shape follows what ``profile_run`` allocates: the MLP's gate/up output and the
    activation (3 x tokens x intermediate/TP values in the model dtype) for
    ``max_num_batched_tokens`` tokens, plus the sampler's fp32 logits and probabilities
    (2 x ``max_num_seqs`` x vocabulary x 4 bytes); plus the non-torch constants above. It is
    not fitted to any sample's KV result: only the non-torch constants come from the logs
    (see :data:`NON_TORCH_GIB_TP1`). On an H100 with the server's defaults it is ~2.5 GiB for
    a 70B model. Checked against published start-up logs in ``tests/core/test_capacity_accuracy.py``
    (V1 engine: KV tokens within 4 %).
    """
    width = arch.intermediate_size or arch.moe_intermediate_size
    mlp = 3 * max_num_batched_tokens * width / tensor_parallel_size * MODEL_DTYPE_BYTES
    sampler = 2 * max_num_seqs * arch.vocab_size * 4
    non_torch = NON_TORCH_GIB_TP1 if tensor_parallel_size == 1 else NON_TORCH_GIB_TP
    return (mlp + sampler) / GIB + non_torch


# --- the verdict ----------------------------------------------------------------------


@dataclass(frozen=True)
class VllmMemoryPlan:
    """What vLLM v0.18 would do with one replica (all numbers per GPU, GiB)."""

    weights_gib: float
    requested_gib: float
    """``total x --gpu-memory-utilization``."""
    overhead_gib: float
    """Profiling estimate (activation peak + non-torch)."""
    available_kv_gib: float
    kv_bytes_per_token: float
    kv_tokens: int
    """vLLM's "GPU KV cache size" (whole blocks)."""
    max_model_len: int
    """The length vLLM would run with (after auto-fit), or the one asked for when refused."""
    derived_max_len: int
    """The model's own maximum (vLLM's default)."""
    max_concurrency: float
    """Full-length sequences the cache holds at once."""
    refusal: str | None
    """vLLM's error, or ``None`` when it starts."""
    estimated_max_len: int
    """Longest length that fits the available KV memory (0: none)."""
    lora_gib: float = 0.0
    """LoRA buffers (``--max-loras`` x ``--max-lora-rank``), part of the model memory."""

    @property
    def starts(self) -> bool:
        return self.refusal is None


def plan_vllm_memory(
    arch: ModelArchitecture,
    *,
    gpu_memory_gib: float,
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
    linear_bytes_per_param: float,
    kv_dtype_bytes: float,
    max_model_len: int | None,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    weights_gib: float | None = None,
    lora_gib: float = 0.0,
) -> VllmMemoryPlan:
    """vLLM's memory arithmetic for one replica. ``max_model_len``: ``None`` = vLLM's default
    (the model's length), ``-1`` = auto-fit, else the length asked for. ``weights_gib``
    overrides the architecture's weights (e.g. an observed value). ``lora_gib``: LoRA
    buffers (:meth:`ModelArchitecture.lora_gib_per_gpu`), which vLLM allocates with the
    weights, so they come out of the KV cache the same way."""
    tp = tensor_parallel_size
    weights = (
        weights_gib
        if weights_gib is not None
        else weights_gib_per_gpu(arch, tp, linear_bytes_per_param)
    )
    requested = math.ceil(gpu_memory_gib * GIB * gpu_memory_utilization) / GIB
    overhead = profiling_overhead_gib(arch, tp, max_num_batched_tokens, max_num_seqs)
    available = requested - weights - lora_gib - overhead
    per_token = arch.kv_bytes_per_token(tp, kv_dtype_bytes)
    page = BLOCK_SIZE * per_token  # one block of every layer
    blocks = max(0, int(available * GIB // page)) if available > 0 else 0
    tokens = blocks * BLOCK_SIZE
    derived = arch.max_position_embeddings
    fit_len = min(derived, tokens)
    refusal: str | None = None
    if max_model_len is not None and max_model_len > derived:
        refusal = (
            f"User-specified max_model_len ({max_model_len}) is greater than the derived "
            f"max_model_len ({derived}) in the model's config.json"
        )
        length = max_model_len
    elif available <= 0:
        refusal = (
            "No available memory for the cache blocks: weights "
            f"{weights:.1f} GiB{f' + LoRA {lora_gib:.1f} GiB' if lora_gib else ''} + "
            f"profiling ~{overhead:.1f} GiB exceed the requested "
            f"{requested:.1f} GiB"
        )
        length = derived if max_model_len in (None, -1) else max_model_len
    elif max_model_len == -1:
        length = fit_len
        if length <= 0:
            refusal = "Cannot auto-fit max_model_len: not enough GPU memory for one token"
    else:
        length = derived if max_model_len is None else max_model_len
        needed = math.ceil(length / BLOCK_SIZE) * page
        if needed > available * GIB:
            refusal = (
                f"To serve at least one request with the model's max seq len ({length}), "
                f"{needed / GIB:.2f} GiB KV cache is needed, which is larger than the available "
                f"KV cache memory ({available:.2f} GiB); the estimated maximum model length is "
                f"{fit_len}"
            )
    return VllmMemoryPlan(
        weights_gib=weights,
        requested_gib=requested,
        overhead_gib=overhead,
        available_kv_gib=available,
        kv_bytes_per_token=per_token,
        kv_tokens=tokens,
        max_model_len=length,
        derived_max_len=derived,
        max_concurrency=tokens / length if length > 0 else 0.0,
        refusal=refusal,
        estimated_max_len=fit_len,
        lora_gib=lora_gib,
    )


def with_max_len(arch: ModelArchitecture, length: int) -> ModelArchitecture:
    """``arch`` with another default max length (for a config whose length differs)."""
    return replace(arch, max_position_embeddings=length)


def rank_holding(rank: int) -> int:
    """The smallest ``--max-lora-rank`` value vLLM v0.18 accepts that holds ``rank`` (its
    largest when none does)."""
    choices = VLLM_MAX_LORA_RANKS
    return next((r for r in choices if r >= rank), choices[-1])
