"""Cached Kubernetes value objects (Quantity, IntOrString).

Each ``k8s.Quantity.from_string(...)`` is a round trip to the jsii Node process (a few ms on
a small machine), and a worker pool needs a dozen of them. The objects are immutable values,
so one per distinct value serves every construct in the process.
"""

from __future__ import annotations

from functools import lru_cache

from cdk8s_plus_28 import k8s


@lru_cache(maxsize=256)
def quantity(value: str | int) -> k8s.Quantity:
    """``16Gi``, ``500m`` or a whole number as a Kubernetes quantity."""
    if isinstance(value, int):
        return k8s.Quantity.from_number(value)
    return k8s.Quantity.from_string(value)


@lru_cache(maxsize=256)
def int_or_string(value: str | int) -> k8s.IntOrString:
    """A port number or name (or a count) as Kubernetes' IntOrString."""
    if isinstance(value, int):
        return k8s.IntOrString.from_number(value)
    return k8s.IntOrString.from_string(value)
