"""Routing strategies: round-robin (pool Service), PrefixAwareRouter and VllmInferencePool,
asserted on the objects they synthesize."""

from __future__ import annotations

import copy
import json
from typing import Any

import cdk8s
import pytest
import yaml
from conftest import FIXTURES, validate_objects
from support import GPU_POOL, LLAMA, QWEN, STORE, Obj, find, k8s_app

from vllm_doks import ValidationError, contracts
from vllm_doks.k8s import (
    GatewayEndpoint,
    GatewayEndpointProps,
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.k8s.inference_pool import (
    DEFAULT_EPP_IMAGE,
    EPP_GRPC_PORT,
    VllmInferencePool,
    VllmInferencePoolProps,
)
from vllm_doks.k8s.prefix_router import (
    DEFAULT_ROUTER_IMAGE,
    PrefixAwareRouter,
    PrefixAwareRouterProps,
)

GATEWAY_NS = ("envoy-gateway-system",)


def pool_chart(**pool: Any) -> tuple[cdk8s.Chart, VllmWorkerPool]:
    chart = cdk8s.Chart(k8s_app(), "test")
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, node_pool_name=GPU_POOL)
    props = VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, **pool)
    return chart, VllmWorkerPool(chart, "Workers", props)


#: A GatewayClass implementing the Inference Extension (Envoy Gateway's conventional name);
#: Cilium's is refused with an InferencePool backend.
INFERENCE_GATEWAY_CLASS = "eg"


def strategy_chart(
    strategy: str,
    *,
    with_routing_objects: bool = True,
    gateway_class: str = INFERENCE_GATEWAY_CLASS,
) -> list[Obj]:
    """A chart with a pool, a router and an InferencePool; the route uses ``strategy``."""
    chart, pool = pool_chart(replicas=2)
    router = inference = None
    if with_routing_objects:
        router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool]))
        inference = VllmInferencePool(
            chart,
            "InferencePool",
            VllmInferencePoolProps(pool=pool, gateway_namespaces=GATEWAY_NS),
        )
    backend = {"round-robin": None, "prefix-aware": router, "inference-pool": inference}
    GatewayEndpoint(
        chart, "Gateway", GatewayEndpointProps(gateway_class_name=gateway_class)
    ).route_to(pool, backend=backend[strategy])
    return list(cdk8s.Testing.synth(chart))


def router_objs(**router: Any) -> tuple[list[Obj], PrefixAwareRouter]:
    chart, pool = pool_chart()
    r = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool], **router))
    return list(cdk8s.Testing.synth(chart)), r


# --- PrefixAwareRouter ----------------------------------------------------------------------


def test_router_rbac_is_read_only_pods_in_its_namespace() -> None:
    objs, _ = router_objs()
    role = find(objs, "Role", "vllm-router-pod-reader")
    assert role["metadata"]["namespace"] == "vllm"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    binding = find(objs, "RoleBinding", "vllm-router-pod-reader")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "vllm-router-pod-reader",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "vllm-router", "namespace": "vllm"}
    ]
    assert find(objs, "ServiceAccount", "vllm-router")["automountServiceAccountToken"] is False


def test_router_pods_are_locked_down() -> None:
    objs, _ = router_objs()
    deployment = find(objs, "Deployment", "vllm-router")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vllm-router"
    # The router is the only pod that needs the API (pod discovery); the workers do not.
    assert pod["automountServiceAccountToken"] is True
    assert (
        find(objs, "Deployment", "vllm")["spec"]["template"]["spec"]["automountServiceAccountToken"]
        is False
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert container["image"] == DEFAULT_ROUTER_IMAGE
    assert not DEFAULT_ROUTER_IMAGE.endswith(":latest")
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    assert [v["emptyDir"] for v in pod["volumes"]] == [{}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    pdb = find(objs, "PodDisruptionBudget", "vllm-router-pdb")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == {"app": "vllm-router"}
    service = find(objs, "Service", "vllm-router")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"app": "vllm-router"}


def test_router_args_carry_discovery_selector_and_routing_logic() -> None:
    objs, router = router_objs()
    (container,) = find(objs, "Deployment", "vllm-router")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs == {
        "--host": "0.0.0.0",
        "--port": "8000",
        "--service-discovery": "k8s",
        "--k8s-namespace": "vllm",
        "--k8s-label-selector": "app=vllm",
        "--k8s-port": "8000",
        "--routing-logic": "prefixaware",
    }
    assert args == router.args
    # Discovery reads /v1/models, which vLLM guards with the pool's API key.
    env = {e["name"]: e for e in container["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "vllm-api-key"


def test_router_other_logics_and_several_pools() -> None:
    chart, pool = pool_chart()
    model = NfsModelStore(chart, "Models2", STORE).add_model(LLAMA, node_pool_name=GPU_POOL)
    llama = VllmWorkerPool(
        chart, "Llama", VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, name="llama")
    )
    router = PrefixAwareRouter(
        chart,
        "Router",
        PrefixAwareRouterProps(
            pools=[pool, llama], routing_logic="session", session_key="x-user-id"
        ),
    )
    assert "--k8s-label-selector" in router.args
    assert router.args[router.args.index("--k8s-label-selector") + 1] == "app in (vllm,llama)"
    assert router.args[-4:] == ["--routing-logic", "session", "--session-key", "x-user-id"]
    objs = list(cdk8s.Testing.synth(chart))
    assert find(objs, "NetworkPolicy", "vllm-router-to-llama")
    assert validate_objects(objs) == []
    _, rr = router_objs(routing_logic="roundrobin")
    assert "roundrobin" in rr.args


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"routing_logic": "kvaware"}, "routing_logic"),
        ({"routing_logic": "session"}, "session_key"),
        ({"image": "lmcache/lmstack-router:latest"}, "image"),
        ({"replicas": 0}, "replicas"),
        ({"name": "vllm"}, "name"),
        ({"memory_request": "4Gi"}, "memory_request"),
    ],
)
def test_router_rejects_bad_props(props: dict[str, Any], field: str) -> None:
    chart, pool = pool_chart()
    with pytest.raises(ValidationError, match=field):
        PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool], **props))


def test_router_rejects_pools_on_different_ports() -> None:
    chart, pool = pool_chart()
    model = NfsModelStore(chart, "Models2", STORE).add_model(LLAMA, node_pool_name=GPU_POOL)
    other = VllmWorkerPool(
        chart,
        "Llama",
        VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, name="llama", port=9000),
    )
    with pytest.raises(ValidationError, match="same port"):
        PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool, other]))
    with pytest.raises(ValidationError, match="pools"):
        PrefixAwareRouter(chart, "Router2", PrefixAwareRouterProps(pools=[]))


def test_router_is_admitted_to_the_pool_port() -> None:
    objs, _ = router_objs()
    policy = find(objs, "NetworkPolicy", "vllm-router-to-vllm")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "vllm"}}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "vllm-router"}}}],
            "ports": [{"port": 8000, "protocol": "TCP"}],
        }
    ]
    # The router's own pods: its port only from the Gateway's data path.
    own = find(objs, "NetworkPolicy", "vllm-router-ingress")
    assert own["spec"]["podSelector"] == {"matchLabels": {"app": "vllm-router"}}
    assert "ingress" not in own["spec"]
    cilium = find(objs, "CiliumNetworkPolicy", "vllm-router-from-gateway")
    assert cilium["spec"]["ingress"][0]["fromEntities"] == ["ingress"]
    assert cilium["spec"]["ingress"][0]["toPorts"] == [
        {"ports": [{"port": "8000", "protocol": "TCP"}]}
    ]
    # The pool's own policies are untouched by the router.
    pool_objs = list(cdk8s.Testing.synth(pool_chart()[0]))
    for kind, name in (
        ("NetworkPolicy", "vllm-ingress"),
        ("CiliumNetworkPolicy", "vllm-from-gateway"),
    ):
        assert find(objs, kind, name) == find(pool_objs, kind, name)


def test_router_without_pool_network_policy_adds_none() -> None:
    chart, pool = pool_chart(network_policy=False)
    PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool]))
    objs = list(cdk8s.Testing.synth(chart))
    assert not [o for o in objs if o["metadata"]["name"] == "vllm-router-to-vllm"]


# --- VllmInferencePool ----------------------------------------------------------------------


def inference_objs(**props: Any) -> tuple[list[Obj], VllmWorkerPool]:
    chart, pool = pool_chart(port=8080)
    VllmInferencePool(
        chart,
        "InferencePool",
        VllmInferencePoolProps(pool=pool, **{"gateway_namespaces": GATEWAY_NS, **props}),
    )
    return list(cdk8s.Testing.synth(chart)), pool


def test_inference_pool_selects_the_pool_pods_and_port() -> None:
    objs, pool = inference_objs()
    ip = find(objs, "InferencePool", "vllm-pool")
    assert ip["apiVersion"] == "inference.networking.k8s.io/v1"
    assert ip["spec"]["selector"] == {"matchLabels": pool.selector_labels}
    assert ip["spec"]["targetPorts"] == [{"number": pool.service_port}] == [{"number": 8080}]
    assert ip["spec"]["endpointPickerRef"] == {
        "kind": "Service",
        "name": "vllm-pool-epp",
        "port": {"number": EPP_GRPC_PORT},
        "failureMode": "FailClose",
    }
    service = find(objs, "Service", "vllm-pool-epp")
    assert {p["port"] for p in service["spec"]["ports"]} == {9002, 9090}
    assert validate_objects(objs) == []


def test_epp_deployment_rbac_and_security() -> None:
    objs, _ = inference_objs()
    deployment = find(objs, "Deployment", "vllm-pool-epp")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == DEFAULT_EPP_IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"
    args = container["args"]
    assert args[args.index("--pool-name") + 1] == "vllm-pool"
    assert args[args.index("--pool-namespace") + 1] == "vllm"
    assert container["readinessProbe"]["grpc"] == {"port": 9003, "service": "inference-extension"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is True
    role = find(objs, "Role", "vllm-pool-epp")
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    assert {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    } == {
        ("", "pods"),
        ("inference.networking.k8s.io", "inferencepools"),
        ("inference.networking.x-k8s.io", "inferenceobjectives"),
        ("inference.networking.x-k8s.io", "inferencemodelrewrites"),
    }
    # Network: the gateway's namespaces may reach the EPP and the pods; the EPP the pods.
    epp_policy = find(objs, "NetworkPolicy", "vllm-pool-epp-ingress")
    assert epp_policy["spec"]["ingress"][0]["ports"] == [{"port": 9002, "protocol": "TCP"}]
    to_pool = find(objs, "NetworkPolicy", "vllm-pool-epp-to-vllm")
    assert to_pool["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app": "vllm-pool-epp"}}}
    ]
    gw = find(objs, "NetworkPolicy", "vllm-pool-gateway-to-vllm")
    assert gw["spec"]["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_inference_pool_requires_gateway_namespaces_with_network_policy() -> None:
    chart, pool = pool_chart()
    with pytest.raises(ValidationError, match="gateway_namespaces"):
        VllmInferencePool(chart, "IP", VllmInferencePoolProps(pool=pool))
    VllmInferencePool(chart, "IP2", VllmInferencePoolProps(pool=pool, network_policy=False))


# --- Switching strategies -------------------------------------------------------------------


def without_route(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if o["kind"] != "HTTPRoute"]


def route_without_backends(objs: list[Obj]) -> Obj:
    """The route with its first (PathPrefix) rule only, without backendRefs."""
    (route,) = [o for o in objs if o["kind"] == "HTTPRoute"]
    route = copy.deepcopy(route)
    route["spec"]["rules"] = route["spec"]["rules"][:1]
    for rule in route["spec"]["rules"]:
        del rule["backendRefs"]
    return route


def backend_refs(objs: list[Obj]) -> list[Obj]:
    (route,) = [o for o in objs if o["kind"] == "HTTPRoute"]
    return list(route["spec"]["rules"][0]["backendRefs"])


def test_switching_strategy_changes_only_the_route_backends() -> None:
    charts = {s: strategy_chart(s) for s in ("round-robin", "prefix-aware", "inference-pool")}
    base = charts["round-robin"]
    for objs in charts.values():
        assert without_route(objs) == without_route(base)
        assert route_without_backends(objs) == route_without_backends(base)
    assert backend_refs(charts["round-robin"]) == [{"name": "vllm", "port": 8000}]
    assert backend_refs(charts["prefix-aware"]) == [{"name": "vllm-router", "port": 8000}]
    assert backend_refs(charts["inference-pool"]) == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "vllm-pool"}
    ]


@pytest.mark.parametrize("strategy", ["round-robin", "prefix-aware", "inference-pool"])
def test_every_strategy_validates(strategy: str) -> None:
    assert validate_objects(strategy_chart(strategy)) == []


def test_default_route_is_unchanged_by_the_backend_parameter() -> None:
    chart, pool = pool_chart(replicas=2)
    GatewayEndpoint(chart, "Gateway").route_to(pool)
    default = list(cdk8s.Testing.synth(chart))
    assert default == strategy_chart(
        "round-robin", with_routing_objects=False, gateway_class="cilium"
    )
    assert not [o for o in default if o["metadata"]["name"].startswith("vllm-router")]


def test_two_synths_are_byte_identical() -> None:
    for strategy in ("prefix-aware", "inference-pool"):
        first = yaml.safe_dump_all(strategy_chart(strategy), sort_keys=False)
        second = yaml.safe_dump_all(strategy_chart(strategy), sort_keys=False)
        assert first == second


def test_route_to_rejects_a_backend_for_another_pool() -> None:
    chart, pool = pool_chart()
    model = NfsModelStore(chart, "Models2", STORE).add_model(LLAMA, node_pool_name=GPU_POOL)
    llama = VllmWorkerPool(
        chart, "Llama", VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, name="llama")
    )
    router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool]))
    endpoint = GatewayEndpoint(chart, "Gateway")
    with pytest.raises(ValidationError, match="backend"):
        endpoint.route_to(llama, backend=router)
    with pytest.raises(ValidationError, match="backend"):
        endpoint.route_to(pool, backend="router")  # type: ignore[arg-type]


# --- External contracts of the picker and the router ----------------------------------------

EPP_V150 = json.loads(
    (FIXTURES / "gateway-api-inference-extension-v1.5.0-epp.json").read_text(encoding="utf-8")
)


def test_epp_image_is_the_last_release_that_publishes_the_full_picker() -> None:
    # v1.6.0's cloud build pushes only the lightweight picker: epp:v1.6.0 does not exist.
    assert EPP_V150["cloudbuild_make_targets"]["v1.6.0"] == ["lwepp-image-push"]
    assert "image-push" in EPP_V150["cloudbuild_make_targets"]["v1.5.0"]
    assert DEFAULT_EPP_IMAGE == contracts.EPP_IMAGE == EPP_V150["chart_image"]


def test_epp_flags_and_role_are_exactly_v1_5_0s() -> None:
    objs, _ = inference_objs()
    (container,) = find(objs, "Deployment", "vllm-pool-epp")["spec"]["template"]["spec"][
        "containers"
    ]
    used = {a.split("=")[0].removeprefix("--") for a in container["args"] if a.startswith("--")}
    assert used <= set(EPP_V150["flags"])
    assert used == {f.removeprefix("--") for f in contracts.EPP_FLAGS}
    # Metrics authentication and tracing need RBAC / a collector we do not deploy.
    assert "--metrics-endpoint-auth=false" in container["args"]
    assert "--tracing=false" in container["args"]
    role = find(objs, "Role", "vllm-pool-epp")

    def rule_set(rules: list[Obj]) -> set[tuple[str, str, tuple[str, ...]]]:
        return {
            (g, r, tuple(sorted(rule["verbs"])))
            for rule in rules
            for g in rule["apiGroups"]
            for r in rule["resources"]
        }

    assert rule_set(role["rules"]) == rule_set(EPP_V150["role_rules"])


def test_inference_pool_behind_cilium_is_refused() -> None:
    chart, pool = pool_chart()
    inference = VllmInferencePool(
        chart, "InferencePool", VllmInferencePoolProps(pool=pool, gateway_namespaces=GATEWAY_NS)
    )
    with pytest.raises(ValidationError) as err:
        GatewayEndpoint(chart, "Gateway").route_to(pool, backend=inference)
    (problem,) = err.value.problems
    assert problem.field == "backend"
    assert "'cilium' does not implement the Gateway API Inference Extension" in problem.expected


@pytest.mark.parametrize(
    ("path_prefix", "rewrite", "models_path"),
    [
        ("/v1", None, "/v1/models"),
        ("/qwen/v1", "/v1", "/qwen/v1/models"),
        ("/", None, "/v1/models"),
    ],
)
def test_router_route_sends_the_model_list_to_vllm(
    path_prefix: str, rewrite: str | None, models_path: str
) -> None:
    # The router answers GET /v1/models itself without any key (production-stack
    # vllm-stack-0.1.12 routers/main_router.py); an Exact rule sends it to vLLM instead.
    chart, pool = pool_chart()
    router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool]))
    GatewayEndpoint(chart, "Gateway").route_to(
        pool, backend=router, path_prefix=path_prefix, rewrite_prefix_to=rewrite
    )
    objs = list(cdk8s.Testing.synth(chart))
    (route,) = [o for o in objs if o["kind"] == "HTTPRoute"]
    prefix_rule, models_rule = route["spec"]["rules"]
    assert prefix_rule["backendRefs"] == [{"name": "vllm-router", "port": 8000}]
    assert models_rule["matches"] == [{"path": {"type": "Exact", "value": models_path}}]
    assert models_rule["backendRefs"] == [{"name": "vllm", "port": 8000}]
    if models_path != "/v1/models":
        assert models_rule["filters"][0]["urlRewrite"]["path"] == {
            "type": "ReplaceFullPath",
            "replaceFullPath": "/v1/models",
        }
    assert validate_objects(objs) == []


def test_router_route_without_api_key_has_no_model_list_rule() -> None:
    chart, pool = pool_chart(api_key_secret_name=None)
    router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool]))
    route = GatewayEndpoint(chart, "Gateway").route_to(pool, backend=router)
    assert len(route.to_json()["spec"]["rules"]) == 1
