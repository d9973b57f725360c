"""VllmKubernetesStack: the seed's Stack 2 through Terraform, from the cdk8s constructs.

The seed's alternative to ``cdk8s synth`` + ``kubectl apply``: a second Terraform stack that
reads Stack 1's outputs from its state, points the Kubernetes provider at the DOKS cluster and
applies every object as a ``kubernetes_manifest``, waiting for the model download Job to
complete before the vLLM Deployment is created.

The objects are not written twice. The caller passes a function that builds its cdk8s
chart(s) into an App; Stack 1's values reach that function as cdktf token strings. cdktf and
cdk8s share one jsii kernel and cdk8s leaves foreign strings alone, so the tokens survive
``Chart.to_json()`` and cdktf resolves them to ``${data.terraform_remote_state...}`` at synth.

This module imports the Kubernetes provider bindings, whose load alone takes seconds; nothing
imports it eagerly (``vllm_doks.cloud`` does not), so only a synth that uses it pays.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from cdktf import (
    DataTerraformRemoteStateLocal,
    DataTerraformRemoteStateS3,
    Fn,
    ITerraformDependable,
    TerraformOutput,
    TerraformRemoteState,
    TerraformStack,
    TerraformVariable,
)
from cdktf_cdktf_provider_digitalocean.data_digitalocean_kubernetes_cluster import (
    DataDigitaloceanKubernetesCluster,
)
from cdktf_cdktf_provider_digitalocean.provider import DigitaloceanProvider
from cdktf_cdktf_provider_kubernetes.manifest import (
    Manifest,
    ManifestTimeouts,
    ManifestWait,
    ManifestWaitCondition,
)
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from constructs import Construct

from vllm_doks.cloud.infra_props import SpacesStateBackend
from vllm_doks.cloud.model_share import DIGITALOCEAN_PROVIDER_CONSTRAINT
from vllm_doks.cloud.state_backend import apply_state_backend, portable_local_state_path
from vllm_doks.cold_start import AFTER_APPLY_LABEL
from vllm_doks.config import STACK2_OUTPUT_DESCRIPTIONS
from vllm_doks.validation import Problems, check_dns_label, check_dns_subdomain

#: The seed's Stack 2 outputs (its Outputs table), shared with the Kubernetes synth's report.
KUBERNETES_OUTPUT_DESCRIPTIONS = STACK2_OUTPUT_DESCRIPTIONS

#: Name of the Terraform variable holding the Hugging Face token (the seed's ``hf_token``).
HF_TOKEN_VARIABLE = "hf_token"

#: Construct id of the remote-state data source: ``data.terraform_remote_state.infra``.
REMOTE_STATE_ID = "infra"

#: Kinds without a namespace: a ``metadata.namespace`` on them is dropped (see _for_terraform)
#: and is no ordering edge. Unlisted custom cluster-scoped kinds must not carry one.
_CLUSTER_SCOPED_KINDS = frozenset(
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
_WORKLOAD_KINDS = frozenset({"Job", "Deployment", "StatefulSet", "DaemonSet"})
#: What a workload mounts or references by name in its own namespace.
_WORKLOAD_INPUT_KINDS = frozenset(
    {"PersistentVolumeClaim", "Secret", "ConfigMap", "ServiceAccount"}
)
#: Long-running servers: they start only after every batch Job (the model download) completed.
_SERVER_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
_GATEWAY_GROUP = "gateway.networking.k8s.io"
_ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"})

#: Where cdktf embeds a string token; everything else in a manifest string is literal text.
_STRING_TOKEN = re.compile(r"\$\{TfToken\[[^\]]*\]\}")
#: Terraform durations, as ``timeouts`` accepts them (e.g. ``60m``, ``1h30m``).
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_STACK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class StackOneValues:
    """Stack 1's outputs as Terraform references, for a chart builder to place in objects.

    Each is a cdktf token *string* (``${TfToken[...]}``) that becomes
    ``${data.terraform_remote_state.infra.outputs.<name>}`` in the synthesized JSON. Use them
    only as (parts of) strings: ``f"{values.nfs_size_gb}Gi"`` works, ``int(...)`` cannot.
    """

    cluster_name: str
    nfs_host: str
    nfs_mount_path: str
    nfs_size_gb: str
    """Size of the share in GB, as a string token (a number token would not survive cdk8s)."""
    gpu_node_pool_name: str
    remote_state: TerraformRemoteState = field(repr=False, compare=False)

    def output(self, name: str) -> str:
        """Any other Stack 1 output, as a string token."""
        return self.remote_state.get_string(name)


#: Builds the Kubernetes objects (one or more cdk8s Charts) into the given App.
ChartBuilder = Callable[[cdk8s.App, StackOneValues], object]


@dataclass(frozen=True, kw_only=True)
class HfTokenSecret:
    """Where the optional Hugging Face token Secret goes (the seed's ``hf-token``)."""

    namespace: str = "vllm"
    name: str = "hf-token"
    key: str = "HF_TOKEN"

    def problems(self, field_prefix: str) -> Problems:
        problems = Problems()
        check_dns_label(problems, f"{field_prefix}.namespace", self.namespace)
        check_dns_subdomain(problems, f"{field_prefix}.name", self.name)
        problems.check(
            isinstance(self.key, str) and bool(_SECRET_KEY.match(self.key)),
            f"{field_prefix}.key",
            self.key,
            "must be a Secret data key: letters, digits, '-', '_' and '.'",
        )
        return problems


@dataclass(frozen=True, kw_only=True)
class KubernetesObjectsStackProps:
    """Inputs of :class:`VllmKubernetesStack`."""

    build_chart: ChartBuilder
    """Adds the chart(s) to the cdk8s App it is given, using the Stack 1 values it is given."""
    outputs: Mapping[str, str | int]
    """Values of the seed's eight Stack 2 outputs (see KUBERNETES_OUTPUT_DESCRIPTIONS)."""
    infra_stack_name: str = "vllm-infra"
    """Stack 1's stack name; locates its portable local state file."""
    infra_state: SpacesStateBackend | None = None
    """Where Stack 1 keeps its state: ``None`` for the portable local file, else its Spaces
    backend (same bucket, key and region as Stack 1 was given)."""
    state_key: str = "vllm-doks/kubernetes.tfstate"
    """This stack's own object key when state lives in Spaces (same bucket as Stack 1)."""
    hf_token_secret: HfTokenSecret | None = HfTokenSecret()
    """Secret created from ``var.hf_token`` when it is set; ``None`` for no variable."""
    job_timeout: str = "60m"
    """How long ``apply`` waits for each Job to complete (the seed allows 60 minutes)."""

    @property
    def own_state(self) -> SpacesStateBackend | None:
        """This stack's backend: beside Stack 1's state, under ``state_key`` in Spaces."""
        if self.infra_state is None:
            return None
        return dataclasses.replace(self.infra_state, key=self.state_key)

    def problems(self, stack_name: str) -> Problems:
        problems = Problems()
        problems.check(
            callable(self.build_chart),
            "build_chart",
            self.build_chart,
            "must be a function (cdk8s.App, StackOneValues) that adds the chart(s)",
        )
        given = set(self.outputs)
        missing = [k for k in KUBERNETES_OUTPUT_DESCRIPTIONS if k not in given]
        unknown = sorted(given - set(KUBERNETES_OUTPUT_DESCRIPTIONS))
        if missing:
            problems.add("outputs", sorted(given), f"is missing {', '.join(missing)}")
        if unknown:
            problems.add(
                "outputs",
                unknown,
                f"are not Stack 2 outputs; known: {', '.join(KUBERNETES_OUTPUT_DESCRIPTIONS)}",
            )
        for key, value in self.outputs.items():
            problems.check(
                isinstance(value, (str, int)) and not isinstance(value, bool),
                f"outputs.{key}",
                value,
                "must be a string or a whole number",
            )
        if problems.check(
            isinstance(self.infra_stack_name, str)
            and bool(_STACK_NAME.match(self.infra_stack_name)),
            "infra_stack_name",
            self.infra_stack_name,
            "must be a stack name: letters, digits, '-' and '_'",
        ):
            problems.check(
                self.infra_stack_name != stack_name,
                "infra_stack_name",
                self.infra_stack_name,
                f"must name Stack 1, not this stack ({stack_name})",
            )
        if self.infra_state is not None:
            problems.extend(self.infra_state.problems("infra_state").items)
            problems.check(
                bool(self.state_key)
                and not self.state_key.startswith("/")
                and self.state_key != self.infra_state.key,
                "state_key",
                self.state_key,
                f"must be a non-empty object key without a leading '/', different from "
                f"Stack 1's ({self.infra_state.key})",
            )
        if self.hf_token_secret is not None:
            problems.extend(self.hf_token_secret.problems("hf_token_secret").items)
        problems.check(
            isinstance(self.job_timeout, str) and bool(_DURATION.match(self.job_timeout)),
            "job_timeout",
            self.job_timeout,
            "must be a Terraform duration such as 60m or 1h30m",
        )
        return problems


@dataclass(frozen=True)
class _Object:
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


def _describe(raw: Sequence[Mapping[str, Any]], problems: Problems) -> list[_Object]:
    objects: list[_Object] = []
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
        namespace = None if kind in _CLUSTER_SCOPED_KINDS else metadata.get("namespace")
        objects.append(_Object(dict(manifest), api_version, kind, name, namespace))
    return objects


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower())


def _construct_ids(objects: Sequence[_Object], problems: Problems) -> list[str]:
    """``<kind>-<name>`` (lowercase; Terraform addresses stay readable: ``job-model-download``),
    qualified by namespace only for objects whose kind and name occur in several."""

    plain = [_slug(o.kind, o.name) for o in objects]
    ids = [
        _slug(o.kind, o.namespace or "cluster", o.name) if plain.count(p) > 1 else p
        for o, p in zip(objects, plain, strict=True)
    ]
    seen: dict[str, _Object] = {}
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


def _prerequisites(obj: _Object, objects: Sequence[_Object]) -> list[_Object]:
    """Objects that must exist before ``obj``, by kind (never by name): the seed's order
    namespace → PV → PVC → Secrets → Job (waited for) → Deployment → Service → Gateway →
    HTTPRoute, generalised so several stores, pools and endpoints order the same way."""
    if obj.kind == "Namespace":
        return []
    if obj.runs_after_apply:
        # The smoke test talks to the finished deployment: everything else comes first.
        return [o for o in objects if o is not obj and not o.runs_after_apply]

    def same_namespace(o: _Object) -> bool:
        return o.namespace == obj.namespace

    def wanted(o: _Object) -> bool:
        if o is obj:
            return False
        if o.kind == "Namespace":
            # Its own namespace; cluster-scoped objects still come after every namespace.
            return obj.namespace is None or o.name == obj.namespace
        if obj.kind == "PersistentVolumeClaim" and o.kind == "PersistentVolume":
            return True
        if obj.kind in _WORKLOAD_KINDS and o.kind in _WORKLOAD_INPUT_KINDS and same_namespace(o):
            return True
        if obj.kind in _SERVER_KINDS and o.is_batch_job and not o.runs_after_apply:
            return True
        if obj.kind == "Service" and o.kind in _SERVER_KINDS and same_namespace(o):
            return True
        if obj.group == _GATEWAY_GROUP:
            if obj.kind == "Gateway" and o.kind == "Service" and same_namespace(o):
                return True
            if obj.kind in _ROUTE_KINDS and o.kind == "Gateway" and o.group == _GATEWAY_GROUP:
                return True
        return False

    return [o for o in objects if wanted(o)]


def _apply_order(
    objects: Sequence[_Object], prerequisites: Mapping[str, Sequence[_Object]]
) -> list[_Object]:
    """Objects sorted so each comes after its prerequisites; among ready objects cdk8s's order
    wins, so the result (and the JSON) is deterministic."""
    done: set[str] = set()
    order: list[_Object] = []
    remaining = list(objects)
    while remaining:
        ready = [o for o in remaining if all(p.cid in done for p in prerequisites[o.cid])]
        if not ready:  # the kind rules form no cycle; guard against future edits
            raise AssertionError(f"dependency cycle among {[o.cid for o in remaining]}")
        order.extend(ready)
        done.update(o.cid for o in ready)
        remaining = [o for o in remaining if o.cid not in done]
    return order


def _for_terraform(obj: _Object) -> dict[str, Any]:
    """The manifest as kubernetes_manifest accepts it. Cluster-scoped objects lose a
    ``metadata.namespace`` (a cdk8s Chart's namespace lands on every object): the API server
    ignores it, but kubernetes_manifest refuses "Cluster level resource cannot take namespace"."""
    metadata = obj.manifest.get("metadata")
    if (
        obj.kind in _CLUSTER_SCOPED_KINDS
        and isinstance(metadata, Mapping)
        and "namespace" in metadata
    ):
        return {
            **obj.manifest,
            "metadata": {k: v for k, v in metadata.items() if k != "namespace"},
        }
    return obj.manifest


class VllmKubernetesStack(TerraformStack):
    """Stack 2 of the reference architecture as Terraform: Stack 1's outputs from its state,
    the Kubernetes provider on the DOKS cluster, one ``kubernetes_manifest`` per object of
    the given chart(s) in dependency order, Jobs waited for, and the seed's eight outputs."""

    def __init__(self, scope: Construct, id: str, props: KubernetesObjectsStackProps) -> None:
        super().__init__(scope, id)
        problems = props.problems(id)
        problems.where = self.node.path
        problems.raise_if_any()
        self.props = props

        DigitaloceanProvider(self, "digitalocean")
        # Same provider range as Stack 1, so both stacks can share one provider download.
        self.add_override(
            "terraform.required_providers.digitalocean.version", DIGITALOCEAN_PROVIDER_CONSTRAINT
        )
        apply_state_backend(self, id, props.own_state)
        self.remote_state = self._remote_state(props.infra_state, props.infra_stack_name)
        self.values = StackOneValues(
            cluster_name=self.remote_state.get_string("cluster_name"),
            nfs_host=self.remote_state.get_string("nfs_host"),
            nfs_mount_path=self.remote_state.get_string("nfs_mount_path"),
            nfs_size_gb=self.remote_state.get_string("nfs_size_gb"),
            gpu_node_pool_name=self.remote_state.get_string("gpu_node_pool_name"),
            remote_state=self.remote_state,
        )

        # The standard DOKS pattern: a short-lived token from the cluster's kubeconfig, read
        # at plan time, so no kubeconfig file is needed on the machine running Terraform.
        self.cluster = DataDigitaloceanKubernetesCluster(
            self, "cluster", name=self.values.cluster_name
        )
        kube_config = self.cluster.kube_config.get(0)
        KubernetesProvider(
            self,
            "kubernetes",
            host=self.cluster.endpoint,
            token=kube_config.token,
            cluster_ca_certificate=Fn.base64decode(kube_config.cluster_ca_certificate),
        )

        chart_problems = Problems(where=self.node.path)
        raw = synthesize_objects(props.build_chart, self.values)
        chart_problems.check(
            bool(raw),
            "build_chart",
            getattr(props.build_chart, "__name__", props.build_chart),
            "must add at least one Kubernetes object to the App",
        )
        described = _describe(raw, chart_problems)
        ids = _construct_ids(described, chart_problems)
        objects = [dataclasses.replace(o, cid=c) for o, c in zip(described, ids, strict=True)]
        secret = props.hf_token_secret
        if secret is not None:
            for o in objects:
                chart_problems.check(
                    not (
                        o.kind == "Secret"
                        and o.name == secret.name
                        and o.namespace == secret.namespace
                    ),
                    "hf_token_secret",
                    f"{secret.namespace}/{secret.name}",
                    "must not also be an object of the chart (one owner per Secret); set "
                    "hf_token_secret=None or rename one",
                )
        chart_problems.raise_if_any()

        self.hf_token: TerraformVariable | None = None
        self.hf_token_secret: SecretV1 | None = None
        self.manifests: dict[str, Manifest] = {}
        # Created in apply order so every depends_on names a resource that already exists
        # (cdktf renders a dependency only from the constructor argument).
        prerequisites = {o.cid: _prerequisites(o, objects) for o in objects}
        for obj in _apply_order(objects, prerequisites):
            depends_on: list[ITerraformDependable] = [
                self.manifests[o.cid] for o in prerequisites[obj.cid]
            ]
            if (
                secret is not None
                and obj.kind in _WORKLOAD_KINDS
                and obj.namespace == secret.namespace
            ):
                depends_on.append(self._hf_token_secret(secret))
            self.manifests[obj.cid] = Manifest(
                self,
                obj.cid,
                manifest=escape_terraform_templates(_for_terraform(obj)),
                depends_on=depends_on or None,
                **self._manifest_options(obj, props),
            )
        if secret is not None:
            self._hf_token_secret(secret)

        for name, description in KUBERNETES_OUTPUT_DESCRIPTIONS.items():
            TerraformOutput(self, name, value=props.outputs[name], description=description)

    def _remote_state(
        self, infra_state: SpacesStateBackend | None, infra_stack_name: str
    ) -> TerraformRemoteState:
        if infra_state is None:
            # Relative to this stack's working dir, like Stack 1's own portable backend: the
            # JSON stays free of machine paths and both land in the project root.
            return DataTerraformRemoteStateLocal(
                self, REMOTE_STATE_ID, path=portable_local_state_path(infra_stack_name)
            )
        # Same S3 settings as Stack 1's backend (state_backend.apply_state_backend); the
        # Spaces access key comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY at plan time.
        return DataTerraformRemoteStateS3(self, REMOTE_STATE_ID, **infra_state.s3_settings())

    def _hf_token_secret(self, secret: HfTokenSecret) -> SecretV1:
        """The variable and the Secret, created once, after the Secret's Namespace object."""
        if self.hf_token_secret is not None:
            return self.hf_token_secret
        self.hf_token = TerraformVariable(
            self,
            HF_TOKEN_VARIABLE,
            type="string",
            default="",
            sensitive=True,
            description="HuggingFace API token for gated models",
        )
        namespace = self.manifests.get(_slug("Namespace", secret.namespace))
        self.hf_token_secret = SecretV1(
            self,
            "hf_token_secret",
            metadata=SecretV1Metadata(name=secret.name, namespace=secret.namespace),
            # kubernetes_secret_v1 base64-encodes and marks ``data`` sensitive itself; the
            # JSON holds only the variable reference, never the token.
            data={secret.key: self.hf_token.string_value},
            type="Opaque",
            depends_on=[namespace] if namespace is not None else None,
        )
        # Only when a token was given (the seed: "(Optional) Creates Kubernetes secret").
        # Written as an override: cdktf renders the literal "" of Op.neq as `undefined`.
        self.hf_token_secret.add_override("count", f'${{var.{HF_TOKEN_VARIABLE} != "" ? 1 : 0}}')
        return self.hf_token_secret

    @staticmethod
    def _manifest_options(obj: _Object, props: KubernetesObjectsStackProps) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if obj.is_batch_job:
            # The seed's Stack 2: `apply` blocks until the download finished, so the
            # Deployment (which depends on the Job) never starts against an empty share.
            # The Job keeps its ttlSecondsAfterFinished, as in the seed: once the TTL
            # controller deleted it, the next apply runs it again, which re-checks the share
            # (quick when the files are there) and is how a changed model gets downloaded,
            # since a Job's pod template cannot be updated in place.
            options["wait"] = ManifestWait(
                condition=[ManifestWaitCondition(type="Complete", status="True")]
            )
            options["timeouts"] = ManifestTimeouts(create=props.job_timeout)
        if obj.kind == "Secret" and "stringData" in obj.manifest:
            # The API server folds stringData into data and drops it; without this every
            # plan would show a diff (the defaults are kept alongside).
            options["computed_fields"] = ["metadata.annotations", "metadata.labels", "stringData"]
        return options
