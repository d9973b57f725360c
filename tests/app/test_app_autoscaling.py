"""The app's optional autoscaling and observability switches, end to end through ``main``:
the KEDA autoscaler, the GPU node pool's matching autoscale bounds, the PodMonitor with its
NetworkPolicy opening, the Grafana dashboard, and the capacity plan's maximum."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import load_yaml_dir, validate_objects
from support import synthesized

from vllm_doks.cli import main
from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.preflight import capacity_plan, kubernetes_problems
from vllm_doks.validation import Problems

ENABLED = [
    "--autoscaling",
    "true",
    "--autoscaling-max-replicas",
    "4",
    "--gpu-autoscale-max-nodes",
    "4",
    "--pod-monitor",
    "true",
    "--grafana-dashboard",
    "true",
]


def outdir_flags(base: Path) -> list[str]:
    return ["--cloud-outdir", str(base / "cdktf.out"), "--k8s-outdir", str(base / "dist")]


def objects(dist: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in load_yaml_dir(dist)}


def gpu_pool(base: Path) -> dict[str, Any]:
    doc = json.loads((base / "cdktf.out" / "stacks" / "vllm-infra" / "cdk.tf.json").read_text())
    pool: dict[str, Any] = doc["resource"]["digitalocean_kubernetes_node_pool"]["gpu"]
    return pool


@pytest.fixture(scope="module")
def enabled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesized(tmp_path_factory, *ENABLED)


def test_scaled_object_targets_the_deployment_with_the_configured_bounds(enabled: Path) -> None:
    objs = objects(enabled / "dist")
    scaled = objs[("ScaledObject", "vllm")]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm"}
    assert ("Deployment", "vllm") in objs
    # autoscaling_min_replicas 0 -> replicas (1)
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    (trigger, *_) = spec["triggers"]
    assert "vllm:num_requests_waiting" in trigger["metadata"]["query"]
    assert trigger["metadata"]["serverAddress"] == "http://prometheus-operated.monitoring.svc:9090"


def test_gpu_node_pool_autoscales_between_matching_bounds(enabled: Path) -> None:
    pool = gpu_pool(enabled)
    assert pool["auto_scale"] is True
    assert (pool["min_nodes"], pool["max_nodes"]) == (2, 4)  # gpu_node_count .. max
    assert "node_count" not in pool
    scaled = objects(enabled / "dist")[("ScaledObject", "vllm")]["spec"]
    assert scaled["maxReplicaCount"] <= pool["max_nodes"]


def test_pod_monitor_and_network_policy_admit_prometheus(enabled: Path) -> None:
    objs = objects(enabled / "dist")
    monitor = objs[("PodMonitor", "vllm")]
    assert monitor["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"
    deploy_labels = objs[("Deployment", "vllm")]["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["selector"]["matchLabels"] == deploy_labels
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # Prometheus' namespace may GET /metrics only (L7), not every path of the port (L4).
    assert "ingress" not in objs[("NetworkPolicy", "vllm-ingress")]["spec"]
    (rule,) = objs[("CiliumNetworkPolicy", "vllm-metrics")]["spec"]["ingress"]
    assert rule["fromEndpoints"] == [
        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring"}}
    ]
    assert rule["toPorts"][0]["rules"] == {"http": [{"method": "GET", "path": "/metrics"}]}


def test_grafana_dashboard_config_map(enabled: Path) -> None:
    maps = [
        o
        for (kind, _), o in objects(enabled / "dist").items()
        if kind == "ConfigMap" and o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert len(maps) == 1
    assert json.loads(maps[0]["data"]["vllm.json"])["title"] == "vLLM"


def test_enabled_chart_objects_are_valid(enabled: Path) -> None:
    assert validate_objects(load_yaml_dir(enabled / "dist")) == []


def test_capacity_report_shows_the_maximum(enabled: Path) -> None:
    plan = json.loads((enabled / "dist" / "meta" / "capacity.json").read_text())
    (pool,) = plan["pools"]
    assert (pool["replicas"], pool["max_replicas"]) == (1, 4)
    assert plan["gpu_nodes"]["gpu-h100x1-80gb"] == {"available": 4, "needed": 4}
    report = capacity_plan(
        ArchitectureConfig(autoscaling=True, autoscaling_max_replicas=4, gpu_autoscale_max_nodes=4),
        InfraOutputs.examples_for(ArchitectureConfig()),
        Problems(),
    )
    assert report is not None and "1-4" in report.table()


def test_default_capacity_report_has_no_maximum(tmp_path: Path) -> None:
    assert main(["synth", "--layer", "k8s", *outdir_flags(tmp_path)], env={}) == 0
    plan = json.loads((tmp_path / "dist" / "meta" / "capacity.json").read_text())
    assert "max_replicas" not in plan["pools"][0]
    kinds = {o["kind"] for o in load_yaml_dir(tmp_path / "dist")}
    assert not kinds & {"ScaledObject", "PodMonitor"}


def test_switches_off_change_nothing(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Setting the new inputs without turning the features on leaves the output as it was."""

    def digest(base: Path) -> dict[str, str]:
        return {
            str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*"))
            if p.is_file()
        }

    flags = ["--prometheus-namespace", "observability", "--autoscaling-max-replicas", "2"]
    assert main(["synth", *outdir_flags(tmp_path / "b"), *flags], env={}) == 0
    assert digest(synthesized(tmp_path_factory)) == digest(tmp_path / "b")


def test_autoscaling_max_above_gpu_pool_max_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [
        "--autoscaling",
        "true",
        "--autoscaling-max-replicas",
        "5",
        "--gpu-autoscale-max-nodes",
        "4",
    ]
    assert main(["synth", *outdir_flags(tmp_path), *flags], env={}) == 1
    err = capsys.readouterr().err
    assert "autoscaling_max_replicas: got 5" in err
    assert "at most gpu_autoscale_max_nodes (4)" in err
    assert not (tmp_path / "dist").exists() and not (tmp_path / "cdktf.out").exists()


def test_autoscaler_bound_is_gpu_node_count_without_node_autoscaling() -> None:
    config = ArchitectureConfig(autoscaling=True, autoscaling_max_replicas=3)
    problems = kubernetes_problems(config, InfraOutputs.examples_for(config))
    assert [(p.field, p.value) for p in problems.items] == [("autoscaling_max_replicas", 3)]
    assert "at most gpu_node_count (2)" in problems.items[0].expected
    ok = config.replace(autoscaling_max_replicas=2)
    assert not kubernetes_problems(ok, InfraOutputs.examples_for(ok))


def test_replicas_may_use_the_autoscaled_gpu_pool() -> None:
    config = ArchitectureConfig(replicas=3, gpu_node_count=1, gpu_autoscale_max_nodes=3)
    assert not kubernetes_problems(config, InfraOutputs.examples_for(config))
    over = config.replace(replicas=4)
    problems = kubernetes_problems(over, InfraOutputs.examples_for(over))
    assert [p.field for p in problems.items] == ["replicas"]
    assert "at most gpu_autoscale_max_nodes (3)" in problems.items[0].expected


def test_gpu_node_pool_props_check_the_autoscale_bounds() -> None:
    from vllm_doks.cloud.gpu_node_pool import GpuNodePoolProps

    ok = GpuNodePoolProps(cluster_id="c", name="p", node_count=0, max_nodes=2)
    assert not ok.problems()
    below = GpuNodePoolProps(cluster_id="c", name="p", node_count=3, max_nodes=2)
    assert [p.field for p in below.problems().items] == ["max_nodes"]
    zero = GpuNodePoolProps(cluster_id="c", name="p", node_count=0, max_nodes=0)
    assert [p.field for p in zero.problems().items] == ["max_nodes"]


def test_capacity_plan_counts_gpu_nodes_for_the_maximum() -> None:
    from vllm_doks.capacity import ClusterPlan, PoolPlan, plan_capacity

    pool = PoolPlan(name="vllm", model_id="Qwen/Qwen2.5-0.5B-Instruct", replicas=1, max_replicas=3)
    report = plan_capacity(ClusterPlan(pools=[pool], gpu_node_count=2, nfs_size_gb=100))
    assert report.gpu_nodes_needed == {"gpu-h100x1-80gb": 3}
    assert [p.field for p in report.problems().items] == ["gpu_node_count"]
    assert json.loads(report.to_json())["pools"][0]["max_replicas"] == 3
    below = PoolPlan(name="vllm", model_id="Qwen/Qwen2.5-0.5B-Instruct", replicas=2, max_replicas=1)
    report = plan_capacity(ClusterPlan(pools=[below], gpu_node_count=2, nfs_size_gb=100))
    assert [p.field for p in report.problems().items] == ["pools[vllm].max_replicas"]
