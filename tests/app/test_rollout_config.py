"""The config file's ``adapters:`` and ``canary:`` keys of a ``models:`` entry: shapes checked,
every problem named by its key, all at once."""

from __future__ import annotations

from vllm_doks.rollout_config import (
    AdapterConfig,
    CanaryConfig,
    parse_adapters,
    parse_canary,
    resolve_canaries,
)
from vllm_doks.validation import Problems


def test_adapters_parse_with_defaults() -> None:
    problems = Problems()
    adapters = parse_adapters(
        [{"id": "acme/sql", "rank": 16}, {"id": "acme/chat", "name": "chat", "rank": 8,
                                          "base_model": "Qwen/Qwen2.5-7B-Instruct"}],
        "models[0].adapters", problems, "vllm.yaml",
    )  # fmt: skip
    assert not problems
    assert adapters == (
        AdapterConfig(id="acme/sql", rank=16),
        AdapterConfig(id="acme/chat", name="chat", rank=8, base_model="Qwen/Qwen2.5-7B-Instruct"),
    )


def test_bad_adapters_are_named_by_key() -> None:
    problems = Problems()
    parse_adapters(
        [{"id": "acme/sql"}, {"rank": "16", "id": "acme/x"}, "acme/y", {"id": "a/b", "rank": 8,
                                                                        "revison": "x"}],
        "models[0].adapters", problems, "vllm.yaml",
    )  # fmt: skip
    assert [p.field for p in problems.items] == [
        "models[0].adapters[0].rank",
        "models[0].adapters[1].rank",
        "models[0].adapters[2]",
        "models[0].adapters[3].revison",
    ]
    empty = Problems()
    assert parse_adapters([], "models[1].adapters", empty, "vllm.yaml") == ()
    assert [p.field for p in empty.items] == ["models[1].adapters"]


def test_canary_parses_and_checks_its_keys() -> None:
    problems = Problems()
    assert parse_canary({"of": "vllm", "weight": 10}, "models[1].canary", problems, "f") == (
        CanaryConfig(of="vllm", weight=10)
    )
    assert parse_canary(
        {"of": "vllm", "weight": 100, "steps": [0, 100], "promoted": True}, "c", problems, "f"
    ) == CanaryConfig(of="vllm", weight=100, steps=(0, 100), promoted=True)
    assert not problems
    bad = Problems()
    assert parse_canary({"weight": "10", "promote": True}, "models[1].canary", bad, "f") is None
    assert [p.field for p in bad.items] == [
        "models[1].canary.weight",
        "models[1].canary.promote",
        "models[1].canary.of",
    ]


def test_canaries_pair_with_the_entry_they_name() -> None:
    problems = Problems()
    c = CanaryConfig(of="vllm", weight=10)
    assert resolve_canaries(["vllm", "green", "other"], [None, c, None], problems) == {0: 1}
    assert not problems
    bad = Problems()
    pairs = resolve_canaries(
        ["vllm", "green", "blue", "self", "x"],
        [None, c, c, CanaryConfig(of="self"), CanaryConfig(of="green")],
        bad,
    )
    assert pairs == {0: 1}
    assert [(p.field, p.value) for p in bad.items] == [
        ("models[2].canary.of", "vllm"),  # vllm already has a canary
        ("models[3].canary.of", "self"),
        ("models[4].canary.of", "green"),  # green is a canary itself
    ]
    unknown = Problems()
    assert resolve_canaries(["vllm"], [CanaryConfig(of="nope")], unknown) == {}
    assert [p.field for p in unknown.items] == ["models[0].canary.of"]
