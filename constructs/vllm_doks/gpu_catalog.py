"""DigitalOcean GPU Droplet sizes that DOKS offers for GPU node pools, as plain data.

Pure Python (no cdk8s/cdktf import), so the cloud layer (node pool size, AMD cluster flags),
the Kubernetes layer (resource name, toleration, image, ``--tensor-parallel-size``) and the
capacity planner all read the same facts.

Sources (checked 2026-11):

* Slugs and sizes: ``doctl compute size list`` output (``gpu-4000adax1-20gb``,
  ``gpu-l40sx1-48gb``, ``gpu-6000adax1-48gb``, ``gpu-mi300x1-192gb``, ``gpu-h100x1-80gb``,
  ``gpu-h200x1-141gb``, ``gpu-mi300x8-1536gb``, ...) and DigitalOcean's Droplet release notes
  (docs.digitalocean.com/release-notes): RTX 4000/6000 Ada "available for DOKS clusters ...
  with the ``gpu-4000adax1-20gb`` and ``gpu-6000adax1-48gb`` slug"; H200 "using slugs
  ``gpu-h200x1-141gb`` (1 GPU) and ``gpu-h200x8-1128gb`` (8 GPUs)". The number after ``x`` is
  the GPU count; the trailing ``NNNgb`` is the total GPU memory of the Droplet.
* Taints: DOKS "Managed Elements" page (docs.digitalocean.com/products/kubernetes/details/
  managed/): "For GPU worker nodes, DigitalOcean applies the following taint: AMD
  ``amd.com/gpu:NoSchedule``, NVIDIA ``nvidia.com/gpu:NoSchedule``", plus the labels
  ``doks.digitalocean.com/gpu-brand: amd|nvidia``.
* AMD cluster flags: the DigitalOcean API's cluster request bodies ``amd_gpu_device_plugin``
  ("whether the AMD GPU Device Plugin should be enabled ... enabled by default for clusters
  with an AMD GPU node pool", digitalocean/openapi 5d99aef) and
  ``amd_gpu_device_metrics_exporter_plugin`` (DOKS release notes: install "the AMD Device
  Metrics Exporter plugin ... with the amd_gpu_device_metrics_exporter_plugin request body
  parameter"). The Terraform/cdktf ``digitalocean_kubernetes_cluster`` has the same-named
  blocks, e.g. ``amd_gpu_device_plugin { enabled = true }``.
* ROCm image: vLLM's ROCm installation docs (vllm-project/vllm,
  docs/getting_started/installation/gpu.rocm.inc.md): the official image "is available on
  Docker Hub as vllm/vllm-openai-rocm" (published upstream since 2026-01-20; before that AMD
  published ``rocm/vllm``). We pin the same release as the CUDA image, ``v0.18.0``.

Memory figures are the slug's nominal GiB per GPU; the device reports less (an H100 80GB
79.19 GiB, an L40S 44.39 GiB), which ``cuda_memory_gb`` records for the capacity plan
(sources at the host-side rows below).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from vllm_doks import contracts
from vllm_doks.validation import Problem, Problems, ValidationError

Vendor = Literal["nvidia", "amd"]

#: The seed's GPU Droplet (one H100, 80 GB): the default size of every construct.
DEFAULT_GPU_SIZE = "gpu-h100x1-80gb"

# The images, resources, taints, labels and cluster flags are external contracts: they live
# in vllm_doks.contracts (with their sources) and are re-exported here under their old names.
#: vLLM's CUDA image, the same pin as the Kubernetes layer's default.
CUDA_VLLM_IMAGE = contracts.VLLM_CUDA_IMAGE
#: vLLM's official ROCm image (Docker Hub ``vllm/vllm-openai-rocm``), same vLLM release.
ROCM_VLLM_IMAGE = contracts.VLLM_ROCM_IMAGE
#: The image each vendor's sizes default to.
VENDOR_VLLM_IMAGES: Mapping[str, str] = MappingProxyType(
    {"nvidia": CUDA_VLLM_IMAGE, "amd": ROCM_VLLM_IMAGE}
)

#: Extended resource each vendor's device plugin advertises (and DOKS's taint key).
RESOURCE_NAMES: Mapping[str, str] = contracts.GPU_RESOURCE_NAMES
#: Key of the ``NoSchedule`` taint DOKS puts on GPU nodes of each vendor.
TOLERATION_KEYS: Mapping[str, str] = contracts.GPU_TAINT_KEYS
#: Node label DOKS sets on every GPU node (value: ``nvidia`` or ``amd``).
GPU_BRAND_LABEL = contracts.DOKS_GPU_BRAND_LABEL

#: ``digitalocean_kubernetes_cluster`` arguments an AMD GPU node pool needs.
AMD_CLUSTER_FLAGS: Mapping[str, Mapping[str, bool]] = contracts.AMD_CLUSTER_FLAGS
_NO_FLAGS: Mapping[str, Mapping[str, bool]] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class GpuSize:
    """One GPU Droplet size as a DOKS node pool uses it.

    Build one directly (or with :func:`custom_gpu_size`) for a size DigitalOcean adds after
    this catalogue was written, and pass it as ``custom=`` to :func:`lookup_gpu_size`.
    """

    slug: str
    """DigitalOcean size slug, e.g. ``gpu-h100x1-80gb``."""
    gpu_count: int
    """GPUs per Droplet (one node); also vLLM's ``--tensor-parallel-size`` for a replica."""
    gpu_memory_gb: float
    """Memory per GPU in GiB (nominal, as in the slug)."""
    vendor: Vendor
    gpu_model: str
    """Human name, e.g. ``NVIDIA H100``."""
    resource_name: str
    """Extended resource to request: ``nvidia.com/gpu`` or ``amd.com/gpu``."""
    toleration_key: str
    """Key of DOKS's ``NoSchedule`` taint on nodes of this size."""
    vllm_image: str
    """vLLM image built for this vendor's stack (CUDA or ROCm)."""
    cluster_flags: Mapping[str, Mapping[str, bool]] = field(
        default_factory=lambda: _NO_FLAGS, hash=False, compare=False
    )
    """``digitalocean_kubernetes_cluster`` arguments this size needs (AMD: device plugin and
    metrics exporter); empty for NVIDIA."""
    cuda_memory_gb: float | None = None
    """Memory of one GPU in GiB as the CUDA/ROCm runtime reports it (what vLLM multiplies by
    ``--gpu-memory-utilization``), e.g. 79.19 for an H100 80 GB. Default ``None``: the
    nominal ``gpu_memory_gb`` less 1 %."""
    vcpus: int | None = None
    """vCPUs of the Droplet. Default ``None`` (unknown)."""
    host_ram_gb: float | None = None
    """Host memory of the Droplet, GiB. Default ``None`` (unknown)."""
    price_per_hour_usd: float | None = None
    """On-demand price of the Droplet per hour, USD. Default ``None`` (unknown)."""

    def __post_init__(self) -> None:
        problems = self.problems()
        problems.raise_if_any()

    def problems(self) -> Problems:
        p = Problems(where=f"GpuSize {self.slug!r}")
        p.check(
            isinstance(self.slug, str) and self.slug.startswith("gpu-"),
            "slug",
            self.slug,
            "must be a DigitalOcean GPU Droplet slug, starting with 'gpu-'",
        )
        if p.check(
            self.vendor in RESOURCE_NAMES, "vendor", self.vendor, "must be 'nvidia' or 'amd'"
        ):
            p.check(
                self.resource_name == RESOURCE_NAMES[self.vendor],
                "resource_name",
                self.resource_name,
                f"must be {RESOURCE_NAMES[self.vendor]!r} for vendor {self.vendor!r}",
            )
            p.check(
                self.toleration_key == TOLERATION_KEYS[self.vendor],
                "toleration_key",
                self.toleration_key,
                f"must be {TOLERATION_KEYS[self.vendor]!r} for vendor {self.vendor!r}",
            )
        p.check(
            isinstance(self.gpu_count, int)
            and not isinstance(self.gpu_count, bool)
            and self.gpu_count >= 1,
            "gpu_count",
            self.gpu_count,
            "must be a whole number of GPUs, at least 1",
        )
        p.check(
            isinstance(self.gpu_memory_gb, int | float)
            and not isinstance(self.gpu_memory_gb, bool)
            and self.gpu_memory_gb > 0,
            "gpu_memory_gb",
            self.gpu_memory_gb,
            "must be the memory of one GPU in GiB, greater than 0",
        )
        p.check(
            isinstance(self.vllm_image, str) and bool(self.vllm_image.strip()),
            "vllm_image",
            self.vllm_image,
            "must be a container image reference",
        )
        return p

    @property
    def total_gpu_memory_gb(self) -> float:
        """GPU memory of one node (all its GPUs), GiB."""
        return self.gpu_count * self.gpu_memory_gb

    @property
    def reported_gpu_memory_gb(self) -> float:
        """Memory of one GPU as CUDA reports it, GiB (see :attr:`cuda_memory_gb`)."""
        if self.cuda_memory_gb is not None:
            return self.cuda_memory_gb
        return self.gpu_memory_gb * 0.99

    @property
    def tensor_parallel_size(self) -> int:
        return tensor_parallel_size(self)

    def toleration(self) -> dict[str, str]:
        """The toleration a pod needs to land on this size's (tainted) nodes."""
        return {"key": self.toleration_key, "operator": "Exists", "effect": "NoSchedule"}

    def node_selector(self) -> dict[str, str]:
        """Label DOKS puts on GPU nodes of this vendor."""
        return {GPU_BRAND_LABEL: self.vendor}

    def resource_limits(self) -> dict[str, str]:
        """Container limits: every GPU of the node for one replica."""
        return {self.resource_name: str(self.gpu_count)}

    def cluster_flags_dict(self) -> dict[str, dict[str, bool]]:
        """A plain, mutable copy of :attr:`cluster_flags` (for cdktf struct arguments)."""
        return {k: dict(v) for k, v in self.cluster_flags.items()}


def custom_gpu_size(
    slug: str,
    *,
    vendor: Vendor,
    gpu_count: int,
    gpu_memory_gb: float,
    gpu_model: str = "",
    vllm_image: str | None = None,
) -> GpuSize:
    """A size not in the catalogue, with the vendor's resource name, taint, image and flags."""
    return GpuSize(
        slug=slug,
        gpu_count=gpu_count,
        gpu_memory_gb=gpu_memory_gb,
        vendor=vendor,
        gpu_model=gpu_model or slug,
        resource_name=RESOURCE_NAMES.get(vendor, ""),
        toleration_key=TOLERATION_KEYS.get(vendor, ""),
        vllm_image=vllm_image or (ROCM_VLLM_IMAGE if vendor == "amd" else CUDA_VLLM_IMAGE),
        cluster_flags=AMD_CLUSTER_FLAGS if vendor == "amd" else _NO_FLAGS,
    )


def _size(
    slug: str,
    vendor: Vendor,
    count: int,
    memory: float,
    model: str,
    host: tuple[float, int, float, float | None],
) -> GpuSize:
    cuda, vcpus, ram, price = host
    return dataclasses.replace(
        custom_gpu_size(
            slug, vendor=vendor, gpu_count=count, gpu_memory_gb=memory, gpu_model=model
        ),
        cuda_memory_gb=cuda,
        vcpus=vcpus,
        host_ram_gb=ram,
        price_per_hour_usd=price,
    )


# Host side of each size: (GPU memory as CUDA/ROCm reports it per GPU in GiB, vCPUs, host
# RAM in GiB, USD per hour). Sources:
# * CUDA-reported memory: vLLM's own start-up logs ("total_gpu_memory (79.19GiB)" for H100
#   80GB HBM3, quoted in vllm-doks issue #12 and seen from 79.11 to 79.33 in vLLM logs;
#   "total_gpu_memory (44.39GiB)" for L40S and "(139.81GiB)" for H200 in published vLLM
#   0.7/0.8 logs; "total_gpu_memory (191.45GiB)" in a published vLLM log on one MI300X).
#   RTX 6000 Ada: 47.5 is what vLLM logs of 48 GB cards show (47.37-47.50), not a log of
#   this card; RTX 4000 Ada: nominal less ~1.5 % (19.7). Both ESTIMATES.
# * vCPUs and RAM: DigitalOcean GPU Droplet plans (docs.digitalocean.com/products/droplets/
#   details/features/, GPU Droplets): H100/H200/MI300X x1 20-24 vCPUs 240 GiB, x8 160-192
#   vCPUs 1920 GiB; L40S and RTX 6000 Ada 8 vCPUs 64 GiB; RTX 4000 Ada 8 vCPUs 32 GiB.
#   Not re-read here (the page was not in the search index): check before relying on them.
# * Prices: docs.digitalocean.com/products/droplets/details/pricing/ (validated 28 May
#   2026): H100 $3.39/h, H100x8 $23.92/h, L40s $1.57/h, RTX 4000 $0.76/h, RTX 6000 $1.89/h,
#   MI300X $1.99/h, MI300X (8x) $15.92/h. H200: not in the retrieved excerpt (None).


#: GPU Droplet sizes DOKS offers for node pools, by slug (see the module doc for sources).
GPU_SIZES: Mapping[str, GpuSize] = MappingProxyType(
    {
        s.slug: s
        for s in (
            _size("gpu-h100x1-80gb", "nvidia", 1, 80, "NVIDIA H100", (79.19, 20, 240, 3.39)),
            _size("gpu-h100x8-640gb", "nvidia", 8, 80, "NVIDIA H100", (79.19, 160, 1920, 23.92)),
            _size("gpu-h200x1-141gb", "nvidia", 1, 141, "NVIDIA H200", (139.81, 24, 240, None)),
            _size("gpu-h200x8-1128gb", "nvidia", 8, 141, "NVIDIA H200", (139.81, 192, 1920, None)),
            _size("gpu-l40sx1-48gb", "nvidia", 1, 48, "NVIDIA L40S", (44.39, 8, 64, 1.57)),
            _size(
                "gpu-6000adax1-48gb", "nvidia", 1, 48, "NVIDIA RTX 6000 Ada", (47.5, 8, 64, 1.89)
            ),
            _size(
                "gpu-4000adax1-20gb", "nvidia", 1, 20, "NVIDIA RTX 4000 Ada", (19.7, 8, 32, 0.76)
            ),
            _size(
                "gpu-mi300x1-192gb", "amd", 1, 192, "AMD Instinct MI300X", (191.45, 20, 240, 1.99)
            ),
            _size(
                "gpu-mi300x8-1536gb",
                "amd",
                8,
                192,
                "AMD Instinct MI300X",
                (191.45, 160, 1920, 15.92),
            ),
        )
    }
)


def tensor_parallel_size(size: GpuSize) -> int:
    """vLLM's ``--tensor-parallel-size`` for one replica on ``size``: all of its GPUs."""
    return size.gpu_count


def lookup_gpu_size(slug: str, *, custom: GpuSize | None = None) -> GpuSize:
    """The catalogue entry for ``slug``, or ``custom`` when given (escape hatch).

    Raises :class:`ValidationError` naming every known slug when ``slug`` is unknown and no
    ``custom`` size is given, or when ``custom`` describes a different slug.
    """
    if custom is not None:
        if custom.slug != slug:
            raise ValidationError(
                [
                    Problem(
                        "custom.slug",
                        custom.slug,
                        f"must equal the requested size {slug!r}",
                    )
                ],
                "lookup_gpu_size",
            )
        return custom
    size = GPU_SIZES.get(slug)
    if size is None:
        raise ValidationError([unknown_size_problem("gpu_size", slug)], "lookup_gpu_size")
    return size


def unknown_size_problem(field_name: str, slug: object, escape: str = "custom=") -> Problem:
    """The problem for a slug not in the catalogue, listing every known slug.

    ``escape`` names the argument that takes a custom size where the problem arises.
    """
    return Problem(
        field_name,
        slug,
        f"must be one of the GPU sizes DOKS offers: {', '.join(sorted(GPU_SIZES))}; "
        f"for a size added later, pass {escape}custom_gpu_size(slug, vendor=..., "
        "gpu_count=..., gpu_memory_gb=...)",
    )


def resolve_gpu_size(
    problems: Problems,
    field_name: str,
    value: object,
    *,
    custom: GpuSize | None = None,
    escape: str = "custom=",
) -> GpuSize | None:
    """``value`` (a slug or a :class:`GpuSize`) as a catalogue entry, or ``None`` after
    adding a problem to ``problems`` (an unknown slug's problem lists every known slug).

    A :class:`GpuSize` is taken as it is (the escape hatch for a size added later); a slug
    equal to ``custom.slug`` resolves to ``custom``.
    """
    if isinstance(value, GpuSize):
        return value
    if not isinstance(value, str):
        problems.add(field_name, value, "must be a GPU size slug such as 'gpu-h100x1-80gb'")
        return None
    if custom is not None:
        if not isinstance(custom, GpuSize):
            problems.add(f"custom_{field_name}", custom, "must be a GpuSize (custom_gpu_size())")
            return None
        if custom.slug != value:
            problems.add(
                f"custom_{field_name}",
                custom.slug,
                f"must describe the requested size {value!r} (its slug must equal it)",
            )
            return None
        return custom
    size = GPU_SIZES.get(value)
    if size is None:
        problems.extend([unknown_size_problem(field_name, value, escape)])
    return size
