"""Kubernetes objects from typed structs, built in Python and handed to cdk8s as JSON.

The constructs keep writing their objects with cdk8s-plus' typed L1 structs (``k8s.PodSpec``,
``k8s.Container``, ...: mypy checks every field name). What changes is how a struct tree reaches
cdk8s: an L1 class such as ``k8s.KubeDeployment`` ships the whole tree through jsii, one
wire-format node per struct, each type-checked again in Node, and that was most of a worker
pool's synth time (``make bench``). :func:`kube_object` turns the tree into plain JSON in
Python instead (:func:`to_json`, using the name mapping jsii generates for every struct) and
creates a plain ``cdk8s.ApiObject`` with the body as JSON patches: a handful of round trips per
object instead of one per nested struct. The YAML is the same: cdk8s renders an L1 object's
fields under their Kubernetes names, drops unset ones and sorts keys, as :func:`to_json` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cdk8s
from cdk8s_plus_28 import k8s
from constructs import Construct

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


def kube_object(
    scope: Construct,
    id: str,
    kind: cdk8s.GroupVersionKind,
    *,
    metadata: k8s.ObjectMeta,
    **body: Any,
) -> cdk8s.ApiObject:
    """A Kubernetes object of ``kind`` (an L1 class's ``GVK``, e.g. ``k8s.KubeJob.GVK``) with
    ``metadata`` and the top-level fields in ``body`` (``spec=...``, ``data=...``), as typed
    structs or plain values. Its ``metadata`` handle works as on any ApiObject (``name``,
    ``add_label``, ...)."""
    extra = {
        name
        for name in metadata._values
        if name not in ("name", "namespace", "labels", "annotations")
    }
    if extra:
        raise ValueError(
            f"kube_object: metadata fields {sorted(extra)} are not supported here; set them "
            "with a JSON patch on the returned object"
        )
    obj = cdk8s.ApiObject(
        scope,
        id,
        api_version=kind.api_version,
        kind=kind.kind,
        metadata=cdk8s.ApiObjectMetadata(
            name=metadata.name,
            namespace=metadata.namespace,
            labels=metadata.labels,
            annotations=metadata.annotations,
        ),
    )
    patches = [
        cdk8s.JsonPatch.add(f"/{field}", to_json(value))
        for field, value in sorted(body.items())
        if value is not None
    ]
    if patches:
        obj.add_json_patch(*patches)
    return obj
