"""VllmKubernetesStack: the seed's Stack 2 through Terraform, from the cdk8s constructs.

The seed's alternative to ``cdk8s synth`` + ``kubectl apply``: a second Terraform stack that
reads Stack 1's outputs from its state, points the Kubernetes provider at the DOKS cluster and
applies every object as a ``kubernetes_manifest``, waiting for the model download Job to
complete before the vLLM Deployment is created.

The objects are not written twice. The caller passes a function that builds its cdk8s
chart(s) into an App; Stack 1's values reach that function as cdktf token strings. cdktf and
cdk8s share one jsii kernel and cdk8s leaves foreign strings alone, so the tokens survive
``Chart.to_json()`` and cdktf resolves them to ``${data.terraform_remote_state...}`` at synth.

The work is split by concern: ``stack_one`` (remote state, provider on the cluster),
``kubernetes_objects`` (identity, addresses, order, the manifest as Terraform holds it),
``variable_secrets`` (Secrets from sensitive variables); this module composes them and sets
the ``kubernetes_manifest`` options. Its public names stay importable from here.

The DigitalOcean and Kubernetes provider bindings take some 6 s to load on a 2-core machine;
this module and the ones it composes import them where the stack is built, so importing it
(for its Props, a signature, the public names) costs cdktf alone, and nothing imports it
eagerly (``vllm_doks.cloud`` does not): only a synth that builds the stack pays.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdktf import (
    DataResource,
    ITerraformDependable,
    TerraformOutput,
    TerraformResourceLifecycle,
    TerraformStack,
    TerraformVariable,
)
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.cloud.infra_props import SpacesStateBackend
from vllm_doks.cloud.kubernetes_objects import (
    WORKLOAD_KINDS,
    KubeObject,
    apply_order,
    construct_ids,
    describe_objects,
    escape_terraform_templates,
    for_terraform,
    prerequisites,
    slug,
    synthesize_objects,
)
from vllm_doks.cloud.stack_one import (
    REMOTE_STATE_ID,
    ChartBuilder,
    StackOneValues,
    kubernetes_provider_for,
    read_stack_one,
)
from vllm_doks.cloud.state_backend import apply_state_backend
from vllm_doks.cloud.variable_secrets import (
    API_KEY_VARIABLE,
    HF_TOKEN_VARIABLE,
    ApiKeySecret,
    HfTokenSecret,
    SecretFromVariable,
    VariableSecret,
    add_variable_secret,
)
from vllm_doks.contracts import DIGITALOCEAN_PROVIDER_CONSTRAINT
from vllm_doks.handoff import STACK2_OUTPUT_DESCRIPTIONS
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_dns_label, check_dns_subdomain

if TYPE_CHECKING:
    from cdktf_cdktf_provider_kubernetes.manifest import Manifest
    from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1

__all__ = [
    "API_KEY_VARIABLE",
    "HF_TOKEN_VARIABLE",
    "KUBERNETES_OUTPUT_DESCRIPTIONS",
    "MANIFEST_DEFAULT_COMPUTED_FIELDS",
    "REMOTE_STATE_ID",
    "TERRAFORM_DATA_REQUIRED_VERSION",
    "ApiKeySecret",
    "ChartBuilder",
    "HfTokenSecret",
    "KubernetesObjectsStackProps",
    "StackOneValues",
    "VllmKubernetesStack",
    "escape_terraform_templates",
    "synthesize_objects",
]

#: The seed's Stack 2 outputs (its Outputs table), shared with the Kubernetes synth's report.
KUBERNETES_OUTPUT_DESCRIPTIONS = STACK2_OUTPUT_DESCRIPTIONS

# Contracts of the hashicorp/kubernetes provider and Terraform, re-exported from their one place.
MANIFEST_DEFAULT_COMPUTED_FIELDS = contracts.MANIFEST_DEFAULT_COMPUTED_FIELDS
TERRAFORM_DATA_REQUIRED_VERSION = contracts.TERRAFORM_DATA_REQUIRED_VERSION

#: Terraform durations, as ``timeouts`` accepts them (e.g. ``60m``, ``1h30m``).
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_STACK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

#: How much longer than an after-apply Job's own ``activeDeadlineSeconds`` apply waits for it:
#: the Job controller marks it Failed at its deadline, and the provider polls once a second.
AFTER_APPLY_WAIT_MARGIN_SECONDS = 120


def _job_wait_timeout(obj: KubeObject, props: KubernetesObjectsStackProps) -> str:
    """How long ``apply`` waits for a Job to complete.

    The provider's condition waiter (hashicorp/terraform-provider-kubernetes v2.38.0,
    manifest/provider/waiter.go ``ConditionsWaiter``) returns only once every listed
    condition holds, or at its timeout: a Job that failed never becomes ``Complete``, and
    neither ``wait`` form can end on ``Failed`` (``fields`` matchers are ANDed as well). So
    a failing smoke test (an after-apply or promotion-gating Job with
    ``activeDeadlineSeconds``) is bounded by its own deadline plus a margin, not by
    ``job_timeout``: apply then ends with "Operation timed
    out" on that Job's address, soon after the Job itself failed, and the failed Job keeps
    its log. Download Jobs keep ``job_timeout``: their length is the model's size.
    """
    spec = obj.manifest.get("spec")
    deadline = spec.get("activeDeadlineSeconds") if isinstance(spec, Mapping) else None
    if (obj.runs_after_apply or obj.gates_promotion) and isinstance(deadline, int):
        return f"{deadline + AFTER_APPLY_WAIT_MARGIN_SECONDS}s"
    return props.job_timeout


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
    hf_token_secret: HfTokenSecret | None = field(default_factory=HfTokenSecret)
    """Secret created from ``var.hf_token`` when it is set; ``None`` for no variable."""
    api_key_secret: ApiKeySecret | None = None
    """Secret created from the required ``var.vllm_api_key``. Default ``None``: the chart
    needs no API key Secret, or something else owns it (then it must exist before apply)."""
    job_timeout: str = "60m"
    """How long ``apply`` waits for each Job to complete (the seed allows 60 minutes)."""
    model_bucket_secret: SecretFromVariable | None = None
    """Where the Secret with the read-only key of Stack 1's model bucket goes (``name`` and
    ``namespace``; ``key`` unused): filled from Stack 1's sensitive outputs
    ``model_bucket_access_key_id``/``model_bucket_secret_key`` (``create_model_source_bucket``),
    so the download Jobs find it without a kubectl step. Default ``None``: none."""

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
        if self.api_key_secret is not None:
            problems.extend(self.api_key_secret.problems("api_key_secret").items)
            if self.hf_token_secret is not None:
                problems.check(
                    (self.api_key_secret.namespace, self.api_key_secret.name)
                    != (self.hf_token_secret.namespace, self.hf_token_secret.name),
                    "api_key_secret",
                    f"{self.api_key_secret.namespace}/{self.api_key_secret.name}",
                    "must differ from hf_token_secret (one owner per Secret)",
                )
        if self.model_bucket_secret is not None:
            location = self.model_bucket_secret
            check_dns_label(problems, "model_bucket_secret.namespace", location.namespace)
            check_dns_subdomain(problems, "model_bucket_secret.name", location.name)
        problems.check(
            isinstance(self.job_timeout, str) and bool(_DURATION.match(self.job_timeout)),
            "job_timeout",
            self.job_timeout,
            "must be a Terraform duration such as 60m or 1h30m",
        )
        return problems


@takes_props(KubernetesObjectsStackProps)
class VllmKubernetesStack(TerraformStack):
    """Stack 2 of the reference architecture as Terraform: Stack 1's outputs from its state,
    the Kubernetes provider on the DOKS cluster, one ``kubernetes_manifest`` per object of
    the given chart(s) in dependency order, Jobs waited for, and the seed's eight outputs."""

    def __init__(self, scope: Construct, id: str, props: KubernetesObjectsStackProps) -> None:
        super().__init__(scope, id)
        props.problems(id).raise_if_any(where=lambda: self.node.path)
        self.props = props
        from cdktf_cdktf_provider_digitalocean.provider import DigitaloceanProvider
        from cdktf_cdktf_provider_kubernetes.manifest import Manifest

        DigitaloceanProvider(self, "digitalocean")
        # Same provider range as Stack 1, so both stacks can share one provider download.
        self.add_override(
            "terraform.required_providers.digitalocean.version", DIGITALOCEAN_PROVIDER_CONSTRAINT
        )
        apply_state_backend(self, id, props.own_state)
        self.values = read_stack_one(self, props.infra_state, props.infra_stack_name)
        self.remote_state = self.values.remote_state
        self.cluster = kubernetes_provider_for(self, self.values.cluster_name)

        chart_problems = Problems(where=lambda: self.node.path)
        raw = synthesize_objects(props.build_chart, self.values)
        chart_problems.check(
            bool(raw),
            "build_chart",
            getattr(props.build_chart, "__name__", props.build_chart),
            "must add at least one Kubernetes object to the App",
        )
        described = describe_objects(raw, chart_problems)
        ids = construct_ids(described, chart_problems)
        objects = [dataclasses.replace(o, cid=c) for o, c in zip(described, ids, strict=True)]
        secrets = [
            spec
            for spec in (
                VariableSecret.hf_token(props.hf_token_secret),
                VariableSecret.api_key(props.api_key_secret),
            )
            if spec is not None
        ]
        for spec in secrets:
            location = spec.location
            for o in objects:
                chart_problems.check(
                    not (
                        o.kind == "Secret"
                        and o.name == location.name
                        and o.namespace == location.namespace
                    ),
                    spec.field,
                    f"{location.namespace}/{location.name}",
                    f"must not also be an object of the chart (one owner per Secret); set "
                    f"{spec.field}=None or rename one",
                )
        chart_problems.raise_if_any()

        self.model_bucket_secret: SecretV1 | None = None
        """The Secret with Stack 1's read-only model bucket key (``model_bucket_secret``)."""
        bucket_secret_namespace = (
            props.model_bucket_secret.namespace if props.model_bucket_secret else None
        )
        self.variables: dict[str, TerraformVariable] = {}
        """The sensitive variables the stack's Secrets are filled from, by name."""
        self.secrets: dict[str, SecretV1] = {}
        """The Secrets filled from ``variables``, by variable name."""
        self.manifests: dict[str, Manifest] = {}
        self.replace_triggers: dict[str, DataResource] = {}
        """Per Job: the ``terraform_data`` whose change replaces it (see _replace_trigger)."""
        autoscaled = {o.scale_target for o in objects if o.scale_target is not None}
        # Created in apply order so every depends_on names a resource that already exists
        # (cdktf renders a dependency only from the constructor argument).
        needs = {o.cid: prerequisites(o, objects) for o in objects}
        for obj in apply_order(objects, needs):
            depends_on: list[ITerraformDependable] = [self.manifests[o.cid] for o in needs[obj.cid]]
            if obj.kind in WORKLOAD_KINDS:
                depends_on.extend(
                    self._variable_secret(spec)
                    for spec in secrets
                    if obj.namespace == spec.location.namespace
                )
                bucket_secret = self._model_bucket_secret(props)
                if bucket_secret is not None and obj.namespace == bucket_secret_namespace:
                    depends_on.append(bucket_secret)
            manifest = escape_terraform_templates(for_terraform(obj))
            self.manifests[obj.cid] = Manifest(
                self,
                obj.cid,
                manifest=manifest,
                depends_on=depends_on or None,
                lifecycle=self._replace_trigger(obj, manifest),
                **self._manifest_options(obj, props, obj.identity in autoscaled),
            )
        for spec in secrets:
            self._variable_secret(spec)
        self._model_bucket_secret(props)
        self.hf_token = self.variables.get(HF_TOKEN_VARIABLE)
        self.hf_token_secret = self.secrets.get(HF_TOKEN_VARIABLE)
        self.api_key = self.variables.get(API_KEY_VARIABLE)
        self.api_key_secret = self.secrets.get(API_KEY_VARIABLE)

        for name, description in KUBERNETES_OUTPUT_DESCRIPTIONS.items():
            TerraformOutput(self, name, value=props.outputs[name], description=description)

    def _model_bucket_secret(self, props: KubernetesObjectsStackProps) -> SecretV1 | None:
        """The model bucket's key pair as a Secret, from Stack 1's sensitive outputs (never a
        value in the JSON: references to ``data.terraform_remote_state``), created once, after
        its Namespace object."""
        location = props.model_bucket_secret
        if location is None:
            return None
        if self.model_bucket_secret is None:
            from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata

            namespace = self.manifests.get(slug("Namespace", location.namespace))
            self.model_bucket_secret = SecretV1(
                self,
                "model_bucket_secret",
                metadata=SecretV1Metadata(name=location.name, namespace=location.namespace),
                data={
                    contracts.SPACES_ACCESS_KEY_ID_KEY: self.remote_state.get_string(
                        "model_bucket_access_key_id"
                    ),
                    contracts.SPACES_SECRET_ACCESS_KEY_KEY: self.remote_state.get_string(
                        "model_bucket_secret_key"
                    ),
                },
                type="Opaque",
                depends_on=[namespace] if namespace is not None else None,
            )
        return self.model_bucket_secret

    def _variable_secret(self, spec: VariableSecret) -> SecretV1:
        """The variable and its Secret, created once, after the Secret's Namespace object."""
        if spec.variable not in self.secrets:
            namespace = self.manifests.get(slug("Namespace", spec.location.namespace))
            variable, secret = add_variable_secret(self, spec, namespace)
            self.variables[spec.variable] = variable
            self.secrets[spec.variable] = secret
        return self.secrets[spec.variable]

    def _replace_trigger(
        self, obj: KubeObject, manifest: Mapping[str, Any]
    ) -> TerraformResourceLifecycle | None:
        """For a Job: replace it whenever its spec changes, never patch it.

        A Job's ``spec.template`` is immutable, so the provider's server-side apply of a
        changed one fails ("field is immutable"); the provider itself forces replacement only
        for a new apiVersion, kind, name or namespace (plan.go). A ``terraform_data`` holding
        the spec plans a replacement whenever the spec changes, and ``replace_triggered_by``
        turns that into delete-then-create of the Job, which the Deployment waits for again.
        A renamed Job (a name following its model) is a new address anyway: created, waited
        for, and the old one destroyed.
        """
        if not obj.is_batch_job:
            return None
        if not self.replace_triggers:
            self.add_override("terraform.required_version", TERRAFORM_DATA_REQUIRED_VERSION)
        trigger = DataResource(
            self, f"{obj.cid}-spec", triggers_replace=dict(manifest.get("spec") or {})
        )
        self.replace_triggers[obj.cid] = trigger
        # The bare address: cdktf renders a resource (or its fqn) here as "${...}", which
        # Terraform rejects ("Invalid character"; hashicorp/terraform-cdk#3196, open).
        address = f"{trigger.terraform_resource_type}.{trigger.friendly_unique_id}"
        return TerraformResourceLifecycle(replace_triggered_by=[address])

    @staticmethod
    def _manifest_options(
        obj: KubeObject, props: KubernetesObjectsStackProps, autoscaled: bool
    ) -> dict[str, Any]:
        from cdktf_cdktf_provider_kubernetes.manifest import (
            ManifestTimeouts,
            ManifestWait,
            ManifestWaitCondition,
        )

        options: dict[str, Any] = {}
        if obj.is_batch_job:
            # The seed's Stack 2: `apply` blocks until the download finished, so the
            # Deployment (which depends on the Job) never starts against an empty share.
            options["wait"] = ManifestWait(
                condition=[ManifestWaitCondition(type="Complete", status="True")]
            )
            options["timeouts"] = ManifestTimeouts(create=_job_wait_timeout(obj, props))
        if obj.kind == "Secret" and "stringData" in obj.manifest:
            # The API server folds stringData into data and drops it; without this every
            # plan would show a diff (the defaults are kept alongside).
            options["computed_fields"] = [*MANIFEST_DEFAULT_COMPUTED_FIELDS, "stringData"]
        if autoscaled:
            # An autoscaler (KEDA's HPA) owns spec.replicas once it runs. As a computed field,
            # an unchanged configured value plans as the live one (plan.go), so a plan shows no
            # drift and an apply of any other change sends the live count back instead of
            # resetting it; a changed `replicas` in the configuration is still applied. The
            # configured value remains the count at creation. Sending the live value conflicts
            # with no one (server-side apply: equal values share ownership; kubernetes.io/docs/
            # reference/using-api/server-side-apply/), so field_manager.force_conflicts stays
            # off and a real conflict (a scale between plan and apply) still stops the apply.
            # Checked against kube-apiserver 1.34.9: after a scale through the scale
            # subresource, applying the live count succeeds, the configured one conflicts.
            options["computed_fields"] = [*MANIFEST_DEFAULT_COMPUTED_FIELDS, "spec.replicas"]
        return options
