"""Scheduling on Node objects that look like DOKS GPU nodes (pool label, the vendor's GPU
taint, GPU capacity; kept Ready by the control plane's heartbeat), with the real scheduler:
workers land one per GPU node, the download Job's pod lands on the GPU pool, and replicas
beyond the GPU nodes stay Pending exactly as the capacity plan says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cdk8s
import pytest
from realtier import (
    SynthCache,
    apply,
    cleanup,
    doks_gpu_node,
    get_json,
    prepare_namespace,
    wait_for,
)

from vllm_doks.capacity import ClusterPlan, PoolPlan, plan_capacity
from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.gpu_catalog import GPU_SIZES
from vllm_doks.k8s import (
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
)
from vllm_doks.rehearsal import ControlPlane

pytestmark = pytest.mark.real

#: A DigitalOcean GPU Droplet of one GPU (H100x1 and MI300X x1 both have 20 vCPUs, 240 GiB).
DROPLET = {"cpu": "20", "memory": "240Gi"}

VENDORS = {
    "nvidia": {"name_prefix": "sched-nv", "gpu_size": "gpu-h100x1-80gb"},
    "amd": {"name_prefix": "sched-amd", "gpu_size": "gpu-mi300x1-192gb"},
}


def pods(cp: ControlPlane, ns: str, selector: str) -> list[dict[str, Any]]:
    return list(get_json(cp, "pods", "-n", ns, "-l", selector)["items"])


def unschedulable(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "PodScheduled"
        and c["status"] == "False"
        and c.get("reason") == "Unschedulable"
        for c in pod.get("status", {}).get("conditions", [])
    )


@pytest.fixture
def gpu_nodes(control_plane: ControlPlane) -> Iterator[list[str]]:
    """Node names a test adds; removed afterwards."""
    added: list[str] = []
    yield added
    for name in added:
        control_plane.remove_node(name)


def add_pool(cp: ControlPlane, nodes: list[str], pool: str, gpu_size: str, count: int) -> None:
    size = GPU_SIZES[gpu_size]
    for i in range(count):
        name = f"{pool}-{i}"
        doks_gpu_node(
            cp, name, pool=pool, resource=size.resource_name, gpus=size.gpu_count, **DROPLET
        )
        nodes.append(name)


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_workers_one_per_gpu_node_and_the_download_lands(
    vendor: str,
    control_plane: ControlPlane,
    gpu_nodes: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ns = f"sched-{vendor}"
    inputs = {**VENDORS[vendor], "namespace": ns, "replicas": 2, "gpu_node_count": 2}
    config = load_config(None, env={}, overrides=inputs)
    pool = InfraOutputs.examples_for(config).gpu_node_pool_name
    add_pool(control_plane, gpu_nodes, pool, config.gpu_size, 2)
    # A management node without GPUs: nothing of ours may land there.
    control_plane.add_node(
        f"{ns}-mgmt",
        labels={"doks.digitalocean.com/node-pool": f"{ns}-mgmt"},
        capacity={**DROPLET, "pods": "110"},
    )
    gpu_nodes.append(f"{ns}-mgmt")
    out = SynthCache(tmp_path_factory.mktemp(ns)).k8s(**inputs)
    prepare_namespace(control_plane, ns)
    try:
        apply(control_plane, out.dist)

        def workers_bound() -> list[dict[str, Any]] | None:
            found = pods(control_plane, ns, "app=vllm")
            bound = [p for p in found if p["spec"].get("nodeName")]
            return bound if len(bound) == 2 else None

        workers = wait_for("both vLLM pods to be scheduled", workers_bound)
        nodes = [p["spec"]["nodeName"] for p in workers]
        assert sorted(nodes) == sorted(gpu_nodes[:2]), nodes  # one per GPU node
        download = wait_for(
            "the download Job's pod to be scheduled",
            lambda: [
                p
                for p in pods(control_plane, ns, "app=model-download")
                if p["spec"].get("nodeName")
            ],
        )
        assert download[0]["spec"]["nodeName"] in gpu_nodes[:2]
        landed = download[0]["spec"]["nodeName"]
        print(f"[real] {vendor}: workers on {sorted(nodes)}, download on {landed}")
    finally:
        cleanup(control_plane, ns, pvs=(f"{ns}.vllm-models-pv",))


def test_replicas_beyond_the_gpu_nodes_stay_pending_as_the_plan_says(
    control_plane: ControlPlane, gpu_nodes: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The app refuses replicas > GPU nodes; the constructs alone let it happen, and the
    capacity plan says how many pods then find no node."""
    ns, pool, gpu_size, replicas, node_count = (
        "sched-over",
        "over-gpu-h100",
        "gpu-h100x1-80gb",
        3,
        2,
    )
    model_id = "Qwen/Qwen2.5-0.5B-Instruct"
    plan = plan_capacity(
        ClusterPlan(
            pools=[PoolPlan(name="vllm", model_id=model_id, gpu_size=gpu_size, replicas=replicas)],
            gpu_node_count=node_count,
            nfs_size_gb=1000,
        )
    )
    short = plan.gpu_nodes_needed[gpu_size] - node_count
    assert short == 1 and plan.problems()  # the plan says it does not fit, by one node

    def build(app: cdk8s.App) -> None:
        chart = cdk8s.Chart(app, "over", disable_resource_name_hashes=True)
        add_namespace(chart, ns)
        store = NfsModelStore(
            chart,
            "Models",
            NfsModelStoreProps(
                nfs_server="10.200.0.5", nfs_path="/3333333/over", capacity_gi=1000, namespace=ns
            ),
        )
        model = store.add_model(model_id, node_pool_name=pool, gpu_size=gpu_size)
        VllmWorkerPool(
            chart,
            "Workers",
            VllmWorkerPoolProps(
                model=model, gpu_node_pool_name=pool, gpu_size=gpu_size, replicas=replicas
            ),
        )

    add_pool(control_plane, gpu_nodes, pool, gpu_size, node_count)
    out = SynthCache(tmp_path_factory.mktemp(ns)).chart("over", build)
    prepare_namespace(control_plane, ns)
    try:
        apply(control_plane, out.dist)

        def settled() -> tuple[list[Any], list[Any]] | None:
            found = pods(control_plane, ns, "app=vllm")
            bound = [p for p in found if p["spec"].get("nodeName")]
            pending = [p for p in found if unschedulable(p)]
            # Settled once the scheduler has bound all it can: right after the nodes are
            # created it may not have seen them yet and reports every pod unschedulable first,
            # then retries on the node events.
            done = len(bound) + len(pending) == replicas and len(bound) >= node_count
            return (bound, pending) if done else None

        bound, pending = wait_for("every vLLM pod to be scheduled or found unschedulable", settled)
        assert len(pending) == short
        assert len(bound) == node_count
        assert len({p["spec"]["nodeName"] for p in bound}) == node_count
        message = next(
            c["message"] for c in pending[0]["status"]["conditions"] if c["type"] == "PodScheduled"
        )
        # Both GPU nodes are taken: by GPUs and by the one-replica-per-node anti-affinity.
        assert "Insufficient nvidia.com/gpu" in message or "anti-affinity" in message, message
        print(
            f"[real] {replicas} replicas, {node_count} GPU nodes: {len(pending)} Pending: {message}"
        )
    finally:
        cleanup(control_plane, ns, pvs=(f"{ns}.vllm-models-pv",))
