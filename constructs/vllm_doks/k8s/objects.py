"""The Kubernetes JSON of cdk8s-plus' typed L1 structs, rendered in Python.

Where a construct needs the JSON of a struct tree before synthesis (e.g. to hash a pod
template into a Job's name), ``k8s.KubeJob.manifest(...)`` would ship the tree to the jsii Node
process and back. :func:`to_json` renders it in Python from the name mapping jsii generates for
every struct, as cdk8s renders an L1 object: fields under their Kubernetes names, unset ones
dropped, keys sorted (tests/k8s/test_objects.py compares the two).

Measured and rejected (``make bench``, 2 cores): creating the objects themselves this way (a
plain ``cdk8s.ApiObject`` plus JSON patches, or a Python ``to_json`` override) took more jsii
round trips than one L1 ``create`` and was slower per object; most of an L1 object's cost is
the typeguard checks in the structs' Python constructors, which any struct-based path pays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdk8s_plus_28 import k8s

from vllm_doks.k8s.values import raw_value


def to_json(value: Any) -> Any:
    """The Kubernetes JSON of a typed struct tree: fields under their Kubernetes names, unset
    (``None``) fields dropped, mapping keys sorted, as cdk8s renders an L1 object."""
    mapping: Mapping[str, str] | None = getattr(type(value), "__jsii_name_mapping__", None)
    if mapping is not None:
        # A struct keeps its set fields in ``_values`` (jsii's generated code reads them from
        # there too); its property getters would rebuild a typing.Optional[...] on every read,
        # which cost more than the rest of the conversion.
        fields = {mapping[name]: field for name, field in value._values.items()}
        return {key: to_json(fields[key]) for key in sorted(fields) if fields[key] is not None}
    if isinstance(value, Mapping):
        return {key: to_json(value[key]) for key in sorted(value) if value[key] is not None}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, (k8s.Quantity, k8s.IntOrString)):
        return raw_value(value)
    return value
