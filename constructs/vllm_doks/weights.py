"""Weights you can trust: the pinned revision of a model, where it is downloaded from and how
its files are checked.

Pure Python, shared by the config checks and the Kubernetes constructs. The download itself
(``scripts/fetch_model.py``) verifies every file against the hashes the Hugging Face Hub lists
for the pinned commit, or (from a Spaces bucket, :class:`SpacesSource`) against the sha256
manifest uploaded with the files, before the completion marker is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vllm_doks import contracts
from vllm_doks.validation import Problems, check_dns_subdomain

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


#: Spaces region slugs (nyc3, ams3, sgp1, ...): lowercase letters then digits.
_SPACES_REGION = re.compile(r"^[a-z]+[0-9]+$")
#: Spaces bucket names: 3-63 lowercase letters, digits and '-', starting and ending alphanumeric.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def check_bucket_name(problems: Problems, field_name: str, value: object) -> bool:
    """Record a problem unless ``value`` is a valid Spaces bucket name."""
    return problems.check(
        isinstance(value, str) and bool(_BUCKET.match(value)),
        field_name,
        value,
        "must be a Spaces bucket name: 3-63 lowercase letters, digits and '-', starting and "
        "ending with a letter or digit",
    )


def check_spaces_region(problems: Problems, field_name: str, value: object) -> bool:
    """Record a problem unless ``value`` looks like a Spaces region slug."""
    return problems.check(
        isinstance(value, str) and bool(_SPACES_REGION.match(value)),
        field_name,
        value,
        "must be a Spaces region slug such as nyc3, sfo3, ams3, sgp1, fra1, syd1",
    )


@dataclass(frozen=True, kw_only=True)
class SpacesSource:
    """A DigitalOcean Spaces bucket (S3 API) to download a model from instead of the Hugging
    Face Hub. The bucket holds the model's files under ``prefix`` and, beside them, the
    manifest ``<prefix>.vllm-doks-manifest.json`` (sha256 and size per file) that the download
    verifies every file against; the key pair comes from a Secret, never from here."""

    bucket: str
    """Name of the bucket. Required."""
    region: str = "nyc3"
    """Spaces region slug of the bucket (Spaces regions differ from GPU regions). Default
    ``"nyc3"``."""
    prefix: str = ""
    """Key prefix of the model's files, ending in ``/`` (or empty for the bucket's root).
    Default ``""``; the app uses ``<model id>/``."""
    credentials_secret: str = "spaces-model-source"
    """Secret (in the download's namespace) holding the key pair under ``AWS_ACCESS_KEY_ID``
    and ``AWS_SECRET_ACCESS_KEY``; create it with kubectl. Default ``"spaces-model-source"``."""

    @property
    def bucket_url(self) -> str:
        """The bucket's own HTTPS endpoint, e.g. ``https://models.nyc3.digitaloceanspaces.com``."""
        return contracts.SPACES_BUCKET_URL_TEMPLATE.format(bucket=self.bucket, region=self.region)

    @property
    def location(self) -> str:
        """Where the files are, for messages: ``<bucket url>/<prefix>``."""
        return f"{self.bucket_url}/{self.prefix}"

    def secret_command(self, namespace: str) -> str:
        """The kubectl command that creates the credentials Secret (values left to the user)."""
        return (
            f"kubectl -n {namespace} create secret generic {self.credentials_secret} "
            f"--from-literal={contracts.SPACES_ACCESS_KEY_ID_KEY}=<access key> "
            f"--from-literal={contracts.SPACES_SECRET_ACCESS_KEY_KEY}=<secret key>"
        )

    def problems(self, field_prefix: str = "source") -> Problems:
        problems = Problems()
        check_bucket_name(problems, f"{field_prefix}.bucket", self.bucket)
        check_spaces_region(problems, f"{field_prefix}.region", self.region)
        problems.check(
            isinstance(self.prefix, str)
            and not self.prefix.startswith("/")
            and (self.prefix == "" or self.prefix.endswith("/"))
            and ".." not in self.prefix.split("/")
            and not any(c.isspace() for c in self.prefix),
            f"{field_prefix}.prefix",
            self.prefix,
            "must be empty or a key prefix ending in '/', without a leading '/', '..' or "
            "whitespace (e.g. Qwen/Qwen2.5-0.5B-Instruct/)",
        )
        check_dns_subdomain(problems, f"{field_prefix}.credentials_secret", self.credentials_secret)
        return problems


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
