"""Making Kubernetes objects and their typed structs fast, and their JSON in Python.

A worker pool makes ten objects from some sixty typed structs (``k8s.Container``,
``k8s.ObjectMeta``, ...). Made the generated way, they cost more than the rest of a pool's
synthesis (``make bench``, 2 cores: 27 ms a pool that way, 12 ms this way), for two reasons
that have nothing to do with the objects:

* every struct constructor runs typeguard over each argument (jsii's Python code does so
  whenever ``__debug__`` is on, i.e. always, short of ``python -O``);
* every object ships its struct tree to the jsii Node process by reading each field of each
  struct through its property getter, which builds a ``typing.Optional[...]`` per read.

:func:`struct` makes a struct without the runtime check: mypy checks the fields against the
struct's constructor at the call site (the ``ParamSpec``), and jsii's Node side checks every
value against the struct's type when the object is made. :func:`api_object` makes an L1
object from a tree of such structs with one jsii ``create``, sending the tree as plain JSON
read from the structs' stored fields. Both rely on jsii's generated layout (a struct keeps its
set fields in ``_values``, its ``__jsii_name_mapping__`` maps Python to jsii names; an object is
made with ``jsii.create(cls, self, [scope, id, props])``), which tests/k8s/test_objects.py pins
against the generated constructors: same fields, same synthesized objects.

The library's code reaches both through :mod:`vllm_doks.k8s.kube` (``kube.Container(...)``:
cdk8s-plus' classes under their own names, typed for mypy as the originals) and
:mod:`vllm_doks.k8s.bindings` (the CRD bindings, each loaded on first use), both built on
:class:`Unchecked`; tests/k8s/test_objects.py fails if a module calls a generated constructor.

Measured and rejected before: a plain ``cdk8s.ApiObject`` plus JSON patches or a Python
``to_json`` override (more round trips than one ``create``).

:func:`to_json` renders a struct tree as cdk8s renders an L1 object, without the round trip
``k8s.KubeJob.manifest(...)`` would take (e.g. to hash a pod template into a Job's name).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from functools import cache, partial
from typing import Any, ParamSpec, TypeVar, cast

import cdk8s
import jsii
from cdk8s_plus_28 import k8s

from vllm_doks.k8s.values import raw_value

P = ParamSpec("P")
S = TypeVar("S")


def struct(kind: Callable[P, S], /, *args: P.args, **fields: P.kwargs) -> S:
    """``kind(**fields)``, a jsii struct, without jsii's runtime typeguard check (see the
    module). Unset (``None``) fields are left out, as the generated constructor does."""
    if args:
        raise TypeError(f"{kind!r} takes keyword arguments only")
    names: Mapping[str, str] = cast(Any, kind).__jsii_name_mapping__
    unknown = fields.keys() - names.keys()
    if unknown:  # mypy says so at the call site; this is for callers it does not check
        raise TypeError(f"{kind!r} has no fields {sorted(unknown)}; it takes {sorted(names)}")
    made = cast(Any, kind).__new__(kind)
    made._values = {name: value for name, value in fields.items() if value is not None}
    return cast(S, made)


def api_object(kind: Callable[P, S], /, *args: P.args, **props: P.kwargs) -> S:
    """``kind(scope, id, **props)``, an L1 object (``k8s.KubeDeployment``, a Gateway API
    ``HttpRoute``, ...), made with one jsii call and its struct tree sent as JSON (see the
    module)."""
    scope, id = args  # what every L1 constructor takes before its keyword-only props
    names = _prop_names(cast(type, kind))
    unknown = sorted(set(props) - set(names))
    if unknown:  # jsii's Node side would drop them without a word
        raise TypeError(f"{kind!r} has no props {unknown}; it takes {sorted(names)}")
    body = {names[name]: _jsii_json(value) for name, value in props.items() if value is not None}
    made = cast(Any, kind).__new__(kind)
    jsii.create(type(made), made, [scope, id, body])
    return cast(S, made)


@cache
def _prop_names(kind: type) -> Mapping[str, str]:
    """An L1 class's props by Python and jsii name (``role_ref`` -> ``roleRef``), from the
    ``<Class>Props`` struct that jsii and ``cdk8s import`` generate beside every class."""
    props = getattr(sys.modules[kind.__module__], f"{kind.__name__}Props")
    mapping: Mapping[str, str] = props.__jsii_name_mapping__
    return mapping


def _fields(value: Any) -> Mapping[str, Any] | None:
    """A struct's set fields by their jsii (Kubernetes) names; ``None`` for a non-struct."""
    mapping: Mapping[str, str] | None = getattr(type(value), "__jsii_name_mapping__", None)
    if mapping is None:
        return None
    # Its stored fields, not its property getters (see the module).
    return {mapping[name]: field for name, field in value._values.items()}


def _jsii_json(value: Any) -> Any:
    """A struct tree as JSON for jsii: jsii objects (``Quantity``, ...) stay references."""
    fields = _fields(value)
    if fields is None and isinstance(value, Mapping):
        fields = value
    if fields is not None:
        return {key: _jsii_json(item) for key, item in fields.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return [_jsii_json(item) for item in value]
    return value


def to_json(value: Any) -> Any:
    """The Kubernetes JSON of a typed struct tree: fields under their Kubernetes names, unset
    (``None``) fields dropped, mapping keys sorted, as cdk8s renders an L1 object."""
    fields = _fields(value)
    if fields is None and isinstance(value, Mapping):
        fields = value
    if fields is not None:
        return {key: to_json(fields[key]) for key in sorted(fields) if fields[key] is not None}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, (k8s.Quantity, k8s.IntOrString)):
        return raw_value(value)
    return value


def unchecked(kind: Any) -> Any:
    """``kind`` made the fast way when it is a struct (:func:`struct`) or an L1 object
    (:func:`api_object`); anything else (``Quantity``, an enum) as it is."""
    if getattr(kind, "__jsii_name_mapping__", None) is not None:
        return partial(struct, kind)
    if isinstance(kind, type) and issubclass(kind, cdk8s.ApiObject):
        return partial(api_object, kind)
    return kind


class Unchecked:
    """A jsii module's names through :func:`unchecked`, the module imported on first use:
    ``Unchecked("vllm_doks._imports.sh.keda").ScaledObjectSpec(...)`` is a fast
    ``ScaledObjectSpec``. Each name is looked up once, then kept."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        made = unchecked(getattr(importlib.import_module(self._module), name))
        setattr(self, name, made)
        return made
