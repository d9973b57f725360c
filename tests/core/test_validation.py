"""The Problems accumulator: every problem at once, named by where they were found."""

from __future__ import annotations

import pickle

import pytest

from vllm_doks.validation import Problems, ValidationError


def test_every_problem_is_raised_at_once_with_where() -> None:
    problems = Problems(where="pools[a]")
    problems.add("replicas", 0, "must be a whole number at least 1")
    problems.check(False, "name", "A", "must be a DNS-1123 label")
    with pytest.raises(ValidationError) as raised:
        problems.raise_if_any()
    assert [p.field for p in raised.value.problems] == ["replicas", "name"]
    assert raised.value.where == "pools[a]"
    assert str(raised.value).startswith("invalid configuration for pools[a] (2 problem(s)):")


def test_a_where_function_is_called_only_when_there_is_a_problem() -> None:
    """Constructs pass ``lambda: self.node.path`` (two jsii round trips): a valid construct
    must not pay for it, an invalid one must still be named."""
    calls: list[str] = []

    def where() -> str:
        calls.append("called")
        return "Chart/Pool"

    Problems(where=where).raise_if_any()
    Problems().raise_if_any(where=where)
    assert calls == []

    problems = Problems()
    problems.add("port", 0, "must be a port number")
    with pytest.raises(ValidationError) as raised:
        problems.raise_if_any(where=where)
    assert calls == ["called"]
    assert raised.value.where == "Chart/Pool"
    # The error carries the string, so it still pickles (it crosses process boundaries).
    assert pickle.loads(pickle.dumps(raised.value)).where == "Chart/Pool"
