"""`to_json` renders a typed struct tree exactly as cdk8s renders it (the download Job's name
hashes this rendering of its pod template); `struct` and `api_object` make what the generated
constructors make (they skip jsii's runtime typeguard and its slow struct serialization)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from cdk8s_plus_28 import k8s
from support import new_chart

import vllm_doks
from vllm_doks.k8s import kube
from vllm_doks.k8s.bindings import gateway_api
from vllm_doks.k8s.jobs import template_hash
from vllm_doks.k8s.objects import Unchecked, api_object, struct, to_json
from vllm_doks.k8s.values import int_or_string, quantity


def _pod_spec() -> k8s.PodSpec:
    return k8s.PodSpec(
        restart_policy="Never",
        automount_service_account_token=False,
        node_selector={"b": "2", "a": "1"},
        containers=[
            k8s.Container(
                name="main",
                image="example/image:1",
                args=["--z", "--a"],
                env=[k8s.EnvVar(name="B", value="2"), k8s.EnvVar(name="A", value="1")],
                resources=k8s.ResourceRequirements(
                    # One made by the cached factory, one directly: both render their value.
                    requests={"memory": quantity("16Gi"), "cpu": k8s.Quantity.from_string("500m")},
                    limits={"nvidia.com/gpu": quantity(1)},
                ),
                ports=[k8s.ContainerPort(name="http", container_port=8000)],
                readiness_probe=k8s.Probe(
                    http_get=k8s.HttpGetAction(path="/health", port=int_or_string("http")),
                    period_seconds=5,
                ),
                volume_mounts=[],
            )
        ],
    )


@pytest.mark.parametrize(
    ("l1", "spec"),
    [
        (
            k8s.KubeDeployment,
            lambda: k8s.DeploymentSpec(
                replicas=2,
                strategy=k8s.DeploymentStrategy(
                    rolling_update=k8s.RollingUpdateDeployment(
                        max_surge=int_or_string(0), max_unavailable=int_or_string(1)
                    )
                ),
                selector=k8s.LabelSelector(match_labels={"app": "x"}),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels={"app": "x"}), spec=_pod_spec()
                ),
            ),
        ),
        (
            k8s.KubeJob,
            lambda: k8s.JobSpec(backoff_limit=3, template=k8s.PodTemplateSpec(spec=_pod_spec())),
        ),
    ],
    ids=["DeploymentSpec", "JobSpec"],
)
def test_to_json_renders_like_cdk8s(l1: Any, spec: Any) -> None:
    meta = k8s.ObjectMeta(name="x", labels={"tier": "a", "app": "x"}, annotations={"z": "1"})
    by_cdk8s = l1.manifest(metadata=meta, spec=spec())
    by_python = {"metadata": to_json(meta), "spec": to_json(spec())}
    assert by_python == {key: by_cdk8s[key] for key in ("metadata", "spec")}
    # The download Job's name: the same hash whichever side rendered the template.
    assert template_hash(by_python["spec"]) == template_hash(by_cdk8s["spec"])


def test_to_json_drops_unset_fields_and_keeps_empty_ones() -> None:
    assert to_json(k8s.Container(name="c", args=[], env=None)) == {"args": [], "name": "c"}


def test_struct_stores_what_the_generated_constructor_stores() -> None:
    """`struct` skips only jsii's runtime typeguard: the fields it keeps are the generated
    constructor's, unset ones left out in both."""
    fields: dict[str, Any] = {
        "name": "main",
        "image": "example/image:1",
        "args": [],
        "env": None,
        "resources": k8s.ResourceRequirements(limits={"nvidia.com/gpu": quantity(1)}),
    }
    made = struct(k8s.Container, **fields)
    generated = k8s.Container(**fields)
    assert type(made) is k8s.Container
    assert made._values == generated._values  # type: ignore[attr-defined]
    assert made == generated and made.image == "example/image:1" and made.env is None


def test_struct_takes_keyword_arguments_only() -> None:
    with pytest.raises(TypeError, match="keyword arguments only"):
        struct(k8s.Container, "main")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("l1", "spec"),
    [
        (
            k8s.KubeDeployment,
            lambda: k8s.DeploymentSpec(
                selector=k8s.LabelSelector(), template=k8s.PodTemplateSpec(spec=_pod_spec())
            ),
        ),
        (
            k8s.KubeJob,
            lambda: k8s.JobSpec(backoff_limit=3, template=k8s.PodTemplateSpec(spec=_pod_spec())),
        ),
    ],
    ids=["Deployment", "Job"],
)
def test_api_object_synthesizes_as_the_generated_constructor(l1: Any, spec: Any) -> None:
    """The same object whichever way it was made: fields (snake_case in Python) under their
    Kubernetes names, Quantity and IntOrString values rendered, unset fields absent."""
    meta = k8s.ObjectMeta(name="x", labels={"app": "x"}, annotations={"z": "1"})
    chart = new_chart()
    generated = l1(chart, "Generated", metadata=meta, spec=spec())
    made = api_object(l1, chart, "Made", metadata=meta, spec=spec())
    assert type(made) is l1
    assert made.to_json() == generated.to_json()
    assert made.node.id == "Made" and made.name == "x"


def test_api_object_sends_props_under_their_jsii_names() -> None:
    """``role_ref`` goes to jsii as ``roleRef`` (a prop jsii does not know is dropped without a
    word, so a wrong name must fail here, not vanish from the output)."""
    chart = new_chart()
    binding = api_object(
        k8s.KubeRoleBinding,
        chart,
        "Binding",
        metadata=struct(k8s.ObjectMeta, name="b"),
        role_ref=struct(k8s.RoleRef, api_group="rbac.authorization.k8s.io", kind="Role", name="r"),
        subjects=[struct(k8s.Subject, kind="ServiceAccount", name="sa")],
    )
    account = api_object(
        k8s.KubeServiceAccount,
        chart,
        "Account",
        metadata=struct(k8s.ObjectMeta, name="sa"),
        automount_service_account_token=False,
    )
    assert binding.to_json()["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "r",
    }
    assert account.to_json()["automountServiceAccountToken"] is False
    with pytest.raises(TypeError, match=r"has no props \['role_reference'\]"):
        api_object(k8s.KubeRoleBinding, chart, "Bad", role_reference=None)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"has no fields \['nmae'\]"):
        struct(k8s.ObjectMeta, nmae="x")  # type: ignore[call-arg]


_BINDING_MODULES = ("k8s", "keda", "monitoring", "inference")


def _direct_constructions(path: Path) -> list[str]:
    """Calls in ``path`` that make a jsii struct or L1 object the generated (typeguard) way."""
    tree = ast.parse(path.read_text())
    from_bindings = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vllm_doks._imports")
        for alias in node.names
        if alias.name[0].isupper()
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (
                (func.value.id in _BINDING_MODULES and func.attr[0].isupper())
                or (func.value.id == "cdk8s" and func.attr in {"ApiObject", "ApiObjectMetadata"})
            )
        ) or (isinstance(func, ast.Name) and func.id in from_bindings):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_every_struct_and_object_is_made_through_objects() -> None:
    """One way to make them, the fast one: ``kube.X(...)``, the bindings' ``gateway_api.X(...)``
    (or ``struct``/``api_object`` themselves), never ``k8s.X(...)`` (see k8s/objects.py)."""
    package = Path(vllm_doks.__file__).parent
    found = [hit for path in sorted(package.rglob("*.py")) for hit in _direct_constructions(path)]
    assert found == []


def test_kube_makes_what_cdk8s_plus_makes() -> None:
    """``kube.X`` is ``k8s.X`` made the fast way: structs and L1 objects of the same class and
    content; other names (Quantity, enums) are cdk8s-plus' own."""
    container = kube.Container(name="c", image="i", env=None)
    assert type(container) is k8s.Container and container == k8s.Container(name="c", image="i")
    chart = new_chart()
    namespace = kube.KubeNamespace(chart, "Ns", metadata=kube.ObjectMeta(name="n"))
    assert type(namespace) is k8s.KubeNamespace
    assert namespace.to_json() == k8s.KubeNamespace.manifest(metadata=k8s.ObjectMeta(name="n"))
    assert kube.Quantity is k8s.Quantity and kube.IntOrString is k8s.IntOrString


def test_a_binding_loads_only_when_first_used() -> None:
    lazy = Unchecked("vllm_doks_no_such_module")  # made without importing anything
    with pytest.raises(ModuleNotFoundError):
        lazy.Anything  # noqa: B018
    assert gateway_api.HttpRouteSpecRulesMatches is gateway_api.HttpRouteSpecRulesMatches
