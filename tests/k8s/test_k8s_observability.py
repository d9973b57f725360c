"""VllmAutoscaler (KEDA ScaledObject), VllmPodMonitor (Prometheus Operator) and VllmDashboard
(Grafana ConfigMap), asserted on the objects they synthesize; custom resources are validated
against their CRDs in tests/fixtures/crds, core objects strictly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import validate_objects
from support import GPU_POOL, QWEN, STORE, Obj, find, k8s_app, synth

from vllm_doks import ValidationError
from vllm_doks.k8s import NfsModelStore, VllmWorkerPool, VllmWorkerPoolProps
from vllm_doks.k8s.autoscaling import VllmAutoscaler, VllmAutoscalerProps
from vllm_doks.k8s.dashboard import VllmDashboard, VllmDashboardProps
from vllm_doks.k8s.pod_monitor import VllmPodMonitor, VllmPodMonitorProps

PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
DASHBOARD_METRICS = (
    "vllm:generation_tokens_total",
    "vllm:prompt_tokens_total",
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:num_requests_waiting",
    "vllm:num_requests_running",
    "vllm:kv_cache_usage_perc",
    "DCGM_FI_DEV_FB_USED",
)


def pool_chart(app: cdk8s.App | None = None, **pool: Any) -> tuple[cdk8s.Chart, VllmWorkerPool]:
    chart = cdk8s.Chart(app or k8s_app(), "test")
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, node_pool_name=GPU_POOL)
    props = VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, **pool)
    return chart, VllmWorkerPool(chart, "Workers", props)


def full_chart(app: cdk8s.App | None = None, **pool: Any) -> cdk8s.Chart:
    chart, workers = pool_chart(app, allow_from_namespaces=("monitoring",), **pool)
    VllmAutoscaler(
        chart,
        "Autoscaler",
        VllmAutoscalerProps(
            pool=workers,
            prometheus_server_address=PROMETHEUS,
            min_replicas=1,
            max_replicas=3,
            cooldown_period_seconds=600,
            running_threshold=64,
            gpu_node_count=3,
        ),
    )
    VllmPodMonitor(
        chart,
        "PodMonitor",
        VllmPodMonitorProps(
            pool=workers, release="kube-prometheus-stack", prometheus_namespace="monitoring"
        ),
    )
    VllmDashboard(chart, "Dashboard", VllmDashboardProps(pool=workers, folder="LLM"))
    return chart


@pytest.fixture(scope="module")
def objs() -> list[Obj]:
    return synth(full_chart())


# --- Nothing by default ---------------------------------------------------------------------


def test_a_pool_alone_emits_no_observability_objects() -> None:
    chart, _ = pool_chart()
    kinds = {o["kind"] for o in synth(chart)}
    assert not kinds & {"ScaledObject", "PodMonitor", "ConfigMap"}


# --- VllmAutoscaler -----------------------------------------------------------------------


def test_scaled_object_targets_the_pools_deployment(objs: list[Obj]) -> None:
    deployment = find(objs, "Deployment", "vllm")
    scaled = find(objs, "ScaledObject", "vllm")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["metadata"]["namespace"] == deployment["metadata"]["namespace"] == "vllm"
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }


def test_scaled_object_carries_bounds_cooldown_and_polling(objs: list[Obj]) -> None:
    spec = find(objs, "ScaledObject", "vllm")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    assert spec["cooldownPeriod"] == 600
    assert spec["pollingInterval"] == 30
    scale_down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] == 300


def test_scaled_object_scales_on_the_pools_queue_depth(objs: list[Obj]) -> None:
    waiting, running = find(objs, "ScaledObject", "vllm")["spec"]["triggers"]
    assert waiting["type"] == running["type"] == "prometheus"
    meta = waiting["metadata"]
    assert meta["serverAddress"] == PROMETHEUS
    assert meta["threshold"] == "5"
    assert meta["query"] == (
        'sum(vllm:num_requests_waiting{namespace="vllm",pod=~"vllm-[a-z0-9]+-[a-z0-9]+"})'
    )
    assert "vllm:num_requests_running" in running["metadata"]["query"]
    assert running["metadata"]["threshold"] == "64"


def test_pod_regex_matches_only_the_pools_pods() -> None:
    import re

    chart, workers = pool_chart()
    scaler = VllmAutoscaler(
        chart, "A", VllmAutoscalerProps(pool=workers, prometheus_server_address=PROMETHEUS)
    )
    regex = re.search(r'pod=~"([^"]+)"', scaler.waiting_query).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(regex, "vllm-7d9f8b6c5d-x2k4q")
    assert not re.fullmatch(regex, "vllm-large-7d9f8b6c5d-x2k4q")
    assert not re.fullmatch(regex, "model-download-x2k4q")


def test_autoscaler_defaults_keep_one_warm_replica_and_one_trigger() -> None:
    chart, workers = pool_chart()
    VllmAutoscaler(
        chart, "A", VllmAutoscalerProps(pool=workers, prometheus_server_address=PROMETHEUS)
    )
    spec = find(synth(chart), "ScaledObject", "vllm")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 2)
    assert [t["name"] for t in spec["triggers"]] == ["requests-waiting"]


def autoscaler_error(**props: Any) -> ValidationError:
    chart, workers = pool_chart()
    with pytest.raises(ValidationError) as err:
        VllmAutoscaler(
            chart,
            "Autoscaler",
            VllmAutoscalerProps(pool=workers, prometheus_server_address=PROMETHEUS, **props),
        )
    assert err.value.where == "test/Autoscaler"
    return err.value


def test_max_below_min_is_refused_naming_field_and_value() -> None:
    error = autoscaler_error(min_replicas=3, max_replicas=2)
    (problem,) = error.problems
    assert (problem.field, problem.value) == ("max_replicas", 2)
    assert "min_replicas (3)" in problem.expected


def test_max_zero_is_refused() -> None:
    error = autoscaler_error(min_replicas=1, max_replicas=0)
    assert {(p.field, p.value) for p in error.problems} == {("max_replicas", 0)}
    assert any("KEDA's maxReplicaCount" in p.expected for p in error.problems)


def test_scale_to_zero_is_refused_because_nothing_could_wake_it() -> None:
    # The triggers read vLLM's own gauges: with no pod there is no series, and KEDA activates
    # from zero only when the query returns more than activationThreshold.
    error = autoscaler_error(min_replicas=0, max_replicas=2)
    (problem,) = error.problems
    assert (problem.field, problem.value) == ("min_replicas", 0)
    assert "never be woken" in problem.expected


def test_max_above_gpu_node_count_is_refused_with_the_fix() -> None:
    error = autoscaler_error(max_replicas=4, gpu_node_count=2)
    (problem,) = error.problems
    assert (problem.field, problem.value) == ("max_replicas", 4)
    assert "gpu_node_count (2)" in problem.expected
    assert "Lower max_replicas" in problem.expected
    assert "test/Autoscaler" in str(error)


def test_gpu_node_count_only_binds_with_required_anti_affinity() -> None:
    chart, workers = pool_chart(anti_affinity="preferred")
    VllmAutoscaler(
        chart,
        "A",
        VllmAutoscalerProps(
            pool=workers, prometheus_server_address=PROMETHEUS, max_replicas=4, gpu_node_count=2
        ),
    )


def test_a_pool_name_too_long_for_pod_names_is_refused() -> None:
    chart, workers = pool_chart(name="v" * 47)
    with pytest.raises(ValidationError) as err:
        VllmAutoscaler(
            chart, "A", VllmAutoscalerProps(pool=workers, prometheus_server_address=PROMETHEUS)
        )
    assert [(p.field, p.value) for p in err.value.problems] == [("pool", "v" * 47)]


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"prometheus_server_address": "prometheus:9090"}, "prometheus_server_address"),
        ({"waiting_threshold": 0}, "waiting_threshold"),
        ({"running_threshold": 0}, "running_threshold"),
        ({"polling_interval_seconds": 0}, "polling_interval_seconds"),
        ({"cooldown_period_seconds": -1}, "cooldown_period_seconds"),
        ({"min_replicas": -1}, "min_replicas"),
        ({"name": "Not_A_Name"}, "name"),
    ],
)
def test_bad_autoscaler_props_are_refused(props: dict[str, Any], field: str) -> None:
    chart, workers = pool_chart()
    base = VllmAutoscalerProps(pool=workers, prometheus_server_address=PROMETHEUS)
    with pytest.raises(ValidationError) as err:
        VllmAutoscaler(chart, "A", dataclasses.replace(base, **props))
    assert field in {p.field for p in err.value.problems}


# --- VllmPodMonitor -----------------------------------------------------------------------


def test_pod_monitor_selects_exactly_the_pools_pods(objs: list[Obj]) -> None:
    deployment = find(objs, "Deployment", "vllm")
    monitor = find(objs, "PodMonitor", "vllm")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "vllm"
    spec = monitor["spec"]
    assert spec["selector"] == deployment["spec"]["selector"]
    assert spec["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert spec["namespaceSelector"] == {"matchNames": ["vllm"]}


def test_pod_monitor_scrapes_the_port_the_container_declares(objs: list[Obj]) -> None:
    (container,) = find(objs, "Deployment", "vllm")["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    (endpoint,) = find(objs, "PodMonitor", "vllm")["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"


def test_pod_monitor_release_label_defaults_to_kube_prometheus_stack(objs: list[Obj]) -> None:
    assert find(objs, "PodMonitor", "vllm")["metadata"]["labels"] == {
        "app": "vllm",
        "release": "kube-prometheus-stack",
    }
    chart, workers = pool_chart()
    VllmPodMonitor(chart, "M", VllmPodMonitorProps(pool=workers))
    assert find(synth(chart), "PodMonitor", "vllm")["metadata"]["labels"] == {
        "app": "vllm",
        "release": "kube-prometheus-stack",
    }
    chart, workers = pool_chart()
    VllmPodMonitor(chart, "M", VllmPodMonitorProps(pool=workers, release=None))
    assert find(synth(chart), "PodMonitor", "vllm")["metadata"]["labels"] == {"app": "vllm"}


def test_pod_monitor_refuses_a_prometheus_the_network_policy_blocks() -> None:
    chart, workers = pool_chart()
    with pytest.raises(ValidationError) as err:
        VllmPodMonitor(
            chart, "M", VllmPodMonitorProps(pool=workers, prometheus_namespace="monitoring")
        )
    (problem,) = err.value.problems
    assert (problem.field, problem.value) == ("prometheus_namespace", "monitoring")
    assert "allow_from_namespaces" in problem.expected


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"interval": "15"}, "interval"),
        ({"interval": "0s"}, "interval"),
        ({"scrape_timeout": "30s"}, "scrape_timeout"),
        ({"release": "-bad-"}, "release"),
    ],
)
def test_bad_pod_monitor_props_are_refused(props: dict[str, Any], field: str) -> None:
    chart, workers = pool_chart()
    with pytest.raises(ValidationError) as err:
        VllmPodMonitor(chart, "M", VllmPodMonitorProps(pool=workers, **props))
    assert [p.field for p in err.value.problems] == [field]


# --- VllmDashboard ------------------------------------------------------------------------


def dashboard_of(objs: list[Obj], name: str = "vllm-dashboard") -> tuple[Obj, Obj]:
    config_map = find(objs, "ConfigMap", name)
    (text,) = config_map["data"].values()
    return config_map, json.loads(text)


def test_dashboard_config_map_carries_the_sidecar_label(objs: list[Obj]) -> None:
    config_map, _ = dashboard_of(objs)
    assert config_map["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "LLM"}
    assert config_map["metadata"]["namespace"] == "vllm"
    assert list(config_map["data"]) == ["vllm.json"]


def test_dashboard_charts_every_metric(objs: list[Obj]) -> None:
    _, dashboard = dashboard_of(objs)
    exprs = "\n".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in DASHBOARD_METRICS:
        assert metric in exprs, metric
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.95," in exprs
    titles = [p["title"] for p in dashboard["panels"]]
    assert titles == [
        "Token throughput",
        "Time to first token",
        "Queue depth",
        "KV-cache usage",
        "GPU memory used",
    ]


def test_dashboard_data_source_is_a_variable(objs: list[Obj]) -> None:
    _, dashboard = dashboard_of(objs)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["current"]["value"] == "vllm"
    assert variables["model_name"]["current"]["value"] == "Qwen2.5-0.5B-Instruct"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    assert len(dashboard["uid"]) <= 40


def test_dashboard_json_is_sorted_and_stable(objs: list[Obj]) -> None:
    config_map, dashboard = dashboard_of(objs)
    assert config_map["data"]["vllm.json"] == json.dumps(dashboard, sort_keys=True, indent=2) + "\n"


def test_dashboard_label_namespace_and_name_are_props() -> None:
    chart, workers = pool_chart()
    VllmDashboard(
        chart,
        "D",
        VllmDashboardProps(
            pool=workers,
            namespace="monitoring",
            name="llm",
            label_key="grafana.io/dashboard",
            label_value="vllm",
        ),
    )
    config_map = find(synth(chart), "ConfigMap", "llm")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"] == {"grafana.io/dashboard": "vllm"}
    assert "annotations" not in config_map["metadata"]


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"label_key": "bad key"}, "label_key"),
        ({"label_value": "-1"}, "label_value"),
        ({"namespace": "Monitoring"}, "namespace"),
        ({"uid": "x" * 41}, "uid"),
        ({"file_name": "vllm.yaml"}, "file_name"),
    ],
)
def test_bad_dashboard_props_are_refused(props: dict[str, Any], field: str) -> None:
    chart, workers = pool_chart()
    with pytest.raises(ValidationError) as err:
        VllmDashboard(chart, "D", VllmDashboardProps(pool=workers, **props))
    assert [p.field for p in err.value.problems] == [field]


# --- All of it ----------------------------------------------------------------------------


def test_every_object_is_schema_valid(objs: list[Obj]) -> None:
    kinds = {o["kind"] for o in objs}
    assert {"ScaledObject", "PodMonitor", "ConfigMap", "Deployment"} <= kinds
    assert validate_objects(objs) == []


def test_variants_are_schema_valid() -> None:
    chart, workers = pool_chart(name="vllm-small", network_policy=False)
    VllmAutoscaler(
        chart,
        "A",
        VllmAutoscalerProps(
            pool=workers,
            prometheus_server_address="https://prometheus.example.com/",
            min_replicas=1,
            max_replicas=1,
            trigger_authentication_name="prometheus-auth",
            name="small",
        ),
    )
    VllmPodMonitor(
        chart,
        "M",
        VllmPodMonitorProps(pool=workers, interval="1m", scrape_timeout="30s", name="small"),
    )
    objs = synth(chart)
    query = find(objs, "ScaledObject", "small")["spec"]["triggers"][0]["metadata"]["query"]
    assert 'pod=~"vllm-small-[a-z0-9]+-[a-z0-9]+"' in query and "\\" not in query
    assert find(objs, "ScaledObject", "small")["spec"]["triggers"][0]["authenticationRef"] == {
        "name": "prometheus-auth"
    }
    assert validate_objects(objs) == []


def synth_bytes(outdir: Path) -> dict[str, bytes]:
    app = cdk8s.App(outdir=str(outdir))
    full_chart(app)
    app.synth()
    return {p.name: p.read_bytes() for p in sorted(outdir.iterdir())}


def test_two_synths_are_byte_identical(tmp_path: Path) -> None:
    first = synth_bytes(tmp_path / "a")
    second = synth_bytes(tmp_path / "b")
    assert first and first == second
