"""Every construct takes its Props object or the same fields as keyword arguments, and
help() / inspect.signature show each field with its documentation and default."""

from __future__ import annotations

import dataclasses
import inspect
import pydoc
from typing import Any

import cdk8s
import pytest
from support import k8s_app

import vllm_doks
from vllm_doks.k8s import (
    GatewayEndpoint,
    GatewayEndpointProps,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.props import field_docs

# Every construct with a Props class, by the name the package exports.
CONSTRUCTS = {
    "VllmWorkerPool": "VllmWorkerPoolProps",
    "NfsModelStore": "NfsModelStoreProps",
    "GatewayEndpoint": "GatewayEndpointProps",
    "PrefixAwareRouter": "PrefixAwareRouterProps",
    "VllmInferencePool": "VllmInferencePoolProps",
    "VllmAutoscaler": "VllmAutoscalerProps",
    "VllmPodMonitor": "VllmPodMonitorProps",
    "VllmDashboard": "VllmDashboardProps",
    "LoraAdapter": "LoraAdapterProps",
    "DoksCluster": "DoksClusterProps",
    "GpuNodePool": "GpuNodePoolProps",
    "ModelShare": "ModelShareProps",
    "VllmInfraStack": "InfraProps",
    "VllmKubernetesStack": "KubernetesObjectsStackProps",
}
STORE = {"nfs_server": "10.200.0.5", "nfs_path": "/1234567/abcd", "capacity_gi": 1000}


def synth(build: Any) -> list[dict[str, Any]]:
    chart = cdk8s.Chart(k8s_app(), "c", disable_resource_name_hashes=True)
    build(chart)
    return list(cdk8s.Testing.synth(chart))


def test_keyword_arguments_build_the_same_objects_as_props() -> None:
    def with_props(chart: cdk8s.Chart) -> None:
        store = NfsModelStore(chart, "Models", NfsModelStoreProps(**STORE))
        model = store.add_model("Qwen/Qwen2.5-0.5B-Instruct", node_pool_name="gpu")
        pool = VllmWorkerPool(
            chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu", replicas=2)
        )
        GatewayEndpoint(chart, "Gateway", GatewayEndpointProps(name="gw")).route_to(pool)

    def with_kwargs(chart: cdk8s.Chart) -> None:
        store = NfsModelStore(chart, "Models", **STORE)
        model = store.add_model("Qwen/Qwen2.5-0.5B-Instruct", node_pool_name="gpu")
        pool = VllmWorkerPool(chart, "Workers", model=model, gpu_node_pool_name="gpu", replicas=2)
        GatewayEndpoint(chart, "Gateway", name="gw").route_to(pool)

    kwargs_objects = synth(with_kwargs)
    assert kwargs_objects == synth(with_props)
    deployment = next(o for o in kwargs_objects if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2


def test_props_and_keywords_together_is_refused() -> None:
    chart = cdk8s.Chart(k8s_app(), "c")
    with pytest.raises(TypeError, match="either props or its fields"):
        NfsModelStore(chart, "Models", NfsModelStoreProps(**STORE), capacity_gi=5)


def test_a_missing_required_field_is_named() -> None:
    chart = cdk8s.Chart(k8s_app(), "c")
    with pytest.raises(TypeError, match="nfs_path"):
        NfsModelStore(chart, "Models", nfs_server="10.0.0.1", capacity_gi=5)


def test_optional_props_still_optional() -> None:
    objs = synth(lambda chart: GatewayEndpoint(chart, "Gateway"))
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Gateway"] == ["vllm-gateway"]


@pytest.mark.parametrize(("construct", "props"), sorted(CONSTRUCTS.items()))
def test_signature_lists_every_field_with_its_default(construct: str, props: str) -> None:
    construct_cls, props_cls = getattr(vllm_doks, construct), getattr(vllm_doks, props)
    params = inspect.signature(construct_cls).parameters
    assert list(params)[:3] == ["scope", "id", "props"]
    for f in dataclasses.fields(props_cls):
        p = params[f.name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY
        if f.default is not dataclasses.MISSING:
            assert p.default == f.default, f.name
        elif f.default_factory is dataclasses.MISSING:
            assert p.default is inspect.Parameter.empty, f.name  # required


@pytest.mark.parametrize("props", sorted(set(CONSTRUCTS.values())))
def test_help_shows_every_fields_documentation(props: str) -> None:
    props_cls = getattr(vllm_doks, props)
    text = pydoc.render_doc(props_cls, renderer=pydoc.plaintext)
    docs = field_docs(props_cls)
    for f in dataclasses.fields(props_cls):
        assert f.name in docs, f"{props}.{f.name} has no attribute docstring"
        first_line = docs[f.name].splitlines()[0]
        assert first_line in text, f"{props}.{f.name}: {first_line!r} not in help()"


def test_construct_help_points_at_its_props() -> None:
    text = pydoc.render_doc(VllmWorkerPool, renderer=pydoc.plaintext)
    # The keyword arguments, from the signature.
    assert "gpu_pool: 'GpuPoolRef | None' = None" in text
    assert "help(VllmWorkerPoolProps)" in text
