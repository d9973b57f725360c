"""The app's wiring of Stack 2: the serving chart and the preflight checks take the NFS model
store's and the Gateway's props from the same functions, and the checks report the props'
problems under the names of the configuration inputs and Stack 1 outputs they come from."""

from __future__ import annotations

import cdk8s
from support import CONFIG_INFRA

from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.k8s.serving_chart import VllmServingChart
from vllm_doks.preflight import kubernetes_problems
from vllm_doks.wiring import gateway_endpoint_props, model_store_props


def test_the_chart_takes_the_wired_props() -> None:
    config = load_config(
        None,
        env={},
        overrides={
            "namespace": "team-a",
            "network_policy": False,
            "tls_certificate_secret": "vllm-tls",
            "tls_hostname": "llm.example.com",
        },
    )
    store, gateway = model_store_props(config, CONFIG_INFRA), gateway_endpoint_props(config)
    assert (store.nfs_server, store.nfs_path, store.capacity_gi) == (
        "10.200.0.7",
        "/123456/abc",
        1000,
    )
    assert (store.namespace, store.download_image, store.download_network_policy) == (
        "team-a",
        None,  # vllm_image empty: each model's pinned image
        False,
    )
    assert (gateway.namespace, gateway.gateway_class_name) == ("team-a", "cilium")
    assert (gateway.https_certificate_secret_name, gateway.hostname) == (
        "vllm-tls",
        "llm.example.com",
    )
    assert gateway.cert_manager_cluster_issuer is None  # an empty input is "not set"
    chart = VllmServingChart(cdk8s.App(), "vllm", config, CONFIG_INFRA)
    assert chart.store.props == store
    assert chart.endpoint.props == gateway


def test_preflight_names_the_props_problems_by_their_inputs() -> None:
    config = load_config(
        None,
        env={},
        overrides={"namespace": "Team_A", "gateway_class": "Cilium!", "tls_hostname": "Bad Host"},
    )
    outputs = InfraOutputs("not a host!", "relative/path", 0, "my-vllm-gpu-h100")
    fields = [p.field for p in kubernetes_problems(config, outputs).items]
    for name in ("nfs_host", "nfs_mount_path", "nfs_size_gb", "gateway_class", "tls_hostname"):
        assert name in fields, fields
    for props_name in ("nfs_server", "nfs_path", "capacity_gi", "gateway_class_name", "hostname"):
        assert props_name not in fields, fields
    # The store and the Gateway check the namespace too; it is reported once, as the input.
    assert fields.count("namespace") == 1, fields
