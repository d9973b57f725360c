"""Props ergonomics shared by every construct: props as an object *or* as keyword arguments,
and ``help()`` that shows each field's documentation and default.

Each Props class documents its fields with attribute docstrings (the string literal after a
field), which Python keeps nowhere at run time: ``help(VllmWorkerPoolProps)`` would show only
the class docstring. :func:`takes_props` reads them from the source once, when the construct
class is defined, and appends them to the Props class docstring. It also gives the construct
an ``__init__`` that accepts the Props fields as keyword arguments, as Python users of CDK
libraries expect, with a real ``inspect.signature`` (jsii's metaclass otherwise makes every
construct's signature ``(*args, **kwargs)``)::

    VllmWorkerPool(chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu"))
    VllmWorkerPool(chart, "Workers", model=model, gpu_node_pool_name="gpu")   # the same
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

C = TypeVar("C", bound=type)

_DOCUMENTED = "__vllm_doks_fields_documented__"


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass and its dataclass bases, by field name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # no source (e.g. a .pyc-only install)
            continue
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef)).body
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _type_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _fields_doc(props_cls: type, doc: str | None) -> str:
    docs = field_docs(props_cls)
    lines = [inspect.cleandoc(doc or props_cls.__name__), "", "Fields:", ""]
    for f in dataclasses.fields(props_cls):
        if not f.init:
            continue
        required = " (required)" if _is_required(f) else ""
        lines.append(f"{f.name}: {_type_name(f.type)}{required}")
        text = docs.get(f.name, "(no description)")
        lines.extend(textwrap.indent(text, "    ").splitlines())
    return "\n".join(lines)


class _FieldsDocstring:
    """A Props class's ``__doc__``, written on first read: the class docstring followed by
    every field (type, required or not, documentation).

    Reading the field documentation means parsing the class's module source, which at import
    time cost every process that imports the library (a synth, every test worker) tens of
    milliseconds; ``help()`` and ``inspect.getdoc`` read ``__doc__`` and so get the full text.
    (CPython gives a heap type's ``__doc__`` through the stored object's ``__get__``.)
    """

    def __init__(self, doc: str | None) -> None:
        self._doc = doc
        self._text: str | None = None

    def __get__(self, obj: object, owner: type | None = None) -> str:
        if self._text is None:
            cls = owner if owner is not None else type(obj)
            self._text = _fields_doc(cls, self._doc)
        return self._text


def document_fields(props_cls: type) -> None:
    """Append every field (type, required or not, documentation) to ``props_cls.__doc__``
    (when it is first read)."""
    if props_cls.__dict__.get(_DOCUMENTED):
        return
    props_cls.__doc__ = _FieldsDocstring(props_cls.__dict__.get("__doc__"))  # type: ignore[assignment]
    setattr(props_cls, _DOCUMENTED, True)


def takes_props(props_cls: type) -> Callable[[C], C]:
    """Class decorator for a construct whose ``__init__(self, scope, id, props)`` takes a
    frozen keyword-only Props dataclass: the construct then also accepts the Props fields as
    keyword arguments instead of ``props`` (not both), and ``help()`` / ``inspect.signature``
    show them."""
    document_fields(props_cls)

    def decorate(construct_cls: C) -> C:
        init = construct_cls.__init__  # type: ignore[misc]
        self_param, scope_param, id_param, props_param = list(
            inspect.signature(init).parameters.values()
        )[:4]
        props_optional = props_param.default is not inspect.Parameter.empty
        fields = [f for f in dataclasses.fields(props_cls) if f.init]

        @functools.wraps(init)
        def __init__(self: Any, scope: Any, id: str, props: Any = None, **kwargs: Any) -> None:
            if kwargs:
                if props is not None:
                    raise TypeError(
                        f"{construct_cls.__name__}(): pass either props or its fields as "
                        f"keyword arguments, not both (got props and {', '.join(kwargs)})"
                    )
                props = props_cls(**kwargs)
            elif props is None and not props_optional:
                props = props_cls()  # names the missing required fields
            if props is None:
                init(self, scope, id)
            else:
                init(self, scope, id, props)

        keyword = [
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if _is_required(f) else _default(f),
                annotation=f.type,
            )
            for f in fields
        ]
        props_positional = props_param.replace(
            default=None, annotation=f"{props_cls.__name__} | None"
        )
        params = [scope_param, id_param, props_positional, *keyword]
        __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [self_param, *params], return_annotation=None
        )
        construct_cls.__init__ = __init__  # type: ignore[misc]
        # inspect.signature(cls) looks at the class before jsii's metaclass __call__.
        construct_cls.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        construct_cls.__doc__ = (
            inspect.cleandoc(construct_cls.__doc__ or construct_cls.__name__)
            + f"\n\nProps: a :class:`{props_cls.__name__}`, or its fields as keyword arguments "
            f"(see ``help({props_cls.__name__})``)."
        )
        return construct_cls

    return decorate


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    factory: Callable[[], Any] = f.default_factory  # type: ignore[assignment]
    return factory()


def same_named(source: object, props_cls: type, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``props_cls`` (a dataclass): every init field that ``source``
    has an attribute of the same name for, from that attribute, then ``overrides``. The
    configuration names its inputs as the props do, so the app's wiring states only where
    they differ; an override naming no field of ``props_cls`` is refused."""
    names = [f.name for f in dataclasses.fields(props_cls) if f.init]
    unknown = set(overrides) - set(names)
    if unknown:
        raise TypeError(f"{props_cls.__name__} has no field {', '.join(sorted(unknown))}")
    values = {name: getattr(source, name) for name in names if hasattr(source, name)}
    return {**values, **overrides}
