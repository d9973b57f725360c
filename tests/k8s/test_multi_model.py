"""Several models on one NFS store behind one Gateway: a path prefix per model, rewritten to
vLLM's /v1 (the OpenAI API names the model in the body, which an HTTPRoute cannot match)."""

from __future__ import annotations

import re
from typing import Any

import cdk8s
from conftest import validate_objects
from support import STORE, k8s_app

from vllm_doks.k8s import (
    GatewayEndpoint,
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)


def build(models: dict[str, str]) -> list[dict[str, Any]]:
    """One pool per (pool name -> model id), each reachable under /<pool name>/v1."""
    chart = cdk8s.Chart(k8s_app(), "multi", disable_resource_name_hashes=True)
    store = NfsModelStore(chart, "Models", STORE)
    gateway = GatewayEndpoint(chart, "Gateway")
    for name, model_id in models.items():
        pool = VllmWorkerPool(
            chart,
            name,
            VllmWorkerPoolProps(
                model=store.add_model(model_id, node_pool_name="gpu"),
                gpu_node_pool_name="gpu",
                name=name,
            ),
        )
        gateway.route_to(pool, path_prefix=f"/{name}/v1", rewrite_prefix_to="/v1")
    return list(cdk8s.Testing.synth(chart))


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def jobs_by_base_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Download Jobs by base name (their names end in ``-<hash of the pod template>``)."""
    found = {}
    for name, job in by_kind(objs, "Job").items():
        base, _, digest = name.rpartition("-")
        assert re.fullmatch(r"[0-9a-f]{8}", digest), name
        found[base] = job
    return found


def test_two_models_two_downloads_two_pools_one_gateway() -> None:
    objs = build(
        {"qwen-small": "Qwen/Qwen2.5-0.5B-Instruct", "qwen-7b": "Qwen/Qwen2.5-7B-Instruct"}
    )
    assert set(jobs_by_base_name(objs)) == {
        "model-download",
        "model-download-qwen2-5-7b-instruct",
    }
    assert set(by_kind(objs, "Deployment")) == {"qwen-small", "qwen-7b"}
    assert list(by_kind(objs, "Gateway")) == ["vllm-gateway"]
    routes = by_kind(objs, "HTTPRoute")
    (rule,) = routes["qwen-7b-route"]["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/qwen-7b/v1"}}]
    assert rule["filters"] == [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1"}},
        }
    ]
    assert rule["backendRefs"] == [{"name": "qwen-7b", "port": 8000}]
    args = by_kind(objs, "Deployment")["qwen-7b"]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert args[args.index("--model") + 1] == "/models/Qwen2.5-7B-Instruct"
    assert validate_objects(objs) == []


def test_switching_a_pools_model_rolls_its_pods_and_keeps_other_downloads() -> None:
    before = build({"chat": "Qwen/Qwen2.5-0.5B-Instruct", "big": "Qwen/Qwen2.5-7B-Instruct"})
    after = build({"chat": "Qwen/Qwen2.5-1.5B-Instruct", "big": "Qwen/Qwen2.5-7B-Instruct"})

    def pod_template(objs: list[dict[str, Any]], name: str) -> dict[str, Any]:
        template: dict[str, Any] = by_kind(objs, "Deployment")[name]["spec"]["template"]
        return template

    # A changed pod template is what makes Kubernetes roll the Deployment's pods.
    assert pod_template(before, "chat") != pod_template(after, "chat")
    assert pod_template(before, "big") == pod_template(after, "big")
    # The other model's download Job is unchanged (same name, same object); its completion
    # marker on the share makes a re-run exit at once instead of downloading again. The
    # switched model's Job is a new one: a Job's template is immutable, so it is never patched.
    job = "model-download-qwen2-5-7b-instruct"
    assert jobs_by_base_name(before)[job] == jobs_by_base_name(after)[job]
    chat_before = jobs_by_base_name(before)["model-download"]["metadata"]["name"]
    assert chat_before != jobs_by_base_name(after)["model-download"]["metadata"]["name"]
    script = jobs_by_base_name(after)[job]["spec"]["template"]["spec"]["containers"][0]
    assert ".vllm-doks-verified" in " ".join(script["command"] + script.get("args", []))
