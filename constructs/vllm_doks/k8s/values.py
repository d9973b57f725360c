"""Cached Kubernetes value objects (Quantity, IntOrString).

Each ``k8s.Quantity.from_string(...)`` is a round trip to the jsii Node process (a few ms on
a small machine), and a worker pool needs a dozen of them. The objects are immutable values,
so one per distinct value serves every construct in the process.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from cdk8s_plus_28 import k8s

#: The value each object made here was made from, by object identity. The caches below are
#: unbounded, so every object lives as long as the process and its id is never reused while it
#: is in this table; reading ``.value`` back would be another round trip.
_RAW: dict[int, str | int] = {}


V = TypeVar("V", k8s.Quantity, k8s.IntOrString)


def _make(kind: type[V], value: str | int) -> V:
    made: V = kind.from_number(value) if isinstance(value, int) else kind.from_string(value)
    _RAW[id(made)] = value
    return made


@cache
def quantity(value: str | int) -> k8s.Quantity:
    """``16Gi``, ``500m`` or a whole number as a Kubernetes quantity."""
    return _make(k8s.Quantity, value)


@cache
def int_or_string(value: str | int) -> k8s.IntOrString:
    """A port number or name (or a count) as Kubernetes' IntOrString."""
    return _make(k8s.IntOrString, value)


def raw_value(value: k8s.Quantity | k8s.IntOrString) -> str | int:
    """The JSON value of a Quantity or IntOrString (from the table when made here)."""
    known = _RAW.get(id(value))
    if known is not None:
        return known
    raw = value.value
    if isinstance(raw, float):  # Quantity.value is typed str | float; ours are whole numbers
        return int(raw)
    return raw
