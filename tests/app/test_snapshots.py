"""Golden output: every construct alone in a fresh chart (only the objects under it), and every
documented configuration of both layers (the files ``app.py synth`` writes). A refactor that
changes none of them proves it changes no output; a change on purpose is reviewed in the
snapshot diff (``pytest tests/app/test_snapshots.py --snapshot-update``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cdk8s
import pytest
import yaml
from constructs import Construct
from support import GPU_POOL, QWEN, STORE, new_chart, synthesized
from syrupy.assertion import SnapshotAssertion

from vllm_doks.k8s import (
    GatewayEndpoint,
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
)
from vllm_doks.k8s.autoscaling import VllmAutoscaler, VllmAutoscalerProps
from vllm_doks.k8s.dashboard import VllmDashboard, VllmDashboardProps
from vllm_doks.k8s.inference_pool import VllmInferencePool, VllmInferencePoolProps
from vllm_doks.k8s.pod_monitor import VllmPodMonitor, VllmPodMonitorProps
from vllm_doks.k8s.prefix_router import PrefixAwareRouter, PrefixAwareRouterProps


def objects_under(construct: Construct) -> str:
    """The YAML of the Kubernetes objects under ``construct`` only, in construct order."""
    cdk8s.Chart.of(construct)  # it must live in a chart
    docs = [c.to_json() for c in construct.node.find_all() if isinstance(c, cdk8s.ApiObject)]
    return yaml.safe_dump_all(docs, sort_keys=True)


def _pool(chart: cdk8s.Chart, **props: object) -> VllmWorkerPool:
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, node_pool_name=GPU_POOL)
    return VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, **props)
    )


def _store(chart: cdk8s.Chart) -> Construct:
    store = NfsModelStore(chart, "Models", STORE)
    store.add_model(QWEN, node_pool_name=GPU_POOL)
    return store


def _namespace(chart: cdk8s.Chart) -> Construct:
    add_namespace(chart)
    return chart


def _gateway(chart: cdk8s.Chart) -> Construct:
    gateway = GatewayEndpoint(chart, "Gateway")
    gateway.route_to(_pool(chart))
    return gateway


def _router(chart: cdk8s.Chart) -> Construct:
    return PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[_pool(chart)]))


def _inference_pool(chart: cdk8s.Chart) -> Construct:
    props = VllmInferencePoolProps(pool=_pool(chart), gateway_namespaces=("envoy-gateway-system",))
    return VllmInferencePool(chart, "InferencePool", props)


def _autoscaler(chart: cdk8s.Chart) -> Construct:
    props = VllmAutoscalerProps(
        pool=_pool(chart),
        prometheus_server_address="http://prometheus-operated.monitoring.svc:9090",
        max_replicas=2,
        gpu_node_count=2,
    )
    return VllmAutoscaler(chart, "Autoscaler", props)


def _pod_monitor(chart: cdk8s.Chart) -> Construct:
    pool = _pool(chart, allow_from_namespaces=("monitoring",))
    props = VllmPodMonitorProps(pool=pool, prometheus_namespace="monitoring")
    return VllmPodMonitor(chart, "PodMonitor", props)


def _dashboard(chart: cdk8s.Chart) -> Construct:
    return VllmDashboard(chart, "Dashboard", VllmDashboardProps(pool=_pool(chart)))


CONSTRUCTS: dict[str, Callable[[cdk8s.Chart], Construct]] = {
    "namespace": _namespace,
    "nfs-model-store-with-a-model": _store,
    "vllm-worker-pool": _pool,
    "gateway-endpoint": _gateway,
    "prefix-aware-router": _router,
    "inference-pool": _inference_pool,
    "autoscaler": _autoscaler,
    "pod-monitor": _pod_monitor,
    "dashboard": _dashboard,
}


@pytest.mark.parametrize("name", list(CONSTRUCTS))
def test_construct_snapshot(name: str, snapshot: SnapshotAssertion) -> None:
    text = objects_under(CONSTRUCTS[name](new_chart()))
    assert text.strip(), f"{name} made no objects"
    assert text == snapshot


#: The configurations the README documents, as ``app.py synth`` arguments.
README_CONFIG = """\
name_prefix: my-vllm
region: nyc2
vpc_cidr: 10.200.0.0/22
doks_cluster_subnet: 172.16.0.0/20
doks_service_subnet: 192.168.0.0/22
nfs_size_gb: 1000
gpu_node_count: 2
model_id: Qwen/Qwen2.5-0.5B-Instruct
replicas: 1
"""
CONFIGURATIONS: dict[str, tuple[str, ...]] = {
    "default": (),
    "readme-vllm-yaml": ("--config", "<readme>"),
    "ha-72b-h100-fp8-kv-cache": (
        "--model-id", "Qwen/Qwen2.5-72B-Instruct", "--quantization", "fp8", "--replicas", "3",
        "--gpu-node-count", "3", "--gpu-memory-utilization", "0.95", "--kv-cache-dtype", "fp8",
        "--max-model-len", "12288",
    ),
    "amd-mi300x": ("--gpu-size", "gpu-mi300x1-192gb"),
    "autoscaling-and-observability": (
        "--autoscaling", "true", "--autoscaling-max-replicas", "4",
        "--gpu-autoscale-max-nodes", "4", "--pod-monitor", "true", "--grafana-dashboard", "true",
    ),
    "stack-2-via-terraform": ("--kubernetes-via-terraform", "true"),
    "spaces-state-backend": ("--state-bucket", "my-state"),
}  # fmt: skip


def output_files(base: Path) -> dict[str, str]:
    return {
        str(p.relative_to(base)): p.read_text()
        for p in sorted(base.rglob("*"))
        if p.is_file() and p.suffix in {".json", ".yaml"} and "manifest" not in p.name
    }


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_configuration_snapshot(
    name: str, snapshot: SnapshotAssertion, tmp_path_factory: pytest.TempPathFactory
) -> None:
    args = CONFIGURATIONS[name]
    if "<readme>" in args:
        config = tmp_path_factory.getbasetemp() / "readme-vllm.yaml"
        config.write_text(README_CONFIG)
        args = tuple(str(config) if a == "<readme>" else a for a in args)
    files = output_files(synthesized(tmp_path_factory, *args))
    assert any(f.startswith("cdktf.out/") for f in files)
    assert any(f.startswith("dist/") for f in files) or name == "stack-2-via-terraform"
    for path, text in files.items():
        if path.endswith(".json"):
            json.loads(text)  # well-formed
    assert files == snapshot
