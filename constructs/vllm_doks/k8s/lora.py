"""LoRA adapters from the share: downloaded once like models, served by a worker pool.

An adapter is a Hugging Face repository like a model. :class:`LoraAdapter` downloads it with
the model download Job (:class:`~vllm_doks.k8s.model_download.ModelDownload`: the same
script, lock, completion marker and verification, and a pinned ``revision`` like a model's)
into ``<mount>/lora/<owner>--<repository>`` (``-<commit[:12]>`` appended when pinned);
:class:`LoraOptions` on a :class:`~vllm_doks.k8s.vllm_worker_pool.VllmWorkerPoolProps`
turns on vLLM's LoRA support and registers the adapters under their names::

    qwen = store.add_model("Qwen/Qwen2.5-7B-Instruct", node_pool_name="gpu-pool")
    sql = LoraAdapter(chart, "Sql", LoraAdapterProps(
        base_model=qwen, adapter_id="acme/qwen2.5-7b-sql-lora", name="qwen-sql", rank=16))
    VllmWorkerPool(chart, "Qwen", VllmWorkerPoolProps(
        model=qwen, gpu_node_pool_name="gpu-pool", lora=LoraOptions(adapters=(sql,))))

Clients then send ``"model": "qwen-sql"``; ``GET /v1/models`` lists the adapter with the base
model as its ``parent`` (vLLM ``OpenAIServingModels.show_available_models``).

The vLLM facts used here (flags, ``--lora-modules`` format, rank choices, the runtime
switch) are in :mod:`vllm_doks.contracts`, each with its source. Also from vLLM v0.18.0
(``vllm/entrypoints/openai/models/serving.py``): ``init_static_loras`` loads every
``--lora-modules`` entry at start-up and raises on the first failure (the pod never becomes
ready), and ``show_available_models`` lists each loaded adapter in ``/v1/models`` (``id`` =
name, ``root`` = path, ``parent`` = the served model name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cdk8s
from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.k8s.jobs import MAX_JOB_BASE_NAME
from vllm_doks.k8s.model_download import ModelDownload
from vllm_doks.k8s.names import check_model_id, dns_label, model_name_from_id
from vllm_doks.k8s.pod_security import env
from vllm_doks.model_arch import rank_holding
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_dns_label, check_dns_subdomain, check_int_range
from vllm_doks.weights import check_revision

#: Directory under the store's mount path that holds the adapters, one subdirectory each.
ADAPTERS_DIR = "lora"

# Adapter names: what clients send as "model". vLLM splits "name=path" on '=' and treats a
# value with ',' as JSON, so neither may appear; no '/' or spaces either (a model name in a
# URL or a log line).
_ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def adapter_directory(adapter_id: str) -> str:
    """Where an adapter goes under the store's mount: ``lora/<owner>--<repository>``, keyed by
    the repository (as the Hugging Face cache names ``models--<owner>--<name>``), not by the
    name clients use: two pools may each serve their own ``sql`` adapter (a canary of a new
    base model does), and two owners may publish the same repository name."""
    return f"{ADAPTERS_DIR}/{adapter_id.replace('/', '--')}"


@dataclass(frozen=True, kw_only=True)
class LoraAdapterProps:
    """Props of :class:`LoraAdapter`."""

    base_model: ModelDownload
    """The model the adapter was trained on, from :meth:`NfsModelStore.add_model`; the
    adapter goes to the same store, and only a pool serving this model can serve it.
    Required."""
    adapter_id: str
    """Hugging Face id of the adapter repository, e.g. ``"acme/qwen2.5-7b-sql-lora"``.
    Required."""
    rank: int
    """The adapter's LoRA rank (``r`` in its ``adapter_config.json``). Nothing reads that file
    at synth time (no network), so state it; it is checked against the pool's
    ``--max-lora-rank``, which vLLM enforces when it loads the adapter. Required."""
    revision: str | None = None
    """Commit (40 hex digits) of the adapter repository to download, as a model's
    ``revision``: the files are verified against the hub's hashes for that commit, and the
    adapter lives in ``lora/<owner>--<repository>-<commit[:12]>``, so a new revision never
    mixes with the old files. Default ``None``: the hub's default branch at download time
    (verified against the commit it resolved to)."""
    name: str | None = None
    """Name clients send as ``"model"`` to use the adapter (vLLM's ``--lora-modules``
    name): letters, digits, ``.``, ``_``, ``-``. Default: the adapter repository's name."""
    base_model_id: str | None = None
    """The base model the adapter declares (``base_model_name_or_path`` in its
    ``adapter_config.json``), checked against ``base_model``'s id: vLLM itself would load an
    adapter of another model of the same shape and serve wrong output. Default ``None``: not
    checked."""
    job_name: str | None = None
    """Base name of the download Job (at most 54 characters; the Job is
    ``<job_name>-<hash of its pod template>``, like a model's). Default
    ``"lora-download-<owner>-<repository>"`` of ``adapter_id``."""
    node_pool_name: str | None = None
    """Node pool the download runs on. Default: the base model's download's."""
    hf_token_secret_name: str | None = "hf-token"
    """Secret with a Hugging Face token for a gated adapter (may be absent). ``None`` to not
    look for one. Default ``"hf-token"``."""
    hf_token_secret_key: str = "HF_TOKEN"
    """Key of the token in that Secret. Default ``"HF_TOKEN"``."""
    max_workers: int | None = None
    """Parallel file downloads. Default: the store's ``download_max_workers``."""

    @property
    def resolved_name(self) -> str:
        """``name``, or the adapter repository's name."""
        if self.name is not None:
            return self.name
        return model_name_from_id(self.adapter_id) if isinstance(self.adapter_id, str) else ""

    def problems(self) -> Problems:
        problems = Problems()
        base_ok = problems.check(
            isinstance(self.base_model, ModelDownload),
            "base_model",
            self.base_model,
            "must be a ModelDownload, as returned by NfsModelStore.add_model()",
        )
        id_ok = check_model_id(problems, "adapter_id", self.adapter_id)
        if self.name is not None or id_ok:
            problems.check(
                isinstance(self.resolved_name, str)
                and bool(_ADAPTER_NAME.match(self.resolved_name)),
                "name",
                self.resolved_name,
                "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
                "digit (vLLM's --lora-modules name=path admits no '=' or ',')",
            )
        if self.revision is not None:
            check_revision(problems, "revision", self.revision)
        problems.check(
            isinstance(self.rank, int)
            and not isinstance(self.rank, bool)
            and 1 <= self.rank <= contracts.VLLM_MAX_LORA_RANKS[-1],
            "rank",
            self.rank,
            f"must be the adapter's LoRA rank ('r' in adapter_config.json), a whole number "
            f"from 1 to {contracts.VLLM_MAX_LORA_RANKS[-1]} (vLLM v0.18's largest --max-lora-rank)",
        )
        if self.base_model_id is not None and base_ok:
            problems.check(
                self.base_model_id == self.base_model.model_id,
                "base_model_id",
                self.base_model_id,
                f"is the adapter's base model, but base_model is "
                f"{self.base_model.model_id!r}: an adapter only works on the model it was "
                f"trained on",
            )
        if self.job_name is not None:
            check_dns_label(problems, "job_name", self.job_name, max_len=MAX_JOB_BASE_NAME)
        if self.node_pool_name is not None:
            check_dns_label(problems, "node_pool_name", self.node_pool_name)
        if self.hf_token_secret_name is not None:
            check_dns_subdomain(problems, "hf_token_secret_name", self.hf_token_secret_name)
        if self.max_workers is not None:
            check_int_range(problems, "max_workers", self.max_workers, 1, 64)
        return problems


@takes_props(LoraAdapterProps)
class LoraAdapter(Construct):
    """A LoRA adapter in ``<mount>/lora/<owner>--<repository>`` of its base model's store, and
    the Job that downloads it there (the model download Job: same script, lock, marker and
    verification, so every pod that serves it waits for the same marker).

    Serve it with :class:`LoraOptions` on a :class:`VllmWorkerPool` of ``base_model``.
    """

    def __init__(self, scope: Construct, id: str, props: LoraAdapterProps) -> None:
        super().__init__(scope, id)
        problems = props.problems()
        problems.where = lambda: self.node.path
        base = props.base_model
        name = props.resolved_name
        job_name = (
            props.job_name
            if props.job_name is not None
            else dns_label(f"lora-download-{props.adapter_id}", MAX_JOB_BASE_NAME)
        )
        if not problems:
            # Job names share the namespace with every other download of the chart.
            taken = {
                d.base_name
                for d in cdk8s.Chart.of(self).node.find_all()
                if isinstance(d, ModelDownload) and d.namespace == base.namespace
            }
            problems.check(
                job_name not in taken,
                "job_name",
                job_name,
                "is already the download Job of another model or adapter; pass a distinct job_name",
            )
        problems.raise_if_any()

        self.props = props
        self.base_model = base
        self.adapter_id = props.adapter_id
        self.name = name
        self.rank = props.rank
        self.download = ModelDownload(
            self,
            "Download",
            store=base.store,
            model_id=props.adapter_id,
            job_name=job_name,
            node_pool_name=(
                props.node_pool_name if props.node_pool_name is not None else base.node_pool_name
            ),
            gpu_size=base.gpu_size,
            hf_token_secret_name=props.hf_token_secret_name,
            hf_token_secret_key=props.hf_token_secret_key,
            max_workers=(
                props.max_workers
                if props.max_workers is not None
                else base.store.props.download_max_workers
            ),
            directory=adapter_directory(props.adapter_id),
            revision=props.revision,
        )

    @property
    def path(self) -> str:
        """The adapter's directory in the pods (what ``--lora-modules`` points at)."""
        return self.download.model_dir

    @property
    def marker_path(self) -> str:
        """The download's completion marker; pods serving the adapter wait for it."""
        return self.download.marker_path

    @property
    def job_name(self) -> str:
        """Name of the download Job (base name and template hash)."""
        return self.download.job_name

    @property
    def base_name(self) -> str:
        """Base name of the download Job (its NetworkPolicy's name)."""
        return self.download.base_name

    @property
    def module(self) -> str:
        """The ``--lora-modules`` value: ``name=path``."""
        return f"{self.name}={self.path}"


@dataclass(frozen=True, kw_only=True)
class LoraOptions:
    """LoRA serving of a :class:`VllmWorkerPool` (its ``lora`` prop)."""

    adapters: tuple[LoraAdapter, ...] = ()
    """Adapters loaded at start-up (``--lora-modules``), all of the pool's model. Default
    none (only with ``runtime_updates``)."""
    max_loras: int | None = None
    """vLLM ``--max-loras``: adapters usable in one batch; each slot holds GPU memory for an
    adapter of ``max_lora_rank`` (see the capacity plan). Default: the number of adapters
    (at least 1)."""
    max_lora_rank: int | None = None
    """vLLM ``--max-lora-rank``, one of vLLM v0.18's values
    (:data:`~vllm_doks.contracts.VLLM_MAX_LORA_RANKS`); every adapter's rank must be at
    most this. Default: the smallest of those values that holds the largest adapter's rank (16,
    vLLM's own default, without adapters)."""
    runtime_updates: bool = False
    """Set ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=true``: vLLM then serves
    ``POST /v1/load_lora_adapter`` and ``/v1/unload_lora_adapter``. Security trade-off:
    anyone holding the API key (the endpoints are under ``/v1``, which the Gateway
    publishes) can load any directory the pod can read, or, given a non-absolute path that
    does not exist, have vLLM download that Hub repository (``HF_HUB_OFFLINE=1`` in the pod
    stops the download, the share is mounted read-only, but any adapter already on it can
    be loaded under any name, including one that shadows a name clients use); and a load
    reaches one pod only, so replicas disagree about which adapters exist until each is
    loaded on every pod. vLLM itself warns it is for development only. Default ``False``:
    the adapters are fixed by the manifest."""

    @property
    def resolved_max_loras(self) -> int:
        if self.max_loras is not None:
            return self.max_loras
        return max(1, len(self.adapters))

    @property
    def resolved_max_lora_rank(self) -> int:
        if self.max_lora_rank is not None:
            return self.max_lora_rank
        ranks = [a.rank for a in self.adapters if isinstance(a, LoraAdapter)]
        if not ranks:
            return contracts.VLLM_DEFAULT_MAX_LORA_RANK
        top = max(ranks)
        return next(
            (r for r in contracts.VLLM_MAX_LORA_RANKS if r >= top),
            contracts.VLLM_MAX_LORA_RANKS[-1],
        )

    def problems(self, model: ModelDownload, served_model_name: str) -> Problems:
        """Problems of these options on a pool serving ``model`` as ``served_model_name``
        (field names relative to the pool: ``lora.adapters[0]``, ...)."""
        problems = Problems()
        adapters = self.adapters
        if not problems.check(
            isinstance(adapters, tuple) and all(isinstance(a, LoraAdapter) for a in adapters),
            "lora.adapters",
            adapters,
            "must be a tuple of LoraAdapter",
        ):
            return problems
        problems.check(
            bool(adapters) or self.runtime_updates is True,
            "lora.adapters",
            adapters,
            "must list at least one adapter (or set runtime_updates to load them later)",
        )
        if self.max_loras is not None:
            check_int_range(problems, "lora.max_loras", self.max_loras, 1)
        rank_ok = self.max_lora_rank is None or problems.check(
            self.max_lora_rank in contracts.VLLM_MAX_LORA_RANKS,
            "lora.max_lora_rank",
            self.max_lora_rank,
            f"must be one of vLLM v0.18's --max-lora-rank values: "
            f"{', '.join(map(str, contracts.VLLM_MAX_LORA_RANKS))}",
        )
        problems.check(
            isinstance(self.runtime_updates, bool),
            "lora.runtime_updates",
            self.runtime_updates,
            "must be True or False",
        )
        seen: dict[str, int] = {}
        for i, adapter in enumerate(adapters):
            where = f"lora.adapters[{i}]"
            problems.check(
                adapter.base_model is model,
                where,
                adapter.node.path,
                f"is an adapter of {adapter.base_model.model_id!r}, but this pool serves "
                f"{model.model_id!r}",
            )
            if rank_ok:
                problems.check(
                    adapter.rank <= self.resolved_max_lora_rank,
                    f"{where}.rank",
                    adapter.rank,
                    f"is above max_lora_rank {self.resolved_max_lora_rank}; vLLM would refuse "
                    f"to load the adapter ('LoRA rank {adapter.rank} is greater than "
                    f"max_lora_rank'): raise lora.max_lora_rank to "
                    f"{rank_holding(adapter.rank)}",
                )
            problems.check(
                adapter.name != served_model_name,
                f"{where}.name",
                adapter.name,
                "is the pool's served model name; an adapter needs a name of its own",
            )
            if adapter.name in seen:
                problems.add(
                    f"{where}.name",
                    adapter.name,
                    f"is already the name of lora.adapters[{seen[adapter.name]}]",
                )
            seen.setdefault(adapter.name, i)
        return problems

    def vllm_args(self) -> list[str]:
        """The ``vllm serve`` arguments: ``--enable-lora``, ``--max-loras``,
        ``--max-lora-rank`` and one ``--lora-modules`` with every adapter."""
        args = [
            contracts.VLLM_FLAG_ENABLE_LORA,
            contracts.VLLM_FLAG_MAX_LORAS,
            str(self.resolved_max_loras),
            contracts.VLLM_FLAG_MAX_LORA_RANK,
            str(self.resolved_max_lora_rank),
        ]
        if self.adapters:
            # One flag, all values: a second --lora-modules would replace the first list.
            args += [contracts.VLLM_FLAG_LORA_MODULES, *(a.module for a in self.adapters)]
        return args

    def env(self) -> list[k8s.EnvVar]:
        """Environment of the vLLM container for these options."""
        if not self.runtime_updates:
            return []
        return [env(contracts.VLLM_ALLOW_RUNTIME_LORA_UPDATING_ENV, "true")]
