"""How long a new replica takes from "scale up" to "answers", and how the first answer is
checked.

Pure Python (core layer): used by the capacity plan, the Kubernetes constructs and Stack 2 via
Terraform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vllm_doks import contracts

#: Label of a Job that checks the deployed endpoint (the smoke test). Stack 2 via Terraform
#: applies it after every other object and waits for it to complete; the servers never wait
#: for it (unlike the download Job, which they do wait for).
AFTER_APPLY_LABEL = "vllm-doks.io/after-apply"
#: Label of a canary's smoke-test Job in the output that promotes the canary (instead of
#: ``AFTER_APPLY_LABEL``): Stack 2 via Terraform applies it, and waits for it, before the routes
#: of its namespace, so the promoting route follows the smoke test; servers never wait for it.
PROMOTION_GATE_LABEL = "vllm-doks.io/gates-promotion"

# --- Figures -------------------------------------------------------------------------------

#: The sourced figures live in :mod:`vllm_doks.contracts`.
NODE_PROVISIONING_SECONDS = contracts.NODE_PROVISIONING_SECONDS
VLLM_IMAGE_DOWNLOAD_GIB = contracts.VLLM_IMAGE_DOWNLOAD_GIB
#: Assumed image pull rate including decompression, MiB/s (~1 Gbit/s): a planning figure, not
#: a measurement. DigitalOcean caps regular Droplets at 2 Gbps and Premium CPU ones at 10 Gbps
#: (docs.digitalocean.com/products/droplets/details/limits).
DEFAULT_IMAGE_PULL_MB_PER_S = 125.0
COMPILE_COLD_SECONDS = contracts.COMPILE_COLD_SECONDS
COMPILE_WARM_SECONDS = contracts.COMPILE_WARM_SECONDS
ENGINE_START_SECONDS = contracts.ENGINE_START_SECONDS
#: Share space one pool's compile cache takes (all kept generations), GiB: a planning figure,
#: not a measurement. The cache holds Inductor's generated code, Triton kernels and vLLM's
#: serialized graphs for one configuration; measure ``du -sh <mount>/.vllm-compile-cache/*``.
COMPILE_CACHE_GIB = 2.0


@dataclass(frozen=True, kw_only=True)
class ColdStartFigures:
    """The figures a cold-start budget is built from (defaults: the sourced constants above).
    Override any with what you measure on your cluster."""

    node_provisioning_seconds: int = NODE_PROVISIONING_SECONDS
    """A new GPU node joining the cluster, seconds. Default 900 (cluster-autoscaler's
    ``--max-node-provision-time``)."""
    image_download_gib: float = VLLM_IMAGE_DOWNLOAD_GIB
    """The vLLM image's download size, GiB. Default 12."""
    image_pull_mb_per_s: float = DEFAULT_IMAGE_PULL_MB_PER_S
    """Image pull rate, MiB/s. Default 125 (an assumption)."""
    compile_cold_seconds: int = COMPILE_COLD_SECONDS
    """torch.compile without a cache, seconds. Default 180."""
    compile_warm_seconds: int = COMPILE_WARM_SECONDS
    """torch.compile from a warm cache, seconds. Default 10."""
    engine_start_seconds: int = ENGINE_START_SECONDS
    """vLLM's start-up besides loading and compiling, seconds. Default 90."""
    readiness_period_seconds: int = 10
    """How long until a probe notices the pod is ready: the readiness probe's period, seconds.
    Default 10 (the seed's)."""


@dataclass(frozen=True)
class ColdStartBudget:
    """Seconds from "a replica is wanted" to "it answers", per phase, for one pool."""

    node_provisioning_seconds: int
    image_pull_seconds: int
    weights_read_seconds: int
    """The checkpoint read from the NFS share at its throughput."""
    compile_cold_seconds: int
    compile_warm_seconds: int
    engine_start_seconds: int
    readiness_seconds: int
    compile_cache: bool
    """Whether the compile cache on the share is on (a later start compiles warm)."""

    @property
    def cold_seconds(self) -> int:
        """A replica on a new node, first of its kind: every phase, compile cold."""
        return (
            self.node_provisioning_seconds
            + self.image_pull_seconds
            + self.weights_read_seconds
            + self.compile_cold_seconds
            + self.engine_start_seconds
            + self.readiness_seconds
        )

    @property
    def restart_seconds(self) -> int:
        """A replica on a node that has the image, the compile cache warm if it is on."""
        compile_seconds = (
            self.compile_warm_seconds if self.compile_cache else self.compile_cold_seconds
        )
        return (
            self.weights_read_seconds
            + compile_seconds
            + self.engine_start_seconds
            + self.readiness_seconds
        )

    @property
    def startup_window_seconds(self) -> int:
        """What the startup probe must allow from container start: load, a cold compile (the
        first pod of a cache key, or any pod without the cache), engine start, one period."""
        return (
            self.weights_read_seconds
            + self.compile_cold_seconds
            + self.engine_start_seconds
            + self.readiness_seconds
        )

    def summary(self) -> str:
        """One line: the phases and the totals."""
        return (
            f"node {self.node_provisioning_seconds}s + image {self.image_pull_seconds}s + "
            f"weights {self.weights_read_seconds}s + compile {self.compile_cold_seconds}s "
            f"cold/{self.compile_warm_seconds}s warm + engine {self.engine_start_seconds}s + "
            f"ready {self.readiness_seconds}s = {self.cold_seconds}s on a new node; "
            f"{self.restart_seconds}s on a node with the image"
            + (" and a warm compile cache" if self.compile_cache else " (no compile cache)")
        )


def cold_start_budget(
    checkpoint_gib: float,
    nfs_read_mb_per_s: float,
    *,
    figures: ColdStartFigures = ColdStartFigures(),
    compile_cache: bool = True,
) -> ColdStartBudget:
    """The budget of one replica reading ``checkpoint_gib`` GiB from NFS at
    ``nfs_read_mb_per_s`` MiB/s. Inputs are checked by the caller (the capacity plan)."""
    return ColdStartBudget(
        node_provisioning_seconds=figures.node_provisioning_seconds,
        image_pull_seconds=math.ceil(
            figures.image_download_gib * 1024 / figures.image_pull_mb_per_s
        ),
        weights_read_seconds=math.ceil(checkpoint_gib * 1024 / nfs_read_mb_per_s),
        compile_cold_seconds=figures.compile_cold_seconds,
        compile_warm_seconds=figures.compile_warm_seconds,
        engine_start_seconds=figures.engine_start_seconds,
        readiness_seconds=figures.readiness_period_seconds,
        compile_cache=compile_cache,
    )
