"""Secure defaults of the Kubernetes layer: API-key authentication, the network policies, the
HTTPS listener, quantization methods, resource bounds and the checkov waivers, asserted on the
synthesized objects (checkov itself runs in tests/k8s/test_k8s_checkov.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import validate_objects
from support import GPU_POOL, QWEN, STORE, Obj, find, k8s_app, kinds, new_chart, synth

from vllm_doks import ValidationError
from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.k8s import (
    VLLM_QUANTIZATION_METHODS,
    GatewayEndpoint,
    GatewayEndpointProps,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.k8s.names import VLLM_DEPRECATED_QUANTIZATION_METHODS
from vllm_doks.k8s.serving_chart import VllmServingChart
from vllm_doks.k8s.suppressions import checkov_skip_annotations


def pool_objects(store: NfsModelStoreProps = STORE, **pool: Any) -> list[Obj]:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", store).add_model(QWEN, node_pool_name=GPU_POOL)
    VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, **pool)
    )
    return synth(chart)


def vllm_env(objs: list[Obj], name: str = "vllm") -> dict[str, Any]:
    (container,) = find(objs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def waived(obj: Obj) -> list[str]:
    annotations = obj["metadata"].get("annotations", {})
    return [
        v.split("=", 1)[0] for k, v in sorted(annotations.items()) if k.startswith("checkov.io/")
    ]


# --- API-key authentication ---------------------------------------------------------------


def test_api_key_is_required_from_a_secret_by_default() -> None:
    objs = pool_objects()
    assert vllm_env(objs)["VLLM_API_KEY"] == {
        "secretKeyRef": {"name": "vllm-api-key", "key": "VLLM_API_KEY", "optional": False}
    }
    # Never on the command line, where `ps` and the pod spec would show it.
    args = find(objs, "Deployment", "vllm")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--api-key" not in args


def test_api_key_secret_can_be_renamed_or_switched_off() -> None:
    renamed = pool_objects(api_key_secret_name="team-key", api_key_secret_key="key")
    assert vllm_env(renamed)["VLLM_API_KEY"]["secretKeyRef"] == {
        "name": "team-key",
        "key": "key",
        "optional": False,
    }
    off = pool_objects(api_key_secret_name=None)
    assert "VLLM_API_KEY" not in vllm_env(off)


def test_probes_and_prestop_use_paths_outside_v1_which_vllm_leaves_open() -> None:
    (container,) = find(pool_objects(), "Deployment", "vllm")["spec"]["template"]["spec"][
        "containers"
    ]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert (
        "http://127.0.0.1:${port}/metrics"
        in container["lifecycle"]["preStop"]["exec"]["command"][2]
    )


def test_the_gateway_publishes_only_the_authenticated_v1_api_by_default() -> None:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    pool = VllmWorkerPool(chart, "W", VllmWorkerPoolProps(model=model, gpu_node_pool_name="g"))
    endpoint = GatewayEndpoint(chart, "Gateway")
    endpoint.route_to(pool)
    endpoint.route_to(pool, path_prefix="/", route_name="everything")
    objs = synth(chart)
    prefix = find(objs, "HTTPRoute", "vllm-route")["spec"]["rules"][0]["matches"][0]["path"]
    assert prefix == {"type": "PathPrefix", "value": "/v1"}
    explicit = find(objs, "HTTPRoute", "everything")["spec"]["rules"][0]["matches"][0]["path"]
    assert explicit["value"] == "/"


def pool_refusal(**props: Any) -> ValidationError:
    """Why a worker pool with ``props`` is refused."""
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    with pytest.raises(ValidationError) as err:
        VllmWorkerPool(
            chart, "W", VllmWorkerPoolProps(model=model, gpu_node_pool_name="g", **props)
        )
    return err.value


def test_api_key_props_are_validated() -> None:
    err = pool_refusal(api_key_secret_name="Not A Secret", api_key_secret_key="a key")
    assert {p.field for p in err.problems} == {"api_key_secret_name", "api_key_secret_key"}


# --- NetworkPolicies ----------------------------------------------------------------------


def test_only_the_gateway_data_path_reaches_the_vllm_port() -> None:
    objs = pool_objects()
    policy = find(objs, "NetworkPolicy", "vllm-ingress")
    # Selects the pool's pods for Ingress and allows nothing itself: deny by default.
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app": "vllm"}},
        "policyTypes": ["Ingress"],
    }
    cilium = find(objs, "CiliumNetworkPolicy", "vllm-from-gateway")
    assert cilium["apiVersion"] == "cilium.io/v2"
    assert cilium["metadata"]["namespace"] == "vllm"
    assert cilium["spec"]["endpointSelector"] == {"matchLabels": {"app": "vllm"}}
    assert cilium["spec"]["ingress"] == [
        {
            "fromEntities": ["ingress"],
            "toPorts": [{"ports": [{"port": "8000", "protocol": "TCP"}]}],
        }
    ]
    assert validate_objects(objs) == []


def test_more_sources_can_be_admitted_on_the_vllm_port_only() -> None:
    objs = pool_objects(port=9000, allow_from_namespaces=("monitoring", "apps"))
    policy = find(objs, "NetworkPolicy", "vllm-ingress")
    assert policy["spec"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                },
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}},
            ],
            "ports": [{"port": 9000, "protocol": "TCP"}],
        }
    ]
    cilium = find(objs, "CiliumNetworkPolicy", "vllm-from-gateway")
    assert cilium["spec"]["ingress"][0]["toPorts"][0]["ports"][0]["port"] == "9000"
    assert validate_objects(objs) == []


def test_network_policies_can_be_switched_off() -> None:
    without_cilium = pool_objects(cilium_gateway_policy=False, allow_from_namespaces=("envoy",))
    assert "CiliumNetworkPolicy" not in kinds(without_cilium)
    find(without_cilium, "NetworkPolicy", "vllm-ingress")
    none = pool_objects(
        network_policy=False, store=dataclasses.replace(STORE, download_network_policy=False)
    )
    assert "NetworkPolicy" not in kinds(none) and "CiliumNetworkPolicy" not in kinds(none)


def test_download_pods_get_no_ingress_and_only_dns_and_public_https() -> None:
    objs = pool_objects()
    policy = find(objs, "NetworkPolicy", "model-download")
    spec = policy["spec"]
    assert spec["podSelector"] == {
        "matchLabels": {"app": "model-download", "vllm-doks.io/download-job": "model-download"}
    }
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in spec
    dns, https = spec["egress"]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert dns["to"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    ]
    assert https["ports"] == [{"port": 443, "protocol": "TCP"}]
    v4 = https["to"][0]["ipBlock"]
    assert v4["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(v4["except"])
    job = find(objs, "Job", "model-download")
    assert job["spec"]["template"]["metadata"]["labels"] == spec["podSelector"]["matchLabels"]


def test_download_egress_can_be_left_open() -> None:
    objs = pool_objects(store=dataclasses.replace(STORE, download_egress_restricted=False))
    spec = find(objs, "NetworkPolicy", "model-download")["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert "egress" not in spec


def test_each_download_job_has_its_own_policy() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", STORE)
    store.add_model(QWEN)
    store.add_model("meta-llama/Llama-3.1-8B-Instruct")
    objs = synth(chart)
    second = find(objs, "NetworkPolicy", "model-download-llama-3-1-8b-instruct")
    assert second["spec"]["podSelector"]["matchLabels"]["vllm-doks.io/download-job"] == (
        "model-download-llama-3-1-8b-instruct"
    )
    assert validate_objects(objs) == []


def test_network_policy_props_are_validated() -> None:
    err = pool_refusal(network_policy="yes", allow_from_namespaces=("Monitoring",))
    assert {p.field for p in err.problems} == {"network_policy", "allow_from_namespaces"}
    assert "must be a tuple" in str(pool_refusal(allow_from_namespaces="monitoring"))


# --- HTTPS --------------------------------------------------------------------------------

HTTPS = GatewayEndpointProps(
    https_certificate_secret_name="vllm-tls",
    hostname="llm.example.com",
    cert_manager_cluster_issuer="letsencrypt",
)


def https_objects(props: GatewayEndpointProps = HTTPS) -> tuple[list[Obj], GatewayEndpoint]:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    pool = VllmWorkerPool(chart, "W", VllmWorkerPoolProps(model=model, gpu_node_pool_name="g"))
    endpoint = GatewayEndpoint(chart, "Gateway", props)
    endpoint.route_to(pool)
    return synth(chart), endpoint


def test_https_listener_terminates_tls_with_a_cert_manager_certificate() -> None:
    objs, endpoint = https_objects()
    gateway = find(objs, "Gateway", "vllm-gateway")
    assert gateway["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert gateway["spec"]["listeners"] == [
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {
            "name": "https",
            "port": 443,
            "protocol": "HTTPS",
            "hostname": "llm.example.com",
            "tls": {
                "mode": "Terminate",
                "certificateRefs": [{"kind": "Secret", "name": "vllm-tls"}],
            },
        },
    ]
    assert endpoint.listener_names == ("http", "https")
    assert (endpoint.https_port, endpoint.hostname) == (443, "llm.example.com")
    # The API is served on HTTPS only; plain HTTP only redirects (tests/core/test_contracts.py).
    route = find(objs, "HTTPRoute", "vllm-route")
    assert route["spec"]["parentRefs"] == [{"name": "vllm-gateway", "sectionName": "https"}]
    redirect = find(objs, "HTTPRoute", "vllm-gateway-https-redirect")
    assert redirect["spec"]["parentRefs"] == [{"name": "vllm-gateway", "sectionName": "http"}]
    assert validate_objects(objs) == []


def test_https_without_cert_manager_or_hostname() -> None:
    objs, endpoint = https_objects(
        GatewayEndpointProps(https_certificate_secret_name="own-tls", https_port=8443)
    )
    gateway = find(objs, "Gateway", "vllm-gateway")
    assert "annotations" not in gateway["metadata"]
    https = gateway["spec"]["listeners"][1]
    assert https["port"] == 8443 and "hostname" not in https
    assert validate_objects(objs) == []
    plain, endpoint = https_objects(GatewayEndpointProps())
    assert endpoint.https_port is None
    assert [lst["name"] for lst in find(plain, "Gateway", "vllm-gateway")["spec"]["listeners"]] == [
        "http"
    ]


@pytest.mark.parametrize(
    ("props", "fields", "fragment"),
    [
        (
            GatewayEndpointProps(hostname="llm.example.com"),
            {"hostname"},
            "needs https_certificate_secret_name",
        ),
        (
            GatewayEndpointProps(https_certificate_secret_name="tls", hostname="https://Llm:443"),
            {"hostname"},
            "lowercase DNS name",
        ),
        (
            GatewayEndpointProps(
                https_certificate_secret_name="tls", cert_manager_cluster_issuer="le"
            ),
            {"cert_manager_cluster_issuer"},
            "and hostname",
        ),
        (
            GatewayEndpointProps(https_certificate_secret_name="tls", https_port=80),
            {"https_port"},
            "must differ from http_port (80)",
        ),
        (
            GatewayEndpointProps(https_certificate_secret_name="TLS Secret", https_port=0),
            {"https_certificate_secret_name", "https_port"},
            "DNS-1123 subdomain",
        ),
    ],
)
def test_https_props_are_validated(
    props: GatewayEndpointProps, fields: set[str], fragment: str
) -> None:
    with pytest.raises(ValidationError) as err:
        GatewayEndpoint(new_chart(), "Gateway", props)
    assert {p.field for p in err.value.problems} == fields
    assert fragment in str(err.value)


def test_wildcard_hostname_is_accepted() -> None:
    objs, _ = https_objects(
        GatewayEndpointProps(https_certificate_secret_name="tls", hostname="*.example.com")
    )
    assert validate_objects(objs) == []


# --- quantization -------------------------------------------------------------------------

CURRENT_METHODS = [
    m for m in VLLM_QUANTIZATION_METHODS if m not in VLLM_DEPRECATED_QUANTIZATION_METHODS
]


@pytest.mark.parametrize("method", CURRENT_METHODS)
def test_every_current_vllm_quantization_method_is_accepted(method: str) -> None:
    args = find(pool_objects(quantization=method), "Deployment", "vllm")["spec"]["template"][
        "spec"
    ]["containers"][0]["args"]
    assert args[args.index("--quantization") + 1] == method


@pytest.mark.parametrize("method", ["fp7", "FP8", "awq ", "gptq-marlin", "squeezellm"])
def test_unknown_quantization_is_refused_naming_the_valid_methods(method: str) -> None:
    with pytest.raises(ValidationError) as err:
        pool_objects(quantization=method)
    (problem,) = err.value.problems
    assert problem.field == "quantization"
    message = str(err.value)
    assert f"quantization: got {method!r}" in message
    assert "awq, fp8, ptpc_fp8" in message and "cpu_awq" in message


def test_deprecated_quantization_needs_vllms_opt_in_flag() -> None:
    with pytest.raises(ValidationError, match="--allow-deprecated-quantization"):
        pool_objects(quantization="fbgemm_fp8")
    args = find(
        pool_objects(quantization="fbgemm_fp8", extra_args=("--allow-deprecated-quantization",)),
        "Deployment",
        "vllm",
    )["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--quantization") + 1] == "fbgemm_fp8"
    assert args[-1] == "--allow-deprecated-quantization"


def test_the_method_list_is_vllm_v0_18s() -> None:
    assert len(VLLM_QUANTIZATION_METHODS) == len(set(VLLM_QUANTIZATION_METHODS)) == 23
    assert set(VLLM_QUANTIZATION_METHODS) > VLLM_DEPRECATED_QUANTIZATION_METHODS
    assert {"fp8", "awq", "gptq", "compressed-tensors", "bitsandbytes", "gguf"} <= set(
        VLLM_QUANTIZATION_METHODS
    )


# --- resources ----------------------------------------------------------------------------


def test_requests_may_not_exceed_limits() -> None:
    with pytest.raises(ValidationError) as err:
        pool_objects(memory_request="64Gi", memory_limit="32Gi")
    assert "memory_request: got '64Gi'; must not exceed memory_limit (32Gi)" in str(err.value)
    bad_store = dataclasses.replace(
        STORE, download_cpu_request="2", download_cpu_limit="1500m", download_memory_limit="x"
    )
    with pytest.raises(ValidationError) as err:
        NfsModelStore(new_chart(), "Models", bad_store)
    assert {p.field for p in err.value.problems} == {
        "download_cpu_request",
        "download_memory_limit",
    }
    unlimited = dataclasses.replace(STORE, download_cpu_limit=None, download_memory_limit=None)
    job = find(pool_objects(store=unlimited), "Job", "model-download")
    assert "limits" not in job["spec"]["template"]["spec"]["containers"][0]["resources"]


# --- checkov waivers ----------------------------------------------------------------------


def test_waivers_are_only_added_where_they_apply() -> None:
    objs = pool_objects()
    assert waived(find(objs, "Deployment", "vllm")) == [
        "CKV_K8S_11",
        "CKV_K8S_13",
        "CKV_K8S_35",
        "CKV_K8S_40",
        "CKV_K8S_43",
        "CKV_K8S_15",
    ]
    assert waived(find(objs, "Job", "model-download")) == ["CKV_K8S_40", "CKV_K8S_43", "CKV_K8S_15"]
    digest = "vllm/vllm-openai@sha256:" + "0" * 64
    tight = pool_objects(
        store=dataclasses.replace(STORE, download_image=digest),
        image=digest,
        memory_limit="200Gi",
        api_key_secret_name=None,
        hf_token_secret_name=None,
    )
    assert waived(find(tight, "Deployment", "vllm")) == ["CKV_K8S_11", "CKV_K8S_40"]
    assert waived(find(tight, "Job", "model-download")) == ["CKV_K8S_40"]
    # The secret-env waiver names only the variables that are there.
    key_only = find(pool_objects(hf_token_secret_name=None), "Deployment", "vllm")
    (reason,) = [
        v for v in key_only["metadata"]["annotations"].values() if v.startswith("CKV_K8S_35=")
    ]
    assert "VLLM_API_KEY" in reason and "HF_TOKEN" not in reason


def test_waiver_reasons_survive_checkovs_parsing() -> None:
    annotations = checkov_skip_annotations([("CKV_K8S_11", "because"), ("CKV_K8S_40", "why")])
    assert annotations == {
        "checkov.io/skip1": "CKV_K8S_11=because",
        "checkov.io/skip2": "CKV_K8S_40=why",
    }
    with pytest.raises(ValueError, match="without '='"):
        checkov_skip_annotations([("CKV_K8S_11", "a=b")])
    with pytest.raises(ValueError):
        checkov_skip_annotations([("CKV_K8S_11", " ")])


# --- the app's chart ----------------------------------------------------------------------


def chart_objects(config: ArchitectureConfig) -> list[Obj]:
    chart = VllmServingChart(k8s_app(), "vllm", config, InfraOutputs.examples_for(config))
    return synth(chart)


def test_the_apps_chart_is_secure_by_default() -> None:
    objs = chart_objects(ArchitectureConfig())
    assert (
        find(objs, "Namespace", "vllm")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )
    assert vllm_env(objs)["VLLM_API_KEY"]["secretKeyRef"]["name"] == "vllm-api-key"
    # The pool's, the download Job's and the smoke test Job's.
    assert kinds(objs).count("NetworkPolicy") == 3
    find(objs, "CiliumNetworkPolicy", "vllm-from-gateway")
    assert len(find(objs, "Gateway", "vllm-gateway")["spec"]["listeners"]) == 1
    assert validate_objects(objs) == []


def test_the_apps_chart_follows_the_security_inputs() -> None:
    config = ArchitectureConfig(
        api_key_secret="",
        network_policy=False,
        tls_certificate_secret="vllm-tls",
        tls_hostname="llm.example.com",
        cert_manager_cluster_issuer="letsencrypt-prod",
    )
    objs = chart_objects(config)
    assert "VLLM_API_KEY" not in vllm_env(objs)
    assert "NetworkPolicy" not in kinds(objs) and "CiliumNetworkPolicy" not in kinds(objs)
    gateway = find(objs, "Gateway", "vllm-gateway")
    assert gateway["metadata"]["annotations"] == {
        "cert-manager.io/cluster-issuer": "letsencrypt-prod"
    }
    https = gateway["spec"]["listeners"][1]
    assert (https["hostname"], https["tls"]["certificateRefs"]) == (
        "llm.example.com",
        [{"kind": "Secret", "name": "vllm-tls"}],
    )
    assert validate_objects(objs) == []
