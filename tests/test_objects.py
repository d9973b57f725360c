"""`kube_object` renders exactly what cdk8s' L1 classes render, for the same typed structs."""

from __future__ import annotations

from typing import Any

import cdk8s
import pytest
from cdk8s_plus_28 import k8s

from vllm_doks.k8s.objects import kube_object, to_json
from vllm_doks.k8s.values import int_or_string, quantity


def _pod_spec() -> k8s.PodSpec:
    return k8s.PodSpec(
        restart_policy="Never",
        automount_service_account_token=False,
        node_selector={"b": "2", "a": "1"},
        containers=[
            k8s.Container(
                name="main",
                image="example/image:1",
                args=["--z", "--a"],
                env=[k8s.EnvVar(name="B", value="2"), k8s.EnvVar(name="A", value="1")],
                resources=k8s.ResourceRequirements(
                    # One made by the cached factory, one directly: both render their value.
                    requests={"memory": quantity("16Gi"), "cpu": k8s.Quantity.from_string("500m")},
                    limits={"nvidia.com/gpu": quantity(1)},
                ),
                ports=[k8s.ContainerPort(name="http", container_port=8000)],
                readiness_probe=k8s.Probe(
                    http_get=k8s.HttpGetAction(path="/health", port=int_or_string("http")),
                    period_seconds=5,
                ),
                volume_mounts=[],
            )
        ],
    )


def _synth(build: Any) -> list[dict[str, Any]]:
    app = cdk8s.App(outdir="unused")
    chart = cdk8s.Chart(app, "c", disable_resource_name_hashes=True)
    build(chart)
    return [dict(o) for o in chart.to_json()]


@pytest.mark.parametrize(
    ("l1", "body"),
    [
        (
            k8s.KubeDeployment,
            lambda: {
                "spec": k8s.DeploymentSpec(
                    replicas=2,
                    strategy=k8s.DeploymentStrategy(
                        rolling_update=k8s.RollingUpdateDeployment(
                            max_surge=int_or_string(0), max_unavailable=int_or_string(1)
                        )
                    ),
                    selector=k8s.LabelSelector(match_labels={"app": "x"}),
                    template=k8s.PodTemplateSpec(
                        metadata=k8s.ObjectMeta(labels={"app": "x"}), spec=_pod_spec()
                    ),
                )
            },
        ),
        (
            k8s.KubeJob,
            lambda: {
                "spec": k8s.JobSpec(backoff_limit=3, template=k8s.PodTemplateSpec(spec=_pod_spec()))
            },
        ),
        (k8s.KubeConfigMap, lambda: {"data": {"b.json": "{}", "a.txt": "hello"}}),
    ],
    ids=["Deployment", "Job", "ConfigMap"],
)
def test_kube_object_renders_like_the_l1_class(l1: Any, body: Any) -> None:
    meta = {
        "name": "x",
        "namespace": "ns",
        "labels": {"app": "x", "tier": "a"},
        "annotations": {"z": "1", "a": "2"},
    }
    by_l1 = _synth(lambda chart: l1(chart, "O", metadata=k8s.ObjectMeta(**meta), **body()))
    by_helper = _synth(
        lambda chart: kube_object(chart, "O", l1.GVK, metadata=k8s.ObjectMeta(**meta), **body())
    )
    assert by_helper == by_l1
    # Same bytes, not just equal: key order is part of the YAML cdk8s writes.
    assert repr(by_helper) == repr(by_l1)


def test_to_json_drops_unset_fields_and_keeps_empty_ones() -> None:
    rendered = to_json(k8s.Container(name="c", args=[], env=None))
    assert rendered == {"args": [], "name": "c"}


def test_kube_object_refuses_metadata_it_would_drop() -> None:
    app = cdk8s.App(outdir="unused")
    chart = cdk8s.Chart(app, "c")
    with pytest.raises(ValueError, match="finalizers"):
        kube_object(
            chart,
            "O",
            k8s.KubeConfigMap.GVK,
            metadata=k8s.ObjectMeta(name="x", finalizers=["example.com/keep"]),
        )
