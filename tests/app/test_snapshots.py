"""Golden output: every construct alone in a fresh chart (only the objects under it), and every
documented configuration of both layers (the files ``app.py synth`` writes). A refactor that
changes none of them proves it changes no output; a change on purpose is reviewed in the
snapshot diff (``pytest tests/app/test_snapshots.py --snapshot-update``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cdk8s
import cdktf
import pytest
import yaml
from cdktf import TerraformStack
from cdktf_cdktf_provider_digitalocean.provider import DigitaloceanProvider
from constructs import Construct
from support import GPU_POOL, QWEN, README_ADAPTERS_YAML, STORE, new_chart, synthesized, tf_app
from syrupy.assertion import SnapshotAssertion

from vllm_doks.cloud import DoksCluster, GpuNodePool, ModelShare
from vllm_doks.k8s import (
    GatewayEndpoint,
    LoraAdapter,
    LoraAdapterProps,
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
)
from vllm_doks.k8s.autoscaling import VllmAutoscaler, VllmAutoscalerProps
from vllm_doks.k8s.canary import CanarySplit
from vllm_doks.k8s.dashboard import VllmDashboard, VllmDashboardProps
from vllm_doks.k8s.inference_pool import VllmInferencePool, VllmInferencePoolProps
from vllm_doks.k8s.pod_monitor import VllmPodMonitor, VllmPodMonitorProps
from vllm_doks.k8s.prefix_router import PrefixAwareRouter, PrefixAwareRouterProps
from vllm_doks.k8s.smoke_test import SmokeTest, SmokeTestProps


def objects_under(construct: Construct, kinds: set[str] | None = None) -> str:
    """The YAML of the Kubernetes objects under ``construct`` only (of ``kinds``, when
    given), in construct order."""
    cdk8s.Chart.of(construct)  # it must live in a chart
    docs = [
        c.to_json()
        for c in construct.node.find_all()
        if isinstance(c, cdk8s.ApiObject) and (kinds is None or c.kind in kinds)
    ]
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


def _lora_adapter(chart: cdk8s.Chart) -> Construct:
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, node_pool_name=GPU_POOL)
    props = LoraAdapterProps(base_model=model, adapter_id=f"{QWEN}-sql-lora", name="sql", rank=16)
    return LoraAdapter(chart, "Sql", props)


def _smoke_test(chart: cdk8s.Chart) -> Construct:
    pool = _pool(chart)
    endpoint = GatewayEndpoint(chart, "Gateway")
    endpoint.route_to(pool)
    return SmokeTest(chart, "Smoke", SmokeTestProps(endpoint=endpoint, pool=pool))


def _canary(chart: cdk8s.Chart) -> Construct:
    store = NfsModelStore(chart, "Models", STORE)
    pools = [
        VllmWorkerPool(
            chart,
            pool_id,
            model=store.add_model(model_id, node_pool_name=GPU_POOL),
            gpu_node_pool_name=GPU_POOL,
            name=name,
            served_model_name="qwen",
        )
        for pool_id, model_id, name in (
            ("Workers", QWEN, "vllm"),
            ("Canary", "Qwen/Qwen2.5-1.5B-Instruct", "vllm-canary"),
        )
    ]
    gateway = GatewayEndpoint(chart, "Gateway")
    gateway.route_to(pools[0], canary=CanarySplit(pool=pools[1], weight=10))
    return gateway


def _network_policies(chart: cdk8s.Chart) -> Construct:
    """Every NetworkPolicy and CiliumNetworkPolicy of a pool reachable from a Gateway, a
    router and Prometheus (they are made by the constructs they protect)."""
    pool = _pool(chart, allow_from_namespaces=("monitoring",))
    router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[pool]))
    GatewayEndpoint(chart, "Gateway").route_to(pool, backend=router)
    return chart


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
    "lora-adapter": _lora_adapter,
    "smoke-test": _smoke_test,
    "gateway-endpoint-canary": _canary,
    "network-policies": _network_policies,
}
#: Kinds a construct's snapshot keeps (all when not listed).
ONLY_KINDS = {"network-policies": {"NetworkPolicy", "CiliumNetworkPolicy"}}


@pytest.mark.parametrize("name", list(CONSTRUCTS))
def test_construct_snapshot(name: str, snapshot: SnapshotAssertion) -> None:
    text = objects_under(CONSTRUCTS[name](new_chart()), ONLY_KINDS.get(name))
    assert text.strip(), f"{name} made no objects"
    assert text == snapshot


def _doks_cluster(stack: TerraformStack) -> None:
    DoksCluster(
        stack,
        "Cluster",
        name="my-vllm",
        region="nyc2",
        vpc_id="vpc-id",
        cluster_subnet="172.16.0.0/20",
        service_subnet="192.168.0.0/22",
    )


def _gpu_node_pool(stack: TerraformStack) -> None:
    GpuNodePool(stack, "Gpu", cluster_id="cluster-id", name="my-vllm-gpu-h100", node_count=2)


def _model_share(stack: TerraformStack) -> None:
    ModelShare(stack, "Models", name="my-vllm-models", region="nyc2", vpc_id="vpc-id", size_gb=1000)


CLOUD_CONSTRUCTS: dict[str, Callable[[TerraformStack], None]] = {
    "doks-cluster": _doks_cluster,
    "gpu-node-pool": _gpu_node_pool,
    "model-share": _model_share,
}


@pytest.mark.parametrize("name", list(CLOUD_CONSTRUCTS))
def test_cloud_construct_snapshot(name: str, snapshot: SnapshotAssertion) -> None:
    """The Terraform JSON of one cloud construct alone in a stack with the provider."""
    stack = TerraformStack(tf_app(), "test")
    DigitaloceanProvider(stack, "digitalocean")
    CLOUD_CONSTRUCTS[name](stack)
    doc = json.loads(cdktf.Testing.synth(stack))
    assert doc["resource"], f"{name} made no resources"
    assert doc == snapshot


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
    "https-cert-manager": (
        "--tls-certificate-secret", "vllm-tls", "--tls-hostname", "llm.example.com",
        "--cert-manager-cluster-issuer", "letsencrypt",
    ),
    "h100x8": ("--gpu-size", "gpu-h100x8-640gb"),
    "control-plane-ha-surge-upgrade": (
        "--doks-control-plane-ha", "true", "--doks-surge-upgrade", "true",
    ),
    "model-snapshot": ("--nfs-snapshot-name", "my-vllm-models-snap"),
    "inference-pool": (
        "--routing", "inference-pool", "--gateway-class", "eg",
        "--inference-gateway-namespace", "envoy-gateway-system",
    ),
    "several-models-prefix-aware": ("--config", "<several-models>"),
    "lora-canary-rollout": ("--config", "<rollout>"),
}  # fmt: skip

#: Config files of the README's examples, by the placeholder CONFIGURATIONS name them with.
CONFIG_FILES = {
    "<readme>": README_CONFIG,
    # "Several models on one share"
    "<several-models>": """\
routing: prefix-aware
models:
  - id: Qwen/Qwen2.5-0.5B-Instruct
    served_name: qwen-small
  - id: Qwen/Qwen2.5-7B-Instruct
    served_name: qwen-7b
    quantization: fp8
    max_model_len: 8192
""",
    # "Rollouts and LoRA adapters": the canary step, adapters on both pools.
    "<rollout>": README_ADAPTERS_YAML
    + """\
  - id: Qwen/Qwen2.5-7B-Instruct-1M
    served_name: qwen
    adapters:
      - {id: acme/qwen2.5-7b-instruct-1m-sql-lora, name: sql, rank: 16}
      - {id: acme/qwen2.5-7b-instruct-1m-support-lora, name: support, rank: 64}
    canary: {of: vllm, weight: 10}
""",
}


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
    for placeholder in set(args) & set(CONFIG_FILES):
        config = tmp_path_factory.getbasetemp() / f"{placeholder.strip('<>')}.yaml"
        config.write_text(CONFIG_FILES[placeholder])
        args = tuple(str(config) if a == placeholder else a for a in args)
    files = output_files(synthesized(tmp_path_factory, *args))
    assert any(f.startswith("cdktf.out/") for f in files)
    assert any(f.startswith("dist/") for f in files) or name == "stack-2-via-terraform"
    for path, text in files.items():
        if path.endswith(".json"):
            json.loads(text)  # well-formed
    assert files == snapshot
