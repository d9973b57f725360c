"""The objects the contract fixes introduced, applied to a real Kubernetes API server with the
upstream CRDs installed (their structural schemas, CEL rules and defaults apply): the HTTPS
redirect route, the router's exact /v1/models rule, the L7 metrics CiliumNetworkPolicy, the
PodMonitor with its release label and the v1.5.0 picker's InferencePool.

Runs on the session's control plane (the ``control_plane`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import cdk8s
import pytest
import yaml
from support import k8s_app

from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.k8s import GatewayEndpoint, GatewayEndpointProps
from vllm_doks.k8s.inference_pool import VllmInferencePool, VllmInferencePoolProps
from vllm_doks.k8s.prefix_router import PrefixAwareRouter, PrefixAwareRouterProps
from vllm_doks.k8s.serving_chart import VllmServingChart
from vllm_doks.rehearsal import ControlPlane

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def kubectl(control_plane: ControlPlane) -> list[str]:
    """kubectl against the session's real control plane (tests/conftest.py)."""
    return [
        str(control_plane.assets_dir / "kubectl"),
        "--kubeconfig",
        str(control_plane.kubeconfig),
    ]


def _apply(kubectl: list[str], objs: list[dict[str, Any]], tmp_path: Path) -> str:
    path = tmp_path / "objs.yaml"
    path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    done = subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


INFRA = InfraOutputs(
    nfs_host="10.200.0.5", nfs_mount_path="/1234567/abcd", nfs_size_gb=1000,
    gpu_node_pool_name="my-vllm-gpu-h100",
)  # fmt: skip


def test_https_pod_monitor_and_metrics_policy_are_accepted(
    kubectl: list[str], tmp_path: Path
) -> None:
    config = ArchitectureConfig(
        namespace="real-a",
        tls_certificate_secret="vllm-tls",
        tls_hostname="llm.example.com",
        pod_monitor=True,
        autoscaling=True,
        autoscaling_max_replicas=2,
    )
    chart = VllmServingChart(k8s_app(), "vllm", config, INFRA)
    objs = list(cdk8s.Testing.synth(chart))
    # The PersistentVolume is cluster-scoped and named like the other test's: keep this one.
    out = _apply(kubectl, objs, tmp_path)
    assert "httproute.gateway.networking.k8s.io/vllm-gateway-https-redirect" in out
    assert "ciliumnetworkpolicy.cilium.io/vllm-metrics" in out
    assert "podmonitor.monitoring.coreos.com/vllm" in out


def test_router_models_rule_and_inference_pool_are_accepted(
    kubectl: list[str], tmp_path: Path
) -> None:
    config = ArchitectureConfig(namespace="real-b")
    infra = InfraOutputs(
        nfs_host="10.200.0.6", nfs_mount_path="/other", nfs_size_gb=1000,
        gpu_node_pool_name="my-vllm-gpu-h100",
    )  # fmt: skip
    chart = VllmServingChart(k8s_app(), "vllm", config, infra)
    router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[chart.pool]))
    chart.endpoint.route_to(
        chart.pool, backend=router, path_prefix="/r/v1", rewrite_prefix_to="/v1", route_name="r"
    )
    inference = VllmInferencePool(
        chart, "Pool", VllmInferencePoolProps(pool=chart.pool, gateway_namespaces=("eg",))
    )
    GatewayEndpoint(
        chart, "Eg", GatewayEndpointProps(name="eg-gateway", namespace="real-b",
                                          gateway_class_name="eg")
    ).route_to(chart.pool, backend=inference, route_name="via-pool")  # fmt: skip
    objs = [
        o
        for o in cdk8s.Testing.synth(chart)
        if o["kind"] != "PersistentVolume"  # cluster-scoped, already applied above
    ]
    out = _apply(kubectl, objs, tmp_path)
    assert "httproute.gateway.networking.k8s.io/r" in out
    assert "inferencepool.inference.networking.k8s.io/vllm-pool" in out
