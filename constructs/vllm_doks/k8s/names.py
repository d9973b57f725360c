"""Names, labels and well-known keys shared by the Kubernetes constructs.

The defaults reproduce the seed's object names exactly (``vllm``, ``vllm-models-pvc``,
``model-download``, ...) so its verification commands work unchanged against our output.
"""

from __future__ import annotations

import hashlib
import re

from vllm_doks import contracts
from vllm_doks.gpu_catalog import CUDA_VLLM_IMAGE, RESOURCE_NAMES
from vllm_doks.validation import Problems

#: Namespace every namespaced object goes to unless props say otherwise (the seed's).
DEFAULT_NAMESPACE = "vllm"

# External contracts (images, vLLM's quantization methods, DOKS labels) live in
# vllm_doks.contracts with their sources; these names are kept for existing imports.

#: Pinned vLLM image, never ``latest``: the GPU catalogue's CUDA image (the default H100
#: size's); AMD sizes default to the ROCm build of the same release
#: (:data:`vllm_doks.gpu_catalog.ROCM_VLLM_IMAGE`).
DEFAULT_VLLM_IMAGE = CUDA_VLLM_IMAGE

#: vLLM's ``--quantization`` methods (:data:`vllm_doks.contracts.VLLM_QUANTIZATION_METHODS`).
VLLM_QUANTIZATION_METHODS: tuple[str, ...] = contracts.VLLM_QUANTIZATION_METHODS
#: Of those, the deprecated ones, refused without ``--allow-deprecated-quantization``.
VLLM_DEPRECATED_QUANTIZATION_METHODS: frozenset[str] = (
    contracts.VLLM_DEPRECATED_QUANTIZATION_METHODS
)

#: Extended resource the NVIDIA device plugin advertises on DOKS GPU nodes (the default
#: size's); AMD nodes advertise ``amd.com/gpu`` (see :mod:`vllm_doks.gpu_catalog`).
GPU_RESOURCE = RESOURCE_NAMES["nvidia"]

#: Node label DOKS puts on every node with the name of its node pool.
NODE_POOL_LABEL = contracts.DOKS_NODE_POOL_LABEL

#: Spreading replicas over this key puts at most one per node.
HOSTNAME_TOPOLOGY_KEY = contracts.HOSTNAME_TOPOLOGY_KEY

#: Written last by the download Job, only after every file matched the hub's hashes: its
#: presence means the model directory is complete and verified.
COMPLETION_MARKER = ".vllm-doks-verified"

#: uid/gid every container runs as (the seed's choice; the NFS share must let it write).
NON_ROOT_ID = 1000

# Hugging Face repo ids: an optional owner and a name, of letters, digits, '-', '_', '.'.
_MODEL_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def model_name_from_id(model_id: str) -> str:
    """The model's name: the last path segment of its Hugging Face id.

    ``"Qwen/Qwen2.5-0.5B-Instruct"`` -> ``"Qwen2.5-0.5B-Instruct"``. The seed derives it with
    ``element(split("/", model_id), 1)``; for the ``owner/name`` ids Hugging Face uses the two
    agree, and an id without an owner is its own name. The name is the model's directory on
    the share and the name clients send as ``"model"``.
    """
    return model_id.rstrip("/").rsplit("/", 1)[-1]


def dns_label(text: str, max_len: int = 63) -> str:
    """``text`` made into a DNS-1123 label of at most ``max_len`` characters.

    Lowercased, runs of other characters become '-'. When that has to be shortened, a short
    hash of the original text is appended so that two long names cannot collide.
    """
    label = _NOT_DNS.sub("-", text.lower()).strip("-") or "x"
    if len(label) <= max_len:
        return label
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{label[: max_len - 9].rstrip('-')}-{digest}"


def check_model_id(problems: Problems, field_name: str, value: object) -> bool:
    ok = (
        isinstance(value, str)
        and len(value) <= 200
        and bool(_MODEL_ID.match(value))
        and model_name_from_id(value) not in (".", "..")
    )
    return problems.check(
        ok,
        field_name,
        value,
        "must be a Hugging Face model id such as 'Qwen/Qwen2.5-0.5B-Instruct' "
        "(letters, digits, '-', '_', '.', with at most one '/')",
    )
