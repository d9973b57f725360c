"""ServingWorkload and its connections: the Deployment/Service/PodDisruptionBudget block and every
ingress policy are written in one place each, and a workload of our own gets them by subclassing
(cdk8s-plus' Deployment with ``pod.connections``)."""

from __future__ import annotations

import ast
from pathlib import Path

import cdk8s
import pytest
from cdk8s_plus_28 import k8s
from conftest import REPO
from constructs import Construct
from support import GPU_POOL, QWEN, STORE, find, new_chart, synth

from vllm_doks.k8s import NfsModelStore, VllmWorkerPool, VllmWorkerPoolProps
from vllm_doks.k8s.inference_pool import VllmInferencePool, VllmInferencePoolProps
from vllm_doks.k8s.network_policies import GATEWAY, Namespaces
from vllm_doks.k8s.prefix_router import PrefixAwareRouter, PrefixAwareRouterProps
from vllm_doks.k8s.workload import Resources, ServingWorkload, rolling_update, service_port
from vllm_doks.validation import Problems

K8S = REPO / "constructs" / "vllm_doks" / "k8s"


class Echo(ServingWorkload):
    """A workload of our own: one container, one port."""

    def __init__(
        self, scope: Construct, id: str, *, namespace: str = "vllm", budget: bool = True
    ) -> None:
        super().__init__(scope, id)
        self._select(namespace=namespace, app="echo")
        self._serve(
            name="echo",
            replicas=2,
            strategy=rolling_update(max_surge=1, max_unavailable=0),
            pod_spec=k8s.PodSpec(containers=[k8s.Container(name="echo", image="echo:1")]),
            ports=[service_port("http", 8080)],
            disruption_budget="echo-pdb" if budget else None,
        )


def _pool(chart: cdk8s.Chart, **props: object) -> VllmWorkerPool:
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, node_pool_name=GPU_POOL)
    return VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, **props)
    )


def test_a_subclass_gets_deployment_service_and_budget_selecting_its_pods() -> None:
    chart = new_chart()
    echo = Echo(chart, "Echo")
    objs = synth(chart)
    deployment = find(objs, "Deployment", "echo")
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "echo"}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "echo"}
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    service = find(objs, "Service", "echo")
    assert service["spec"]["selector"] == {"app": "echo"}
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "protocol": "TCP", "targetPort": "http"}
    ]
    budget = find(objs, "PodDisruptionBudget", "echo-pdb")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "echo"}}}
    # The objects are the subclass's own children: their construct ids are the contract.
    assert [c.node.id for c in echo.node.children] == [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    assert echo.selector_labels == {"app": "echo"}
    echo.selector_labels["app"] = "changed"
    assert echo.selector_labels == {"app": "echo"}


def test_no_budget_when_not_asked() -> None:
    chart = new_chart()
    echo = Echo(chart, "Echo", budget=False)
    assert echo.pod_disruption_budget is None
    assert "PodDisruptionBudget" not in {o["kind"] for o in synth(chart)}


def test_isolate_without_namespaces_denies_all_ingress() -> None:
    chart = new_chart()
    echo = Echo(chart, "Echo")
    assert not echo.connections.isolated
    echo.connections.isolate(allow=Namespaces(()), port=8080, id="Np", name="echo-ingress")
    assert echo.connections.isolated
    policy = find(synth(chart), "NetworkPolicy", "echo-ingress")
    # No ingress rule at all (an empty rule would admit everyone).
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app": "echo"}},
        "policyTypes": ["Ingress"],
    }


def test_allow_from_another_workload_belongs_to_the_owner() -> None:
    chart = new_chart()
    pool = _pool(chart)
    echo = Echo(chart, "Echo")
    policy = pool.connections.allow_from(
        echo, port=8000, id="EchoToPool", name="echo-to-vllm", owner=echo
    )
    assert policy.node.scope is echo
    obj = find(synth(chart), "NetworkPolicy", "echo-to-vllm")
    assert obj["metadata"]["labels"] == {"app": "echo"}
    assert obj["spec"]["podSelector"] == {"matchLabels": {"app": "vllm"}}
    assert obj["spec"]["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "echo"}}}],
            "ports": [{"port": 8000, "protocol": "TCP"}],
        }
    ]


def test_a_pod_peer_in_another_namespace_is_refused() -> None:
    chart = new_chart()
    echo = Echo(chart, "Echo", namespace="elsewhere")
    with pytest.raises(ValueError, match="namespace 'elsewhere'"):
        _pool(chart).connections.allow_from(echo, port=8000, id="X", name="x")


def test_http_rules_only_for_namespace_peers() -> None:
    chart = new_chart()
    echo = Echo(chart, "Echo")
    with pytest.raises(ValueError, match="http_get"):
        echo.connections.allow_from(GATEWAY, port=8080, id="X", name="x", http_get="/metrics")


def test_the_gateway_peer_makes_a_cilium_policy() -> None:
    chart = new_chart()
    echo = Echo(chart, "Echo")
    echo.connections.allow_from(GATEWAY, port=8080, id="Gw", name="echo-from-gateway")
    policy = find(synth(chart), "CiliumNetworkPolicy", "echo-from-gateway")
    assert policy["spec"]["ingress"] == [
        {"fromEntities": ["ingress"], "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}
    ]


def test_backends_grant_what_they_need_only_where_pools_restrict_ingress() -> None:
    chart = new_chart()
    pool = _pool(chart)
    router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool]))
    picker = VllmInferencePool(
        chart, "Picker", VllmInferencePoolProps(pool=pool, gateway_namespaces=("envoy",))
    )
    assert [(a.pool, a.peer) for a in router.pool_access()] == [(pool, router)]
    assert [(a.pool, a.peer) for a in picker.pool_access()] == [
        (pool, picker),
        (pool, Namespaces(("envoy",))),
    ]
    assert list(router.pool_admission_policies) == ["vllm"]
    assert len(picker.pool_admission_policies) == 2

    open_chart = new_chart()
    open_pool = _pool(open_chart, network_policy=False)
    open_router = PrefixAwareRouter(open_chart, "Router", PrefixAwareRouterProps(pools=[open_pool]))
    assert open_router.pool_access()
    assert open_router.pool_admission_policies == {}


def test_resources_report_every_bad_quantity_at_once() -> None:
    problems = Problems()
    Resources(cpu_request="x", cpu_limit="1", memory_request="y", memory_limit="1Gi").check(
        problems
    )
    assert {p.field for p in problems.items} == {"cpu_request", "memory_request"}


def _made(module: Path) -> set[str]:
    """The L1 classes a module instantiates (directly or through ``api_object``) and the kinds
    it passes as ``kind=``."""
    calls = [n for n in ast.walk(ast.parse(module.read_text())) if isinstance(n, ast.Call)]
    classes = {c.func.attr for c in calls if isinstance(c.func, ast.Attribute)}
    classes |= {
        c.args[0].attr
        for c in calls
        if isinstance(c.func, ast.Name)
        and c.func.id == "api_object"
        and isinstance(c.args[0], ast.Attribute)
    }
    kinds = {
        k.value.value
        for c in calls
        for k in c.keywords
        if k.arg == "kind" and isinstance(k.value, ast.Constant)
    }
    return classes | kinds


@pytest.mark.parametrize(
    ("made", "only_in"),
    [
        ({"KubeDeployment", "KubeService", "KubePodDisruptionBudget"}, "workload.py"),
        ({"KubeNetworkPolicy", "CiliumNetworkPolicy"}, "network_policies.py"),
    ],
)
def test_each_kind_of_object_is_made_in_one_module(made: set[str], only_in: str) -> None:
    makers = {path.name for path in K8S.glob("*.py") if _made(path) & made}
    assert makers == {only_in}
