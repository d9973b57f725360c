"""Weights you can trust: the pinned revision of a model and how its files are checked.

Pure Python, shared by the config checks and the Kubernetes constructs. The download itself
(``scripts/fetch_model.py``) verifies every file against the hashes the Hugging Face Hub lists
for the pinned commit before the completion marker is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vllm_doks import contracts
from vllm_doks.validation import Problems

#: A git commit id as the Hugging Face Hub reports it (``ModelInfo.sha``): 40 lowercase hex.
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def check_revision(problems: Problems, field_name: str, value: object) -> bool:
    """Record a problem unless ``value`` is a full commit id (a branch or tag can move, so
    it would not pin anything)."""
    return problems.check(
        isinstance(value, str) and bool(_COMMIT.match(value)),
        field_name,
        value,
        "must be a full 40-hex-digit commit id of the model repository (e.g. from the hub's "
        "'Files and versions' page or `huggingface-cli download --revision`); branch and tag "
        "names move and pin nothing",
    )


@dataclass(frozen=True)
class LoadStrategy:
    """vLLM's ``--safetensors-load-strategy`` for one replica, why, and the host RAM it needs."""

    strategy: str
    reason: str
    host_ram_needed_gib: float
    """Worker processes, the files being loaded and ``/dev/shm``; with ``prefetch`` also the
    page cache the whole checkpoint needs to be read once."""


def choose_load_strategy(
    *,
    checkpoint_gib: float,
    host_ram_gib: float | None,
    tensor_parallel_size: int,
    shm_gib: float,
    shard_gib: float,
    process_baseline_gib: float,
) -> LoadStrategy:
    """``prefetch`` when the node's RAM holds the whole checkpoint in the page cache next to the
    workers, else ``eager``.

    From the NFS share both beat ``lazy`` (vLLM's default memory-mapping, whose page faults
    become small random NFS reads): ``eager`` reads each file once, sequentially, but holds a
    file's bytes and its tensors at once in every worker (~2 shards each); ``prefetch`` reads
    the files sequentially with 8 threads per worker while the workers load, and the workers
    then read from the page cache, holding one tensor at a time. But if the page cache cannot
    hold the checkpoint, prefetched pages are evicted before the workers reach them and every
    byte is read twice, so then ``eager`` is the better choice. Unknown host RAM: ``eager``
    (the contract module's NFS default).
    """
    workers = tensor_parallel_size * process_baseline_gib + shm_gib
    eager_needs = tensor_parallel_size * 2 * shard_gib + workers
    prefetch_needs = tensor_parallel_size * shard_gib + workers + checkpoint_gib
    if host_ram_gib is None:
        return LoadStrategy(
            contracts.VLLM_SAFETENSORS_LOAD_STRATEGY_NFS,
            "the node's RAM is unknown, so the checkpoint may not fit in its page cache: "
            "eager reads each file once",
            eager_needs,
        )
    if prefetch_needs <= host_ram_gib:
        return LoadStrategy(
            contracts.VLLM_SAFETENSORS_LOAD_STRATEGY_PREFETCH,
            f"the {checkpoint_gib:.0f} GiB checkpoint fits in the page cache next to "
            f"{tensor_parallel_size} worker(s) ({prefetch_needs:.0f} of {host_ram_gib:.0f} GiB): "
            "prefetch reads it sequentially while the workers load from memory",
            prefetch_needs,
        )
    return LoadStrategy(
        contracts.VLLM_SAFETENSORS_LOAD_STRATEGY_NFS,
        f"the {checkpoint_gib:.0f} GiB checkpoint does not fit in the page cache "
        f"({prefetch_needs:.0f} GiB needed, {host_ram_gib:.0f} GiB on the node): prefetched "
        "pages would be evicted and read twice, eager reads each file once",
        eager_needs,
    )
