"""Kubernetes objects as ``kubernetes_manifest`` resources: identity, Terraform address, apply
order, and the manifest as Terraform should hold it. Plain Python over the objects cdk8s
synthesizes; the stack (``kubernetes_stack``) turns the result into resources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cdk8s

from vllm_doks import contracts
from vllm_doks.cold_start import AFTER_APPLY_LABEL, PROMOTION_GATE_LABEL
from vllm_doks.validation import Problems

if TYPE_CHECKING:
    from vllm_doks.cloud.stack_one import ChartBuilder, StackOneValues

#: Kinds without a namespace: a ``metadata.namespace`` on them is dropped (see for_terraform)
#: and is no ordering edge. Unlisted custom cluster-scoped kinds must not carry one.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "GatewayClass",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
        "VolumeSnapshotClass",
    }
)
#: Pod-creating kinds; they need their claims, Secrets, ConfigMaps and ServiceAccounts first.
WORKLOAD_KINDS = frozenset({"Job", "Deployment", "StatefulSet", "DaemonSet"})
#: What a workload mounts or references by name in its own namespace.
_WORKLOAD_INPUT_KINDS = frozenset(
    {"PersistentVolumeClaim", "Secret", "ConfigMap", "ServiceAccount"}
)
#: Long-running servers: they start only after every batch Job (the model download) completed.
_SERVER_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
_GATEWAY_GROUP = contracts.GATEWAY_API_GROUP
_ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"})

_SCALER_KINDS = contracts.SCALER_KINDS
_SCALE_TARGET_DEFAULT_KIND = contracts.SCALE_TARGET_DEFAULT_KIND
FOREGROUND_DELETION = contracts.FOREGROUND_DELETION_FINALIZER

#: Where cdktf embeds a string token; everything else in a manifest string is literal text.
_STRING_TOKEN = re.compile(r"\$\{TfToken\[[^\]]*\]\}")


@dataclass(frozen=True)
class KubeObject:
    """One synthesized Kubernetes object and the facts ordering needs."""

    manifest: dict[str, Any]
    api_version: str
    kind: str
    name: str
    namespace: str | None
    cid: str = ""
    """Construct id, hence Terraform address ``kubernetes_manifest.<cid>``."""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def is_batch_job(self) -> bool:
        return self.api_version == "batch/v1" and self.kind == "Job"

    @property
    def runs_after_apply(self) -> bool:
        """A Job checking the deployed endpoint (the smoke test): it comes last."""
        labels = (self.manifest.get("metadata") or {}).get("labels") or {}
        return self.is_batch_job and labels.get(AFTER_APPLY_LABEL) == "true"

    @property
    def gates_promotion(self) -> bool:
        """A canary's smoke test in the output that promotes the canary: the routes of its
        namespace come after it."""
        labels = (self.manifest.get("metadata") or {}).get("labels") or {}
        return self.is_batch_job and labels.get(PROMOTION_GATE_LABEL) == "true"

    @property
    def identity(self) -> tuple[str | None, str, str]:
        return (self.namespace, self.kind, self.name)

    @property
    def scale_target(self) -> tuple[str | None, str, str] | None:
        """Identity of the workload whose replica count this object (an autoscaler) owns."""
        if (self.group, self.kind) not in _SCALER_KINDS:
            return None
        spec = self.manifest.get("spec")
        ref = spec.get("scaleTargetRef") if isinstance(spec, Mapping) else None
        if not (isinstance(ref, Mapping) and isinstance(ref.get("name"), str)):
            return None
        # Both scalers only target objects in their own namespace.
        return (self.namespace, ref.get("kind") or _SCALE_TARGET_DEFAULT_KIND, ref["name"])


def escape_terraform_templates(value: Any) -> Any:
    """Make every string in ``value`` mean itself to Terraform, except cdktf tokens.

    Terraform reads every JSON string as a template, so a shell snippet such as
    ``${RUNNING:-0}`` in a container command would be taken as an interpolation: ``${`` and
    ``%{`` are doubled. A ``$`` right before a token would merge with the token's ``${`` into
    the escape ``$${``, so it is emitted as the interpolation ``${"$"}`` instead.
    """
    if isinstance(value, str):
        out: list[str] = []
        pos = 0
        for match in _STRING_TOKEN.finditer(value):
            literal = _escape_literal(value[pos : match.start()])
            bare = literal.rstrip("$")
            if bare != literal:
                literal = bare + '${"' + "$" * (len(literal) - len(bare)) + '"}'
            out.extend((literal, match.group()))
            pos = match.end()
        out.append(_escape_literal(value[pos:]))
        return "".join(out)
    if isinstance(value, Mapping):
        return {
            escape_terraform_templates(k): escape_terraform_templates(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [escape_terraform_templates(v) for v in value]
    return value


def _escape_literal(text: str) -> str:
    return text.replace("${", "$${").replace("%{", "%%{")


def synthesize_objects(build_chart: ChartBuilder, values: StackOneValues) -> list[dict[str, Any]]:
    """Build the charts in a fresh cdk8s App and return their objects, in cdk8s's order
    (charts topologically, objects by their dependencies), without writing any file."""
    app = cdk8s.App()
    build_chart(app, values)
    objects: list[dict[str, Any]] = []
    for chart in app.charts:
        objects.extend(chart.to_json())
    return objects


def describe_objects(raw: Sequence[Mapping[str, Any]], problems: Problems) -> list[KubeObject]:
    objects: list[KubeObject] = []
    for index, manifest in enumerate(raw):
        metadata = manifest.get("metadata") or {}
        api_version, kind, name = (
            manifest.get("apiVersion"),
            manifest.get("kind"),
            metadata.get("name"),
        )
        if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(name, str)):
            # kubernetes_manifest needs all three to address the object (no generateName).
            problems.add(
                f"objects[{index}]",
                {"apiVersion": api_version, "kind": kind, "name": name},
                "must have apiVersion, kind and metadata.name",
            )
            continue
        namespace = None if kind in CLUSTER_SCOPED_KINDS else metadata.get("namespace")
        objects.append(KubeObject(dict(manifest), api_version, kind, name, namespace))
    return objects


def slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower())


def construct_ids(objects: Sequence[KubeObject], problems: Problems) -> list[str]:
    """``<kind>-<name>`` (lowercase; Terraform addresses stay readable: ``job-model-download``),
    qualified by namespace only for objects whose kind and name occur in several."""

    plain = [slug(o.kind, o.name) for o in objects]
    ids = [
        slug(o.kind, o.namespace or "cluster", o.name) if plain.count(p) > 1 else p
        for o, p in zip(objects, plain, strict=True)
    ]
    seen: dict[str, KubeObject] = {}
    for o, cid in zip(objects, ids, strict=True):
        if cid in seen:
            problems.add(
                "objects",
                f"{o.kind}/{o.namespace or ''}/{o.name}",
                f"must be unique; it clashes with {seen[cid].kind}/{seen[cid].name} "
                f"(Terraform address kubernetes_manifest.{cid})",
            )
        seen[cid] = o
    return ids


def prerequisites(obj: KubeObject, objects: Sequence[KubeObject]) -> list[KubeObject]:
    """Objects that must exist before ``obj``, by kind (never by name): the seed's order
    namespace → PV → PVC → Secrets → Job (waited for) → Deployment → Service → Gateway →
    HTTPRoute, generalised so several stores, pools and endpoints order the same way."""
    if obj.kind == "Namespace":
        return []
    if obj.runs_after_apply:
        # The smoke test talks to the finished deployment: everything else comes first.
        return [o for o in objects if o is not obj and not o.runs_after_apply]
    if obj.gates_promotion:
        # The canary's smoke test, when the output promotes the canary: everything but the
        # routes (and the after-apply checks) first; the routes then wait for it.
        return [
            o
            for o in objects
            if o is not obj
            and not (o.runs_after_apply or o.gates_promotion)
            and o.kind not in _ROUTE_KINDS
        ]

    def same_namespace(o: KubeObject) -> bool:
        return o.namespace == obj.namespace

    def wanted(o: KubeObject) -> bool:
        if o is obj:
            return False
        if o.kind == "Namespace":
            # Its own namespace; cluster-scoped objects still come after every namespace.
            return obj.namespace is None or o.name == obj.namespace
        if obj.kind == "PersistentVolumeClaim" and o.kind == "PersistentVolume":
            return True
        if obj.kind in WORKLOAD_KINDS and o.kind in _WORKLOAD_INPUT_KINDS and same_namespace(o):
            return True
        if (
            obj.kind in _SERVER_KINDS
            and o.is_batch_job
            and not (o.runs_after_apply or o.gates_promotion)
        ):
            return True
        if obj.kind == "Service" and o.kind in _SERVER_KINDS and same_namespace(o):
            return True
        if obj.scale_target is not None and obj.scale_target == o.identity:
            return True
        if obj.group == _GATEWAY_GROUP:
            if obj.kind == "Gateway" and o.kind == "Service" and same_namespace(o):
                return True
            if obj.kind in _ROUTE_KINDS and o.kind == "Gateway" and o.group == _GATEWAY_GROUP:
                return True
            if obj.kind in _ROUTE_KINDS and o.gates_promotion and same_namespace(o):
                return True
        return False

    return [o for o in objects if wanted(o)]


def apply_order(
    objects: Sequence[KubeObject], prerequisites: Mapping[str, Sequence[KubeObject]]
) -> list[KubeObject]:
    """Objects sorted so each comes after its prerequisites; among ready objects cdk8s's order
    wins, so the result (and the JSON) is deterministic."""
    done: set[str] = set()
    order: list[KubeObject] = []
    remaining = list(objects)
    while remaining:
        ready = [o for o in remaining if all(p.cid in done for p in prerequisites[o.cid])]
        if not ready:  # the kind rules form no cycle; guard against future edits
            raise AssertionError(f"dependency cycle among {[o.cid for o in remaining]}")
        order.extend(ready)
        done.update(o.cid for o in ready)
        remaining = [o for o in remaining if o.cid not in done]
    return order


def for_terraform(obj: KubeObject) -> dict[str, Any]:
    """The manifest as kubernetes_manifest should hold it.

    Cluster-scoped objects lose a ``metadata.namespace`` (a cdk8s Chart's namespace lands on
    every object): the API server ignores it, but kubernetes_manifest refuses "Cluster level
    resource cannot take namespace".

    Jobs lose ``spec.ttlSecondsAfterFinished``: once the TTL controller deleted a finished Job,
    the provider's refresh finds it gone (read.go returns no state on NotFound) and every
    later plan would create it again, re-running the download and blocking ``apply`` on it.
    Terraform owns the Job's lifetime instead: it stays (Complete, with its pod's logs) until
    its spec changes or it leaves the configuration, and then Terraform deletes it.

    Jobs also carry the ``foregroundDeletion`` finalizer. kubernetes_manifest deletes with
    empty DeleteOptions (apply.go), and for batch/v1 the API server then orphans the Job's
    pods ("child pods are preserved by default when jobs are deleted";
    kubernetes/kubernetes pkg/registry/batch/job/storage/storage.go), so a replaced download
    would keep running beside its successor. A finalizer set on the object decides the
    propagation when the request sets none: the pods go first, the Job after, and the
    provider (which waits until the object is gone) creates the new Job only then. Checked
    against kube-apiserver 1.34.9 with its controllers: without it the pod stays, ownerless;
    with it the pod is deleted; an explicit ``kubectl delete`` still completes.
    """
    manifest = dict(obj.manifest)
    metadata = manifest.get("metadata")
    if (
        obj.kind in CLUSTER_SCOPED_KINDS
        and isinstance(metadata, Mapping)
        and "namespace" in metadata
    ):
        manifest["metadata"] = {k: v for k, v in metadata.items() if k != "namespace"}
    spec = manifest.get("spec")
    if obj.is_batch_job and isinstance(spec, Mapping) and "ttlSecondsAfterFinished" in spec:
        manifest["spec"] = {k: v for k, v in spec.items() if k != "ttlSecondsAfterFinished"}
    metadata = manifest.get("metadata")
    if obj.is_batch_job and isinstance(metadata, Mapping):
        finalizers = list(metadata.get("finalizers") or [])
        if FOREGROUND_DELETION not in finalizers:
            manifest["metadata"] = {**metadata, "finalizers": [*finalizers, FOREGROUND_DELETION]}
    return manifest
