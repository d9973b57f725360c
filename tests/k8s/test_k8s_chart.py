"""The constructs composed into whole charts: the seed's default, an HA variant, and each
construct alone as another project would use it. Schema validity, stable output, snapshot."""

from __future__ import annotations

import re
from pathlib import Path

import cdk8s
import yaml
from conftest import validate_objects
from support import GPU_POOL, QWEN, STORE, Obj, k8s_app
from syrupy.assertion import SnapshotAssertion

from vllm_doks.k8s import (
    STACK_OUTPUT_DESCRIPTIONS,
    GatewayEndpoint,
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
    stack_outputs,
)


def default_chart(app: cdk8s.App) -> tuple[cdk8s.Chart, VllmWorkerPool, GatewayEndpoint]:
    """Stack 2 of the seed with its defaults (the namespace comes from the chart's owner)."""
    chart = cdk8s.Chart(app, "vllm")
    add_namespace(chart)
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, node_pool_name=GPU_POOL)
    pool = VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL)
    )
    endpoint = GatewayEndpoint(chart, "Gateway")
    endpoint.route_to(pool)
    return chart, pool, endpoint


def ha_chart(app: cdk8s.App) -> cdk8s.Chart:
    """The seed's HA configuration (72B, fp8, 3 replicas) plus a second model and pool."""
    chart = cdk8s.Chart(app, "vllm-ha")
    add_namespace(chart)
    store = NfsModelStore(chart, "Models", STORE)
    big = store.add_model("Qwen/Qwen2.5-72B-Instruct", node_pool_name=GPU_POOL)
    small = store.add_model(QWEN, node_pool_name=GPU_POOL, hf_token_secret_name=None)
    pool = VllmWorkerPool(
        chart,
        "Workers",
        VllmWorkerPoolProps(model=big, gpu_node_pool_name=GPU_POOL, replicas=3, quantization="fp8"),
    )
    small_pool = VllmWorkerPool(
        chart,
        "Small",
        VllmWorkerPoolProps(
            model=small,
            gpu_node_pool_name=GPU_POOL,
            name="qwen-small",
            anti_affinity="preferred",
            memory_limit="64Gi",
        ),
    )
    endpoint = GatewayEndpoint(chart, "Gateway")
    endpoint.route_to(pool)
    endpoint.route_to(small_pool, path_prefix="/small", request_timeout="600s")
    return chart


def synth(chart: cdk8s.Chart) -> list[Obj]:
    return list(cdk8s.Testing.synth(chart))


def test_default_chart_has_the_seeds_objects_and_names() -> None:
    chart, _, _ = default_chart(k8s_app())
    objs = synth(chart)
    # The download Job's name ends in the hash of its pod template (a changed model is a new
    # Job, never a patch of an immutable template).
    names = [
        (o["kind"], re.sub(r"-[0-9a-f]{8}$", "-<hash>", o["metadata"]["name"]) if o["kind"] == "Job"
         else o["metadata"]["name"], o["metadata"].get("namespace"))
        for o in objs
    ]  # fmt: skip
    assert names == [
        ("Namespace", "vllm", None),
        ("PersistentVolume", "vllm.vllm-models-pv", None),
        ("PersistentVolumeClaim", "vllm-models-pvc", "vllm"),
        ("Job", "model-download-<hash>", "vllm"),
        ("NetworkPolicy", "model-download", "vllm"),
        ("Deployment", "vllm", "vllm"),
        ("Service", "vllm", "vllm"),
        ("PodDisruptionBudget", "vllm-pdb", "vllm"),
        ("NetworkPolicy", "vllm-ingress", "vllm"),
        ("CiliumNetworkPolicy", "vllm-from-gateway", "vllm"),
        ("Gateway", "vllm-gateway", "vllm"),
        ("HTTPRoute", "vllm-route", "vllm"),
    ]


def test_default_chart_is_schema_valid() -> None:
    chart, _, _ = default_chart(k8s_app())
    assert validate_objects(synth(chart)) == []


def test_ha_chart_with_quantization_replicas_and_two_models_is_schema_valid() -> None:
    objs = synth(ha_chart(k8s_app()))
    kinds = [o["kind"] for o in objs]
    assert kinds.count("Job") == 2
    assert kinds.count("Deployment") == 2
    assert kinds.count("HTTPRoute") == 2
    big = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "vllm")
    assert big["spec"]["replicas"] == 3
    assert "fp8" in big["spec"]["template"]["spec"]["containers"][0]["args"]
    assert validate_objects(objs) == []


def test_each_construct_synthesizes_alone_in_a_fresh_chart() -> None:
    """As another project would use them: one construct per chart, the pool reading a store
    from a different chart."""
    app = k8s_app()
    storage = cdk8s.Chart(app, "storage")
    model = NfsModelStore(storage, "Models", STORE).add_model(QWEN)
    serving = cdk8s.Chart(app, "serving")
    VllmWorkerPool(serving, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu"))
    edge = cdk8s.Chart(app, "edge")
    GatewayEndpoint(edge, "Gateway")

    assert [o["kind"] for o in synth(storage)] == [
        "PersistentVolume",
        "PersistentVolumeClaim",
        "Job",
        "NetworkPolicy",
    ]
    assert [o["kind"] for o in synth(serving)] == [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "CiliumNetworkPolicy",
    ]
    assert [o["kind"] for o in synth(edge)] == ["Gateway"]
    for chart in (storage, serving, edge):
        assert validate_objects(synth(chart)) == []


def test_two_synths_are_byte_identical(tmp_path: Path) -> None:
    outputs = []
    for run in ("first", "second"):
        outdir = tmp_path / run
        app = cdk8s.App(outdir=str(outdir))
        default_chart(app)
        app.synth()
        outputs.append({p.name: p.read_bytes() for p in sorted(outdir.iterdir())})
    assert outputs[0] == outputs[1]
    assert list(outputs[0]) == ["vllm.k8s.yaml"]


def test_default_chart_yaml_snapshot(snapshot: SnapshotAssertion) -> None:
    app = k8s_app()
    default_chart(app)
    text = app.synth_yaml()
    assert next(o["kind"] for o in yaml.safe_load_all(text) if o) == "Namespace"
    assert text == snapshot


def test_stack_outputs_are_the_seeds_eight() -> None:
    _, pool, endpoint = default_chart(k8s_app())
    outputs = stack_outputs(pool, endpoint)
    assert list(outputs) == list(STACK_OUTPUT_DESCRIPTIONS)
    assert outputs == {
        "namespace": "vllm",
        "service_name": "vllm",
        "service_port": 8000,
        "gateway_name": "vllm-gateway",
        "model_id": QWEN,
        "model_name": "Qwen2.5-0.5B-Instruct",
        "replicas": 1,
        "quantization": "",
    }
