"""The config file's LoRA adapters and canary rollouts, per entry of ``models:``.

Pure Python (no cdk8s): parsing and checking of two keys of a ``models:`` entry::

    models:
      - id: Qwen/Qwen2.5-7B-Instruct
        served_name: qwen
        name: vllm
        adapters:                       # LoRA adapters served next to the model
          - {id: acme/qwen2.5-7b-instruct-sql-lora, name: sql, rank: 16,
             revision: 0123456789abcdef0123456789abcdef01234567}   # optional: pinned commit
          - {id: acme/qwen2.5-7b-instruct-support-lora, name: support, rank: 64,
             base_model: Qwen/Qwen2.5-7B-Instruct}
        max_lora_rank: 64               # optional (default: the smallest that holds them)
      - id: Qwen/Qwen2.5-7B-Instruct
        served_name: qwen
        name: vllm-green
        kv_cache_dtype: fp8
        canary: {of: vllm, weight: 10}  # 10 % of vllm's route; steps 0, 10, 50, 100

The constructs do the deeper checks (ranks against ``--max-lora-rank``, names, the canary's
served name); this module checks the shapes and names the config keys in its messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vllm_doks import contracts
from vllm_doks.model_arch import rank_holding
from vllm_doks.validation import Problems, list_of_mappings
from vllm_doks.weights import check_revision

#: The default rollout steps (percent to the canary), as :data:`vllm_doks.k8s.canary.DEFAULT_STEPS`.
CANARY_STEPS: tuple[int, ...] = (0, 10, 50, 100)


@dataclass(frozen=True, kw_only=True)
class AdapterConfig:
    """One entry of a model's ``adapters:`` list."""

    id: str
    """Hugging Face id of the adapter repository. Required."""
    revision: str = ""
    """Commit (40 hex digits) of the adapter repository to download and verify. Default: the
    hub's default branch at download time."""
    name: str = ""
    """Name clients send as ``"model"``. Default: the repository's name."""
    rank: int = 0
    """The adapter's LoRA rank (``r`` in its ``adapter_config.json``). Required."""
    base_model: str = ""
    """The adapter's ``base_model_name_or_path``, checked against the model's id. Default:
    not checked."""


ADAPTER_KEYS = ("id", "revision", "name", "rank", "base_model")


@dataclass(frozen=True, kw_only=True)
class CanaryConfig:
    """A model entry's ``canary:`` mapping: this entry's pool is the canary of another's."""

    of: str
    """``name`` of the stable entry (its pool name). Required."""
    weight: int = 0
    """Percent of the stable route's requests to this pool, one of ``steps``. Default 0."""
    steps: tuple[int, ...] = CANARY_STEPS
    """The rollout's steps. Default ``[0, 10, 50, 100]``."""
    promoted: bool = False
    """Done: this pool alone on the route (after weight 100). Default ``false``."""


CANARY_KEYS = ("of", "weight", "steps", "promoted")


def lora_slots_and_rank(
    adapters: tuple[AdapterConfig, ...], max_loras: int | None, max_lora_rank: int | None
) -> tuple[int, int]:
    """``(--max-loras, --max-lora-rank)`` for a model's adapters: the values given, else one
    slot per adapter and the smallest rank that holds the largest (the pool's defaults)."""
    slots = max_loras if max_loras is not None else max(1, len(adapters))
    if max_lora_rank is not None:
        return slots, max_lora_rank
    ranks = [a.rank for a in adapters]
    return slots, rank_holding(max(ranks)) if ranks else contracts.VLLM_DEFAULT_MAX_LORA_RANK


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_adapters(
    raw: object, where: str, problems: Problems, source: str
) -> tuple[AdapterConfig, ...]:
    """A model entry's ``adapters:`` list."""
    adapters: list[AdapterConfig] = []
    for at, entry in list_of_mappings(
        raw,
        where,
        problems,
        source=source,
        keys=ADAPTER_KEYS,
        noun="adapter",
        list_example="[{id: acme/x, rank: 16}]",
        entry_example="{id: acme/sql-lora, rank: 16}",
    ):
        ok = True
        for key, value in entry.items():
            if key == "rank":
                ok &= problems.check(
                    _int(value), f"{at}.rank", value, "must be a whole number (the LoRA rank r)"
                )
            elif key == "revision":
                ok &= check_revision(problems, f"{at}.revision", value)
            else:
                ok &= problems.check(
                    isinstance(value, str), f"{at}.{key}", value, "must be a string"
                )
        ok &= problems.check(
            bool(entry.get("id")), f"{at}.id", entry.get("id"), "is required: the adapter's id"
        )
        ok &= problems.check(
            "rank" in entry,
            f"{at}.rank",
            entry.get("rank"),
            "is required: the adapter's LoRA rank ('r' in its adapter_config.json)",
        )
        if ok:
            adapters.append(AdapterConfig(**entry))  # type: ignore[arg-type]
    return tuple(adapters)


def parse_canary(raw: object, where: str, problems: Problems, source: str) -> CanaryConfig | None:
    """A model entry's ``canary:`` mapping."""
    if not isinstance(raw, Mapping):
        problems.add(where, raw, f"must be a mapping such as {{of: vllm, weight: 10}} ({source})")
        return None
    ok = True
    values: dict[str, object] = {}
    for key, value in raw.items():
        at = f"{where}.{key}"
        if key not in CANARY_KEYS:
            problems.add(
                at,
                value,
                f"is not a key of canary (from {source}); known: {', '.join(CANARY_KEYS)}",
            )
            ok = False
        elif key == "of":
            ok &= problems.check(
                isinstance(value, str) and bool(value), at, value, "must be a model entry's name"
            )
            values[key] = value
        elif key == "weight":
            ok &= problems.check(_int(value), at, value, "must be a whole percentage")
            values[key] = value
        elif key == "steps":
            good = isinstance(value, list) and all(_int(v) for v in value)
            ok &= problems.check(good, at, value, "must be a list of whole percentages")
            values[key] = tuple(value) if isinstance(value, list) else value
        else:
            ok &= problems.check(isinstance(value, bool), at, value, "must be true or false")
            values[key] = value
    ok &= problems.check("of" in raw, f"{where}.of", None, "is required: the stable entry's name")
    return CanaryConfig(**values) if ok else None  # type: ignore[arg-type]


def resolve_canaries(
    names: list[str], canaries: list[CanaryConfig | None], problems: Problems
) -> dict[int, int]:
    """Which entry is whose canary: ``{stable index: canary index}``, from the entries' pool
    ``names`` and their ``canary:`` values (problems name ``models[i].canary.of``)."""
    pairs: dict[int, int] = {}
    for i, canary in enumerate(canaries):
        if canary is None:
            continue
        at = f"models[{i}].canary.of"
        if canary.of not in names:
            problems.add(at, canary.of, f"must be the name of another entry: {', '.join(names)}")
            continue
        stable = names.index(canary.of)
        if stable == i:
            problems.add(at, canary.of, "is this entry itself; name the entry it replaces")
        elif canaries[stable] is not None:
            problems.add(at, canary.of, "is itself a canary; one stable pool per rollout")
        elif stable in pairs:
            problems.add(
                at, canary.of, f"already has a canary (models[{pairs[stable]}]); one at a time"
            )
        else:
            pairs[stable] = i
    return pairs
