"""Stack 2 through Terraform (ks.VllmKubernetesStack), asserted on the synthesized JSON.

The chart here is hand-made from cdk8s L1 classes in the seed's shape, so these tests pin the
stack's behaviour independently of the Kubernetes-layer constructs.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from cdk8s_plus_28 import k8s
from cdktf import App
from support import SEED_STACK2_OUTPUTS

from vllm_doks import ValidationError
from vllm_doks._imports.io.k8s.networking.gateway import (
    Gateway,
    GatewaySpec,
    GatewaySpecListeners,
    HttpRoute,
    HttpRouteSpec,
    HttpRouteSpecParentRefs,
    HttpRouteSpecRules,
    HttpRouteSpecRulesBackendRefs,
)
from vllm_doks.cli import add_kubernetes_stack, infra_props
from vllm_doks.cloud import SpacesStateBackend
from vllm_doks.cloud import kubernetes_stack as ks
from vllm_doks.cloud.infra_stack import OUTPUT_DESCRIPTIONS as STACK1_OUTPUTS
from vllm_doks.config import ArchitectureConfig

STACK = "vllm-kubernetes"
REF = "${data.terraform_remote_state.infra.outputs.%s}"

#: A shell snippet with the two character pairs Terraform treats as template syntax.
DRAIN = 'R=$(curl -s localhost:8000/metrics); [ "${R:-0}" = 0 ] && exit 0; echo "100%{done}"'
DRAIN_IN_TERRAFORM = (
    'R=$(curl -s localhost:8000/metrics); [ "$${R:-0}" = 0 ] && exit 0; echo "100%%{done}"'
)

SEED_OUTPUTS = SEED_STACK2_OUTPUTS

#: Construct ids (= Terraform addresses under kubernetes_manifest) of the seed's objects.
NS, PV, PVC = (
    "namespace-vllm",
    "persistentvolume-vllm-models-pv",
    "persistentvolumeclaim-vllm-models-pvc",
)
JOB, DEPLOY, SVC = "job-model-download", "deployment-vllm", "service-vllm"
GW, ROUTE = "gateway-vllm-gateway", "httproute-vllm-route"


def seed_chart(app: cdk8s.App, host: str, path: str, size_gb: str, pool: str) -> None:
    """The seed's Stack 2 objects (trimmed to what ordering and hand-off need)."""
    chart = cdk8s.Chart(app, "vllm", namespace="vllm")

    def meta(name: str) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name, namespace="vllm")

    # Created in reverse of apply order on purpose: the order comes from kinds, not creation.
    HttpRoute(
        chart,
        "route",
        metadata=cdk8s.ApiObjectMetadata(name="vllm-route", namespace="vllm"),
        spec=HttpRouteSpec(
            parent_refs=[HttpRouteSpecParentRefs(name="vllm-gateway")],
            rules=[
                HttpRouteSpecRules(
                    backend_refs=[HttpRouteSpecRulesBackendRefs(name="vllm", port=8000)]
                )
            ],
        ),
    )
    Gateway(
        chart,
        "gateway",
        metadata=cdk8s.ApiObjectMetadata(name="vllm-gateway", namespace="vllm"),
        spec=GatewaySpec(
            gateway_class_name="cilium",
            listeners=[GatewaySpecListeners(name="http", port=80, protocol="HTTP")],
        ),
    )
    k8s.KubeService(
        chart,
        "service",
        metadata=meta("vllm"),
        spec=k8s.ServiceSpec(
            selector={"app": "vllm"},
            ports=[k8s.ServicePort(port=8000, target_port=k8s.IntOrString.from_number(8000))],
        ),
    )
    models = k8s.Volume(
        name="models",
        persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(claim_name="vllm-models-pvc"),
    )
    k8s.KubeDeployment(
        chart,
        "deployment",
        metadata=meta("vllm"),
        spec=k8s.DeploymentSpec(
            replicas=1,
            selector=k8s.LabelSelector(match_labels={"app": "vllm"}),
            template=k8s.PodTemplateSpec(
                metadata=k8s.ObjectMeta(labels={"app": "vllm"}),
                spec=k8s.PodSpec(
                    node_selector={"doks.digitalocean.com/node-pool": pool},
                    containers=[
                        k8s.Container(
                            name="vllm",
                            image="vllm/vllm-openai:v0.11.0",
                            lifecycle=k8s.Lifecycle(
                                pre_stop=k8s.LifecycleHandler(
                                    exec=k8s.ExecAction(command=["/bin/sh", "-c", DRAIN])
                                )
                            ),
                            volume_mounts=[k8s.VolumeMount(name="models", mount_path="/models")],
                        )
                    ],
                    volumes=[models],
                ),
            ),
        ),
    )
    k8s.KubeJob(
        chart,
        "download",
        metadata=meta("model-download"),
        spec=k8s.JobSpec(
            ttl_seconds_after_finished=300,
            template=k8s.PodTemplateSpec(
                spec=k8s.PodSpec(
                    restart_policy="Never",
                    containers=[
                        k8s.Container(
                            name="download",
                            image="python:3.11-slim",
                            env=[
                                k8s.EnvVar(
                                    name="HF_TOKEN",
                                    value_from=k8s.EnvVarSource(
                                        secret_key_ref=k8s.SecretKeySelector(
                                            name="hf-token", key="HF_TOKEN", optional=True
                                        )
                                    ),
                                )
                            ],
                            volume_mounts=[k8s.VolumeMount(name="models", mount_path="/models")],
                        )
                    ],
                    volumes=[models],
                )
            ),
        ),
    )
    size = k8s.Quantity.from_string(f"{size_gb}Gi")
    k8s.KubePersistentVolumeClaim(
        chart,
        "pvc",
        metadata=meta("vllm-models-pvc"),
        spec=k8s.PersistentVolumeClaimSpec(
            access_modes=["ReadWriteMany"],
            storage_class_name="",
            resources=k8s.ResourceRequirements(requests={"storage": size}),
            selector=k8s.LabelSelector(match_labels={"pv-name": "vllm-models-pv"}),
        ),
    )
    k8s.KubePersistentVolume(
        chart,
        "pv",
        metadata=k8s.ObjectMeta(name="vllm-models-pv", labels={"pv-name": "vllm-models-pv"}),
        spec=k8s.PersistentVolumeSpec(
            access_modes=["ReadWriteMany"],
            persistent_volume_reclaim_policy="Retain",
            capacity={"storage": size},
            nfs=k8s.NfsVolumeSource(server=host, path=path),
        ),
    )
    k8s.KubeNamespace(chart, "namespace", metadata=k8s.ObjectMeta(name="vllm"))


def build_seed_chart(app: cdk8s.App, values: ks.StackOneValues) -> None:
    seed_chart(
        app, values.nfs_host, values.nfs_mount_path, values.nfs_size_gb, values.gpu_node_pool_name
    )


def synth(
    outdir: Path,
    build: Callable[[cdk8s.App, ks.StackOneValues], object] = build_seed_chart,
    **overrides: Any,
) -> dict[str, Any]:
    props = ks.KubernetesObjectsStackProps(
        **{"build_chart": build, "outputs": SEED_OUTPUTS, **overrides}
    )
    app = App(outdir=str(outdir))
    ks.VllmKubernetesStack(app, STACK, props)
    app.synth()
    return json.loads((outdir / "stacks" / STACK / "cdk.tf.json").read_text())


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth(tmp_path_factory.mktemp("k8s-stack") / "out")


def manifests(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["resource"]["kubernetes_manifest"]


def ancestors(doc: dict[str, Any], address: str) -> set[str]:
    """Every resource that ``address`` (type.name) transitively depends on."""
    found: set[str] = set()
    todo = [address]
    while todo:
        rtype, name = todo.pop().split(".", 1)
        for dep in doc["resource"][rtype][name].get("depends_on", []):
            if dep not in found:
                found.add(dep)
                todo.append(dep)
    return found


def test_one_manifest_per_chart_object_with_its_content(doc: dict[str, Any]) -> None:
    app = cdk8s.App()
    seed_chart(
        app,
        REF % "nfs_host",
        REF % "nfs_mount_path",
        REF % "nfs_size_gb",
        REF % "gpu_node_pool_name",
    )
    expected = {f"{o['kind']}/{o['metadata']['name']}": o for o in app.charts[0].to_json()}
    # Differences by design: cluster-scoped objects drop the chart's namespace (the API server
    # ignores it, kubernetes_manifest refuses it) and template syntax in strings is escaped.
    for key in ("Namespace/vllm", "PersistentVolume/vllm-models-pv"):
        del expected[key]["metadata"]["namespace"]
    # Jobs lose their TTL and gain foreground deletion (test_job_has_no_ttl...).
    del expected["Job/model-download"]["spec"]["ttlSecondsAfterFinished"]
    expected["Job/model-download"]["metadata"]["finalizers"] = ["foregroundDeletion"]
    container = expected["Deployment/vllm"]["spec"]["template"]["spec"]["containers"][0]
    container["lifecycle"]["preStop"]["exec"]["command"][2] = DRAIN_IN_TERRAFORM

    actual = {
        f"{m['manifest']['kind']}/{m['manifest']['metadata']['name']}": m["manifest"]
        for m in manifests(doc).values()
    }
    assert actual == expected
    assert sorted(manifests(doc)) == sorted([NS, PV, PVC, JOB, DEPLOY, SVC, GW, ROUTE])


def test_stack_one_values_are_remote_state_references(doc: dict[str, Any]) -> None:
    pv = manifests(doc)[PV]["manifest"]["spec"]
    assert pv["nfs"] == {"server": REF % "nfs_host", "path": REF % "nfs_mount_path"}
    assert pv["capacity"] == {"storage": f"{REF % 'nfs_size_gb'}Gi"}
    pod = manifests(doc)[DEPLOY]["manifest"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"doks.digitalocean.com/node-pool": REF % "gpu_node_pool_name"}
    # Every output read from Stack 1 is one Stack 1 really has.
    text = json.dumps(doc)
    read = {part.split("}")[0] for part in text.split("infra.outputs.")[1:]}
    assert read and read <= set(STACK1_OUTPUTS)


def test_kubernetes_provider_uses_doks_cluster_credentials(doc: dict[str, Any]) -> None:
    cluster = doc["data"]["digitalocean_kubernetes_cluster"]["cluster"]
    assert cluster["name"] == REF % "cluster_name"
    (provider,) = doc["provider"]["kubernetes"]
    data = "data.digitalocean_kubernetes_cluster.cluster"
    ca = f"{data}.kube_config[0].cluster_ca_certificate"
    assert provider == {
        "host": f"${{{data}.endpoint}}",
        "token": f"${{{data}.kube_config[0].token}}",
        "cluster_ca_certificate": f"${{base64decode({ca})}}",
    }
    required = doc["terraform"]["required_providers"]
    assert required["digitalocean"]["version"] == ">= 2.72.0, < 3.0.0"
    assert "kubernetes" in required


def test_job_waits_for_completion_within_timeout(doc: dict[str, Any], tmp_path: Path) -> None:
    job = manifests(doc)[JOB]
    assert job["wait"] == {"condition": [{"type": "Complete", "status": "True"}]}
    assert job["timeouts"] == {"create": "60m"}
    for name, resource in manifests(doc).items():
        if name != JOB:
            assert "wait" not in resource and "timeouts" not in resource, name
    longer = synth(tmp_path, job_timeout="2h")
    assert manifests(longer)[JOB]["timeouts"] == {"create": "2h"}


def test_job_has_no_ttl_and_is_replaced_when_its_spec_changes(doc: dict[str, Any]) -> None:
    job = manifests(doc)[JOB]
    # The chart's Job has a 300 s TTL; once the TTL controller deleted it, every plan would
    # create it again (the provider reads a missing object as gone).
    assert "ttlSecondsAfterFinished" not in job["manifest"]["spec"]
    # The provider deletes without a propagation policy, which orphans a batch/v1 Job's pods;
    # the finalizer makes that delete take the pods first.
    assert job["manifest"]["metadata"]["finalizers"] == ["foregroundDeletion"]
    # A Job's pod template is immutable: a changed spec replaces it rather than patching.
    trigger = f"{JOB}-spec"
    assert job["lifecycle"] == {"replace_triggered_by": [f"terraform_data.{trigger}"]}
    (name,) = doc["resource"]["terraform_data"]
    assert name == trigger
    assert doc["resource"]["terraform_data"][trigger]["triggers_replace"] == job["manifest"]["spec"]
    assert doc["terraform"]["required_version"] == ">= 1.4.0"  # terraform_data's first release
    for address, resource in manifests(doc).items():
        if address != JOB:
            assert "lifecycle" not in resource, address


def _with_scaler(kind: str, target: str = "vllm") -> Callable[[cdk8s.App, ks.StackOneValues], None]:
    def build(app: cdk8s.App, values: ks.StackOneValues) -> None:
        build_seed_chart(app, values)
        chart = app.charts[0]
        if kind == "ScaledObject":
            scaler = cdk8s.ApiObject(
                chart,
                "scaler",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata=cdk8s.ApiObjectMetadata(name="vllm", namespace="vllm"),
            )
            # No kind: KEDA's default (Deployment) applies.
            scaler.add_json_patch(
                cdk8s.JsonPatch.add(
                    "/spec", {"scaleTargetRef": {"name": target}, "maxReplicaCount": 3}
                )
            )
        else:
            k8s.KubeHorizontalPodAutoscalerV2(
                chart,
                "scaler",
                metadata=meta_vllm("vllm"),
                spec=k8s.HorizontalPodAutoscalerSpecV2(
                    scale_target_ref=k8s.CrossVersionObjectReferenceV2(
                        api_version="apps/v1", kind="Deployment", name=target
                    ),
                    max_replicas=3,
                ),
            )

    return build


def meta_vllm(name: str) -> k8s.ObjectMeta:
    return k8s.ObjectMeta(name=name, namespace="vllm")


@pytest.mark.parametrize("kind", ["ScaledObject", "HorizontalPodAutoscaler"])
def test_autoscaled_deployment_replicas_are_computed(tmp_path: Path, kind: str) -> None:
    doc = synth(tmp_path, _with_scaler(kind))
    deploy = manifests(doc)[DEPLOY]
    # The provider's defaults stay (setting the list replaces them) and spec.replicas joins.
    assert deploy["computed_fields"] == ["metadata.annotations", "metadata.labels", "spec.replicas"]
    # The configured count remains what the Deployment starts with.
    assert deploy["manifest"]["spec"]["replicas"] == 1
    scaler = f"{kind.lower()}-vllm"
    assert f"kubernetes_manifest.{DEPLOY}" in manifests(doc)[scaler]["depends_on"]
    for address, resource in manifests(doc).items():
        if address != DEPLOY:
            assert "computed_fields" not in resource, address


def test_unscaled_deployment_keeps_its_replicas_asserted(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    assert "computed_fields" not in manifests(doc)[DEPLOY]
    # A scaler of some other Deployment changes nothing here.
    other = synth(tmp_path, _with_scaler("ScaledObject", target="other"))
    assert "computed_fields" not in manifests(other)[DEPLOY]


def test_namespace_first_then_the_seeds_order(doc: dict[str, Any]) -> None:
    assert "depends_on" not in manifests(doc)[NS]
    for name in manifests(doc):
        if name != NS:
            assert f"kubernetes_manifest.{NS}" in ancestors(doc, f"kubernetes_manifest.{name}")
    chain = [PV, PVC, JOB, DEPLOY, SVC, GW, ROUTE]
    for before, after in itertools.pairwise(chain):
        assert f"kubernetes_manifest.{before}" in ancestors(doc, f"kubernetes_manifest.{after}")
    # The direct edges the seed's Stack 2 has.
    assert f"kubernetes_manifest.{JOB}" in manifests(doc)[DEPLOY]["depends_on"]
    assert f"kubernetes_manifest.{DEPLOY}" in manifests(doc)[SVC]["depends_on"]
    assert f"kubernetes_manifest.{SVC}" in manifests(doc)[GW]["depends_on"]
    assert f"kubernetes_manifest.{GW}" in manifests(doc)[ROUTE]["depends_on"]
    assert f"kubernetes_manifest.{PV}" in manifests(doc)[PVC]["depends_on"]


def test_every_deployment_waits_for_every_job(tmp_path: Path) -> None:
    def two_models(app: cdk8s.App, values: ks.StackOneValues) -> None:
        build_seed_chart(app, values)
        extra = cdk8s.Chart(app, "second", namespace="vllm")
        pod = k8s.PodSpec(
            restart_policy="Never", containers=[k8s.Container(name="d", image="busybox")]
        )
        k8s.KubeJob(
            extra,
            "job",
            metadata=k8s.ObjectMeta(name="model-download-2"),
            spec=k8s.JobSpec(template=k8s.PodTemplateSpec(spec=pod)),
        )

    doc = synth(tmp_path, two_models)
    deps = manifests(doc)[DEPLOY]["depends_on"]
    assert "kubernetes_manifest.job-model-download" in deps
    assert "kubernetes_manifest.job-model-download-2" in deps
    assert manifests(doc)["job-model-download-2"]["wait"]["condition"][0]["type"] == "Complete"


def test_hf_token_is_a_sensitive_variable_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "hf_RecognizableTokenValue1234567890"
    # Wherever a user might have it, it must not end up in the output.
    monkeypatch.setenv("TF_VAR_hf_token", token)
    monkeypatch.setenv("HF_TOKEN", token)
    doc = synth(tmp_path / "out")
    assert doc["variable"]["hf_token"] == {
        "type": "string",
        "default": "",
        "sensitive": True,
        "description": "HuggingFace API token for gated models",
    }
    secret = doc["resource"]["kubernetes_secret_v1"]["hf_token_secret"]
    assert secret["count"] == '${var.hf_token != "" ? 1 : 0}'
    assert secret["data"] == {"HF_TOKEN": "${var.hf_token}"}
    assert secret["metadata"] == {"name": "hf-token", "namespace": "vllm"}
    assert secret["depends_on"] == [f"kubernetes_manifest.{NS}"]
    for workload in (JOB, DEPLOY):
        assert "kubernetes_secret_v1.hf_token_secret" in manifests(doc)[workload]["depends_on"]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert token not in path.read_text(), path


def test_hf_token_secret_can_be_left_out(tmp_path: Path) -> None:
    doc = synth(tmp_path, hf_token_secret=None)
    assert "variable" not in doc
    assert "kubernetes_secret_v1" not in doc["resource"]


def test_hf_token_secret_must_not_duplicate_a_chart_secret(tmp_path: Path) -> None:
    def with_secret(app: cdk8s.App, values: ks.StackOneValues) -> None:
        build_seed_chart(app, values)
        k8s.KubeSecret(
            app.charts[0], "s", metadata=k8s.ObjectMeta(name="hf-token", namespace="vllm")
        )

    with pytest.raises(ValidationError) as err:
        synth(tmp_path, with_secret)
    assert "hf_token_secret: got 'vllm/hf-token'" in str(err.value)
    # Under another name there is no clash: the chart's Secret is applied as a manifest.
    doc = synth(tmp_path, with_secret, hf_token_secret=ks.HfTokenSecret(name="other"))
    assert manifests(doc)["secret-hf-token"]["manifest"]["kind"] == "Secret"


def test_chart_secret_with_string_data_ignores_its_folding(tmp_path: Path) -> None:
    def with_secret(app: cdk8s.App, values: ks.StackOneValues) -> None:
        build_seed_chart(app, values)
        k8s.KubeSecret(
            app.charts[0],
            "s",
            metadata=k8s.ObjectMeta(name="settings", namespace="vllm"),
            string_data={"a": "b"},
        )

    doc = synth(tmp_path, with_secret)
    secret = manifests(doc)["secret-settings"]
    assert secret["computed_fields"] == ["metadata.annotations", "metadata.labels", "stringData"]
    assert "kubernetes_manifest.secret-settings" in manifests(doc)[JOB]["depends_on"]


def test_api_key_secret_from_a_required_sensitive_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-RecognizableApiKeyValue1234567890"
    monkeypatch.setenv("TF_VAR_vllm_api_key", key)
    monkeypatch.setenv("VLLM_API_KEY", key)
    doc = synth(tmp_path / "out", api_key_secret=ks.ApiKeySecret())
    variable = doc["variable"]["vllm_api_key"]
    # No default: Terraform refuses to plan without it, so the Secret always exists.
    assert "default" not in variable
    assert variable["sensitive"] is True and variable["nullable"] is False
    assert variable["validation"] == [
        {
            "condition": '${trimspace(var.vllm_api_key) != ""}',
            "error_message": "vllm_api_key must not be empty: clients send it as "
            "'Authorization: Bearer <key>'.",
        }
    ]
    secret = doc["resource"]["kubernetes_secret_v1"]["api_key_secret"]
    assert "count" not in secret
    assert secret["data"] == {"VLLM_API_KEY": "${var.vllm_api_key}"}
    assert secret["metadata"] == {"name": "vllm-api-key", "namespace": "vllm"}
    assert secret["depends_on"] == [f"kubernetes_manifest.{NS}"]
    assert "kubernetes_secret_v1.api_key_secret" in manifests(doc)[DEPLOY]["depends_on"]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert key not in path.read_text(), path


def test_api_key_secret_has_one_owner(tmp_path: Path) -> None:
    def with_secret(app: cdk8s.App, values: ks.StackOneValues) -> None:
        build_seed_chart(app, values)
        k8s.KubeSecret(app.charts[0], "s", metadata=meta_vllm("vllm-api-key"))

    with pytest.raises(ValidationError) as err:
        synth(tmp_path, with_secret, api_key_secret=ks.ApiKeySecret())
    assert "api_key_secret: got 'vllm/vllm-api-key'; must not also be an object" in str(err.value)
    with pytest.raises(ValidationError, match="must differ from hf_token_secret"):
        synth(tmp_path, api_key_secret=ks.ApiKeySecret(name="hf-token"))


def cli_stack(outdir: Path, **settings: Any) -> dict[str, Any]:
    """Stack 2 as the app builds it (the real serving chart) for a configuration."""
    config = ArchitectureConfig(**settings)
    app = App(outdir=str(outdir))
    add_kubernetes_stack(app, config, infra_props(config))
    app.synth()
    return json.loads((outdir / "stacks" / STACK / "cdk.tf.json").read_text())


def secret_references(manifest: Any) -> set[str]:
    """Names of the Secrets a manifest requires (non-optional secretKeyRef, secretRef or
    secret volume)."""
    found: set[str] = set()
    if isinstance(manifest, dict):
        for key, name in (
            ("secretKeyRef", "name"),
            ("secretRef", "name"),
            ("secret", "secretName"),
        ):
            ref = manifest.get(key)
            if isinstance(ref, dict) and not ref.get("optional", False):
                found.add(ref[name])
        for value in manifest.values():
            found |= secret_references(value)
    elif isinstance(manifest, list):
        for value in manifest:
            found |= secret_references(value)
    return found


#: kubernetes_manifest's schema in hashicorp/terraform-provider-kubernetes v2.38.0 (the version
#: cdktf-cdktf-provider-kubernetes 12.1.1 is generated from and pins), manifest/provider/
#: provider.go: attributes, and blocks with their attributes; plus Terraform meta-arguments.
MANIFEST_SCHEMA_V2_38_0: dict[str, Any] = {
    "manifest": None,
    "object": None,
    "wait_for": None,
    "computed_fields": None,  # list(string)
    "timeouts": {"create", "update", "delete"},  # block, max 1
    "field_manager": {"name", "force_conflicts"},  # block, max 1
    "wait": {"rollout", "fields", "condition"},  # block, max 1; condition: type, status
}
META_ARGUMENTS = {"//", "count", "depends_on", "lifecycle", "provider", "for_each"}


@pytest.mark.parametrize(
    "settings", [{}, {"autoscaling": True, "autoscaling_max_replicas": 2, "pod_monitor": True}]
)
def test_emitted_manifest_settings_fit_the_provider_schema(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    doc = cli_stack(tmp_path, **settings)
    for address, resource in manifests(doc).items():
        assert set(resource) <= set(MANIFEST_SCHEMA_V2_38_0) | META_ARGUMENTS, address
        for block in ("timeouts", "field_manager", "wait"):
            assert set(resource.get(block, {})) <= MANIFEST_SCHEMA_V2_38_0[block], address
        for condition in resource.get("wait", {}).get("condition", []):
            assert set(condition) <= {"type", "status"}
        fields = resource.get("computed_fields", [])
        assert isinstance(fields, list) and all(isinstance(f, str) for f in fields)
        for reference in resource.get("lifecycle", {}).get("replace_triggered_by", []):
            # A bare address, as Terraform requires (no "${...}").
            rtype, name = reference.split(".")
            assert name in doc["resource"][rtype]
    if settings:
        assert "spec.replicas" in manifests(doc)["deployment-vllm"]["computed_fields"]


def test_the_app_stack_owns_its_namespace_and_every_secret_it_requires(tmp_path: Path) -> None:
    """Nothing to create with kubectl first: anything created beforehand in the namespace
    would collide ("Cannot create resource that already exists")."""
    doc = cli_stack(tmp_path)
    kinds = {m["manifest"]["kind"] for m in manifests(doc).values()}
    assert "Namespace" in kinds
    required: set[str] = set()
    for m in manifests(doc).values():
        required |= secret_references(m["manifest"])
    created = {s["metadata"]["name"] for s in doc["resource"]["kubernetes_secret_v1"].values()}
    created |= {
        m["manifest"]["metadata"]["name"]
        for m in manifests(doc).values()
        if m["manifest"]["kind"] == "Secret"
    }
    assert "vllm-api-key" in required
    assert required <= created
    assert doc["variable"]["vllm_api_key"]["sensitive"] is True
    # With the API key turned off, there is no variable to set.
    assert "vllm_api_key" not in cli_stack(tmp_path / "off", api_key_secret="").get("variable", {})


def _jobs(doc: dict[str, Any]) -> list[str]:
    """The download Jobs (not the smoke test, which runs after apply)."""
    return [
        n
        for n, m in manifests(doc).items()
        if m["manifest"]["kind"] == "Job"
        and "vllm-doks.io/after-apply" not in m["manifest"]["metadata"].get("labels", {})
    ]


def _smoke_tests(doc: dict[str, Any]) -> set[str]:
    """The smoke test's Job and NetworkPolicy (both named after the Job)."""
    return {n for n in manifests(doc) if "smoke-test-" in n}


def test_changed_model_replaces_the_download_job(tmp_path: Path) -> None:
    small, large = "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct"
    before = cli_stack(tmp_path / "a", model_id=small)
    after = cli_stack(tmp_path / "b", model_id=large)
    (job_before,) = _jobs(before)
    (job_after,) = _jobs(after)
    specs = []
    for doc, job in ((before, job_before), (after, job_after)):
        # The Deployment waits for the Job of its own model.
        assert f"kubernetes_manifest.{job}" in manifests(doc)["deployment-vllm"]["depends_on"]
        (trigger,) = manifests(doc)[job]["lifecycle"]["replace_triggered_by"]
        rtype, name = trigger.split(".")
        assert rtype == "terraform_data"
        specs.append(doc["resource"]["terraform_data"][name]["triggers_replace"])
    # The model is part of the Job's pod template: the trigger changes with it, so the Job
    # is replaced (delete, then create) even where its name and address stay the same...
    assert large not in json.dumps(specs[0]) and large in json.dumps(specs[1])
    # ...and a Job whose name follows its model is a new address: created, the old destroyed.
    if job_before != job_after:
        assert job_before not in manifests(after)


def test_local_remote_state_and_backend_are_relative(doc: dict[str, Any]) -> None:
    assert doc["data"]["terraform_remote_state"]["infra"] == {
        "backend": "local",
        "config": {"path": "../../../terraform.vllm-infra.tfstate"},
    }
    assert doc["terraform"]["backend"] == {
        "local": {"path": "../../../terraform.vllm-kubernetes.tfstate"}
    }


def test_spaces_remote_state_and_backend(tmp_path: Path) -> None:
    spaces = SpacesStateBackend(bucket="my-state", key="team/infra.tfstate", spaces_region="ams3")
    doc = synth(tmp_path, infra_state=spaces, state_key="team/kubernetes.tfstate")
    remote = doc["data"]["terraform_remote_state"]["infra"]
    assert remote["backend"] == "s3"
    common = {
        "bucket": "my-state",
        "region": "us-east-1",
        "endpoints": {"s3": "https://ams3.digitaloceanspaces.com"},
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
        "skip_region_validation": True,
        "skip_s3_checksum": True,
    }
    assert remote["config"] == {**common, "key": "team/infra.tfstate"}
    assert doc["terraform"]["backend"] == {"s3": {**common, "key": "team/kubernetes.tfstate"}}
    assert "access_key" not in json.dumps(doc) and "secret_key" not in json.dumps(doc)


def test_seed_outputs_with_descriptions(doc: dict[str, Any]) -> None:
    assert list(ks.KUBERNETES_OUTPUT_DESCRIPTIONS) == list(SEED_OUTPUTS)
    assert doc["output"] == {
        name: {"value": SEED_OUTPUTS[name], "description": ks.KUBERNETES_OUTPUT_DESCRIPTIONS[name]}
        for name in SEED_OUTPUTS
    }


def test_two_synths_byte_identical_without_machine_paths(tmp_path: Path) -> None:
    runs = []
    for run in ("a", "b"):
        synth(tmp_path / run)
        files = sorted(p for p in (tmp_path / run).rglob("*") if p.is_file())
        runs.append({str(p.relative_to(tmp_path / run)): p.read_bytes() for p in files})
    assert runs[0] == runs[1]
    for content in runs[0].values():
        for machine_path in (str(tmp_path), str(Path.home()), str(Path.cwd())):
            assert machine_path.encode() not in content


def test_same_kind_and_name_in_two_namespaces_get_qualified_ids(tmp_path: Path) -> None:
    def two_namespaces(app: cdk8s.App, values: ks.StackOneValues) -> None:
        build_seed_chart(app, values)
        other = cdk8s.Chart(app, "other", namespace="team")
        k8s.KubeNamespace(other, "ns", metadata=k8s.ObjectMeta(name="team"))
        k8s.KubeService(
            other,
            "svc",
            metadata=k8s.ObjectMeta(name="vllm"),
            spec=k8s.ServiceSpec(ports=[k8s.ServicePort(port=80)]),
        )

    doc = synth(tmp_path, two_namespaces)
    assert {"service-vllm-vllm", "service-team-vllm", "namespace-team"} <= set(manifests(doc))
    assert "service-vllm" not in manifests(doc)
    team_deps = manifests(doc)["service-team-vllm"]["depends_on"]
    assert team_deps == ["kubernetes_manifest.namespace-team"]


def test_invalid_props_reported_together_with_stack_path(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    props = ks.KubernetesObjectsStackProps(
        build_chart=build_seed_chart,
        outputs={k: v for k, v in SEED_OUTPUTS.items() if k != "replicas"} | {"extra": 1},
        infra_stack_name=STACK,
        infra_state=SpacesStateBackend(bucket="b"),
        state_key="vllm-doks/infra.tfstate",
        hf_token_secret=ks.HfTokenSecret(namespace="Not_A_Label"),
        api_key_secret=ks.ApiKeySecret(key="not a key"),
        job_timeout="an hour",
    )
    with pytest.raises(ValidationError) as err:
        ks.VllmKubernetesStack(app, STACK, props)
    message = str(err.value)
    assert STACK in message
    for fragment in (
        "is missing replicas",
        "are not Stack 2 outputs",
        "infra_stack_name: got 'vllm-kubernetes'; must name Stack 1",
        "state_key: got 'vllm-doks/infra.tfstate'",
        "hf_token_secret.namespace: got 'Not_A_Label'",
        "api_key_secret.key: got 'not a key'",
        "job_timeout: got 'an hour'",
    ):
        assert fragment in message
    assert len(err.value.problems) == 7


def test_empty_chart_is_refused(tmp_path: Path) -> None:
    def nothing(app: cdk8s.App, values: ks.StackOneValues) -> None:
        cdk8s.Chart(app, "empty")

    with pytest.raises(ValidationError, match="must add at least one Kubernetes object"):
        synth(tmp_path, nothing)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("${X} %{if}", "$${X} %%{if}"),
        ("$${already}", "$$${already}"),
        ("cost: $${TfToken[TOKEN.7]}", 'cost: ${"$"}${TfToken[TOKEN.7]}'),
        ("$$${TfToken[TOKEN.7]}/x", '${"$$"}${TfToken[TOKEN.7]}/x'),
        ("${TfToken[TOKEN.1]}:${TfToken[TOKEN.2]}", "${TfToken[TOKEN.1]}:${TfToken[TOKEN.2]}"),
    ],
)
def test_escape_terraform_templates_keeps_tokens(raw: str, escaped: str) -> None:
    assert ks.escape_terraform_templates(raw) == escaped
    assert ks.escape_terraform_templates({raw: [raw, 1, True]}) == {escaped: [escaped, 1, True]}


@pytest.mark.real
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform CLI not installed")
def test_terraform_reads_stack_one_state_and_keeps_literals(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    """Real Terraform (no providers needed): from the stack's working dir the relative path
    finds Stack 1's state in the project root, references resolve, escaped text is literal,
    and the Secret's count follows the variable."""
    workdir = tmp_path / "cdktf.out" / "stacks" / STACK
    workdir.mkdir(parents=True)
    write_stack_one_state(tmp_path)
    pv = manifests(doc)[PV]["manifest"]
    secret = doc["resource"]["kubernetes_secret_v1"]["hf_token_secret"]
    deploy = manifests(doc)[DEPLOY]["manifest"]["spec"]["template"]["spec"]
    config = {
        "data": {"terraform_remote_state": doc["data"]["terraform_remote_state"]},
        "variable": {"hf_token": doc["variable"]["hf_token"]},
        "output": {
            "pv": {"value": pv["spec"]},
            "command": {
                "value": deploy["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
            },
            "pool": {"value": deploy["nodeSelector"]},
            # A literal "$$" right before a reference (what cdktf puts where the token was).
            "edge": {
                "value": ks.escape_terraform_templates("at $$${TfToken[TOKEN.9]}").replace(
                    "${TfToken[TOKEN.9]}", REF % "nfs_host"
                )
            },
            # Derived from the sensitive variable, so Terraform insists on the flag.
            "count": {"value": secret["count"], "sensitive": True},
        },
    }
    (workdir / "main.tf.json").write_text(json.dumps(config))
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}

    def terraform(*args: str) -> str:
        run = subprocess.run(
            ["terraform", *args], cwd=workdir, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    terraform("init", "-input=false", "-no-color")
    result: dict[str, Any] = {}
    for token in ("", "hf_x"):
        terraform("apply", "-auto-approve", "-input=false", "-no-color", f"-var=hf_token={token}")
        result[token] = {k: v["value"] for k, v in json.loads(terraform("output", "-json")).items()}
    got = result[""]
    assert got["pv"]["nfs"] == {"server": "10.0.0.5", "path": "/abc/def"}
    assert got["pv"]["capacity"] == {"storage": "1000Gi"}
    assert got["command"] == ["/bin/sh", "-c", DRAIN]
    assert got["pool"] == {"doks.digitalocean.com/node-pool": "my-vllm-gpu-h100"}
    assert got["edge"] == "at $$10.0.0.5"
    assert (result[""]["count"], result["hf_x"]["count"]) == (0, 1)


STACK_ONE_OUTPUTS = {
    "nfs_host": "10.0.0.5",
    "nfs_mount_path": "/abc/def",
    "nfs_size_gb": 1000,
    "gpu_node_pool_name": "my-vllm-gpu-h100",
    "cluster_name": "my-vllm",
}


def write_stack_one_state(project: Path) -> None:
    (project / "terraform.vllm-infra.tfstate").write_text(
        json.dumps(
            {
                "version": 4,
                "terraform_version": "1.5.0",
                "serial": 1,
                "lineage": "test",
                "outputs": {
                    k: {"value": v, "type": "number" if isinstance(v, int) else "string"}
                    for k, v in STACK_ONE_OUTPUTS.items()
                },
                "resources": [],
            }
        )
    )


def _stand_in_address(reference: str) -> str:
    """``kubernetes_manifest.x`` -> ``terraform_data.kubernetes_manifest--x``."""
    rtype, name = reference.split(".", 1)
    return reference if rtype == "terraform_data" else f"terraform_data.{rtype}--{name}"


def stand_in_config(doc: dict[str, Any]) -> dict[str, Any]:
    """The stack with every Kubernetes resource as a built-in ``terraform_data`` holding its
    content, and the same depends_on, count and lifecycle: Terraform plans it without the
    kubernetes provider (not in the offline mirror) or a cluster (kubernetes_manifest needs
    one at plan time)."""
    data: dict[str, Any] = {}
    for rtype, resources in doc["resource"].items():
        for name, resource in resources.items():
            if rtype == "terraform_data":
                body = {k: v for k, v in resource.items() if k != "//"}
            else:
                body = {"input": resource.get("manifest", resource.get("data"))}
                for key in ("count", "depends_on", "lifecycle"):
                    if key in resource:
                        body[key] = resource[key]
                name = f"{rtype}--{name}"
            if "depends_on" in body:
                body["depends_on"] = [_stand_in_address(d) for d in body["depends_on"]]
            if "lifecycle" in body:
                body["lifecycle"] = {
                    "replace_triggered_by": [
                        _stand_in_address(r) for r in body["lifecycle"]["replace_triggered_by"]
                    ]
                }
            data[name] = body
    return {
        "terraform": {"required_version": doc["terraform"]["required_version"]},
        "data": {"terraform_remote_state": doc["data"]["terraform_remote_state"]},
        "variable": doc["variable"],
        "resource": {"terraform_data": data},
    }


@pytest.mark.real
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform CLI not installed")
def test_terraform_plans_a_model_change_as_job_replacement(tmp_path: Path) -> None:
    """Real Terraform on the emitted wiring: applied once, the same configuration plans no
    change at all (no Job re-run), and a new model replaces the Job (delete, then create) and
    updates the Deployment, touching nothing else."""
    before = cli_stack(tmp_path / "a", model_id="Qwen/Qwen2.5-0.5B-Instruct")
    after = cli_stack(tmp_path / "b", model_id="Qwen/Qwen2.5-1.5B-Instruct")
    workdir = tmp_path / "project" / "cdktf.out" / "stacks" / STACK
    workdir.mkdir(parents=True)
    write_stack_one_state(tmp_path / "project")
    cli_config = tmp_path / "terraformrc"
    cli_config.write_text("")
    env = {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": str(cli_config),
    }
    variables = ["-var=hf_token=", "-var=vllm_api_key=k"]

    def terraform(*args: str) -> str:
        run = subprocess.run(
            ["terraform", *args], cwd=workdir, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    def plan(doc: dict[str, Any]) -> dict[str, list[str]]:
        (workdir / "main.tf.json").write_text(json.dumps(stand_in_config(doc)))
        terraform("plan", "-input=false", "-no-color", "-out=plan", *variables)
        shown = json.loads(terraform("show", "-json", "plan"))
        return {c["address"]: c["change"]["actions"] for c in shown["resource_changes"]}

    (workdir / "main.tf.json").write_text(json.dumps(stand_in_config(before)))
    terraform("init", "-input=false", "-no-color")
    terraform("apply", "-auto-approve", "-input=false", "-no-color", *variables)
    assert set(map(tuple, plan(before).values())) == {("no-op",)}

    changes = plan(after)
    (job_before,) = _jobs(before)
    (job_after,) = _jobs(after)
    job = f"terraform_data.kubernetes_manifest--{job_after}"
    if job_before == job_after:
        assert changes[job] == ["delete", "create"]  # not ["update"]: never patched
    else:
        assert changes[job] == ["create"]
        assert changes[f"terraform_data.kubernetes_manifest--{job_before}"] == ["delete"]
    assert changes["terraform_data.kubernetes_manifest--deployment-vllm"] == ["update"]
    touched = {a for a, actions in changes.items() if actions != ["no-op"]}
    expected = {
        job,
        f"terraform_data.{job_after}-spec",
        "terraform_data.kubernetes_manifest--deployment-vllm",
    }
    if job_before != job_after:
        expected |= {
            f"terraform_data.kubernetes_manifest--{job_before}",
            f"terraform_data.{job_before}-spec",
        }
    # The smoke test names the model, so it is a new Job (and policy) that runs again.
    smoke_before, smoke_after = _smoke_tests(before), _smoke_tests(after)
    assert smoke_before != smoke_after
    for cid in smoke_before | smoke_after:
        expected.add(f"terraform_data.kubernetes_manifest--{cid}")
        if cid.startswith("job-"):
            expected.add(f"terraform_data.{cid}-spec")
    assert touched == expected


def _mirror_has(mirror: Path, source: str, version: str) -> bool:
    return any((mirror / "registry.terraform.io" / source / version).glob("*/terraform-provider-*"))


#: Where ../shared/terraform-mirror/unpack puts the offline provider mirror by default.
TERRAFORM_MIRROR = Path(
    os.environ.get("VLLM_DOKS_TERRAFORM_MIRROR", Path.home() / ".cache" / "terraform-mirror")
)


@pytest.mark.real
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform CLI not installed")
@pytest.mark.skipif(
    not _mirror_has(TERRAFORM_MIRROR, "hashicorp/kubernetes", "2.38.0"),
    reason=f"terraform validate needs every provider of the stack installed, and the offline "
    f"mirror {TERRAFORM_MIRROR} has no hashicorp/kubernetes 2.38.0 (the version the "
    f"cdktf bindings pin; only digitalocean is mirrored). The kubernetes_manifest settings "
    f"are checked against the provider's v2.38.0 schema in the tests above, and the "
    f"Terraform wiring by test_terraform_plans_a_model_change_as_job_replacement",
)
def test_terraform_validate_with_the_real_providers(tmp_path: Path) -> None:
    doc = cli_stack(tmp_path / "out", autoscaling=True, autoscaling_max_replicas=2)
    del doc["terraform"]["backend"]
    workdir = tmp_path / "validate"
    workdir.mkdir()
    (workdir / "main.tf.json").write_text(json.dumps(doc))
    cli_config = tmp_path / "terraformrc"
    cli_config.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{TERRAFORM_MIRROR}"\n'
        f"  }}\n}}\n"
    )
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config)}
    for args in (["init", "-backend=false", "-input=false"], ["validate", "-no-color"]):
        run = subprocess.run(
            ["terraform", *args], cwd=workdir, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr


def test_module_is_not_imported_by_the_cloud_package() -> None:
    code = (
        "import sys, vllm_doks, vllm_doks.cloud; "
        "sys.exit(1 if 'cdktf_cdktf_provider_kubernetes' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_importing_the_module_loads_no_provider_binding() -> None:
    """The DigitalOcean and Kubernetes provider bindings take seconds to load: importing the
    module (its Props, a signature, its public names) must not, only building a stack."""
    code = (
        "import sys, vllm_doks.cloud.kubernetes_stack; "
        "print(sorted(m for m in sys.modules if m.startswith('cdktf_cdktf_provider')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
