"""Against a real kube-apiserver 1.34: a model with two LoRA adapters applies as emitted, and a
canary rollout applies step by step (0 -> 10 -> 50 -> 100 -> promoted), and back for a
rollback, with the route the server stores splitting as asked at every step."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import REPO
from realtier import (
    SynthCache,
    apply,
    delete_removed,
    finish_job,
    get_json,
    identities,
    live_objects,
    prepare_namespace,
    user_environment,
)

from vllm_doks.k8s import (
    CanarySplit,
    GatewayEndpoint,
    GatewayEndpointProps,
    LoraAdapter,
    LoraAdapterProps,
    LoraOptions,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
)
from vllm_doks.rehearsal import ControlPlane
from vllm_doks.removed_objects import manifest_objects

pytestmark = pytest.mark.real

GPU_POOL = "my-vllm-gpu-h100"
QWEN = "Qwen/Qwen2.5-7B-Instruct"
QWEN_NEW = "Qwen/Qwen2.5-7B-Instruct-1M"


def _chart(ns: str, build: Callable[[cdk8s.Chart, NfsModelStore, GatewayEndpoint], None]) -> Any:
    def make(app: cdk8s.App) -> None:
        chart = cdk8s.Chart(app, ns, disable_resource_name_hashes=True)
        add_namespace(chart, ns)
        store = NfsModelStore(
            chart,
            "Models",
            NfsModelStoreProps(
                nfs_server="10.200.0.5", nfs_path="/1234567/models", capacity_gi=500, namespace=ns
            ),
        )
        build(chart, store, GatewayEndpoint(chart, "Gateway", GatewayEndpointProps(namespace=ns)))

    return make


def test_a_model_with_two_adapters_applies_as_emitted(
    control_plane: ControlPlane, synths: SynthCache, namespaces: list[str]
) -> None:
    ns = "lora"
    prepare_namespace(control_plane, ns)
    namespaces.append(ns)

    def build(chart: cdk8s.Chart, store: NfsModelStore, gateway: GatewayEndpoint) -> None:
        qwen = store.add_model(QWEN, node_pool_name=GPU_POOL)
        adapters = tuple(
            LoraAdapter(
                chart,
                name,
                LoraAdapterProps(
                    base_model=qwen, adapter_id=f"acme/qwen2.5-7b-{name}-lora", name=name, rank=r
                ),
            )
            for name, r in (("sql", 16), ("support", 64))
        )
        pool = VllmWorkerPool(
            chart,
            "Qwen",
            VllmWorkerPoolProps(
                model=qwen, gpu_node_pool_name=GPU_POOL, lora=LoraOptions(adapters=adapters)
            ),
        )
        gateway.route_to(pool)

    out = synths.chart("lora", _chart(ns, build))
    count, _ = apply(control_plane, out.dist)
    assert count == len(out.objects)
    # As emitted: the server would change nothing more.
    diff = control_plane.kubectl("diff", "-f", str(out.dist), check=False)
    assert diff.returncode == 0, diff.stdout
    jobs = get_json(control_plane, "jobs", "-n", ns)["items"]
    assert sorted(j["metadata"]["labels"]["app"] for j in jobs) == ["model-download"] * 3
    commands = {j["spec"]["template"]["spec"]["containers"][0]["command"][5] for j in jobs}
    assert commands == {
        "/models/Qwen2.5-7B-Instruct",
        "/models/lora/acme--qwen2.5-7b-sql-lora",
        "/models/lora/acme--qwen2.5-7b-support-lora",
    }
    deployment = get_json(control_plane, "deployment/vllm", "-n", ns)
    spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]][-2:] == [
        "wait-for-lora-0",
        "wait-for-lora-1",
    ]
    (vllm,) = [c for c in spec["containers"] if c["name"] == "vllm"]
    args = vllm["args"]
    assert args[args.index("--max-lora-rank") + 1] == "64"
    assert args[args.index("--lora-modules") + 1 :][:2] == [
        "sql=/models/lora/acme--qwen2.5-7b-sql-lora",
        "support=/models/lora/acme--qwen2.5-7b-support-lora",
    ]


def _canary(ns: str, **split: Any) -> Callable[..., None]:
    def build(chart: cdk8s.Chart, store: NfsModelStore, gateway: GatewayEndpoint) -> None:
        blue = VllmWorkerPool(
            chart,
            "Blue",
            VllmWorkerPoolProps(
                model=store.add_model(QWEN, node_pool_name=GPU_POOL),
                gpu_node_pool_name=GPU_POOL,
                served_model_name="qwen",
            ),
        )
        if split.get("weight") is None:
            gateway.route_to(blue, route_name="vllm-route")
            return
        green = VllmWorkerPool(
            chart,
            "Green",
            VllmWorkerPoolProps(
                model=store.add_model(QWEN_NEW, node_pool_name=GPU_POOL),
                gpu_node_pool_name=GPU_POOL,
                name="vllm-green",
                served_model_name="qwen",
            ),
        )
        gateway.route_to(blue, route_name="vllm-route", canary=CanarySplit(pool=green, **split))

    return _chart(ns, build)


def test_a_canary_rollout_applies_step_by_step_and_rolls_back(
    control_plane: ControlPlane, synths: SynthCache, namespaces: list[str]
) -> None:
    ns = "canary"
    prepare_namespace(control_plane, ns)
    namespaces.append(ns)
    steps: dict[str, dict[str, Any]] = {
        "stable": {"weight": None},
        "0": {"weight": 0},
        "10": {"weight": 10},
        "50": {"weight": 50},
        "100": {"weight": 100},
        "promoted": {"weight": 100, "promoted": True},
    }
    variants = {
        label: synths.chart(f"canary-{label}", _canary(ns, **s)) for label, s in steps.items()
    }
    expected = {
        "stable": [("vllm", 1)],  # one backend: the server defaults its weight to 1
        "0": [("vllm", 100), ("vllm-green", 0)],
        "10": [("vllm", 90), ("vllm-green", 10)],
        "50": [("vllm", 50), ("vllm-green", 50)],
        "100": [("vllm", 0), ("vllm-green", 100)],
        "promoted": [("vllm-green", 1)],
    }
    sequence = ["stable", "0", "10", "50", "10", "50", "100", "promoted", "100", "promoted"]
    kinds = {(r.api_version, r.kind) for v in variants.values() for r in v.objects}
    previous = None
    for label in sequence:
        step = variants[label]
        apply(control_plane, step.dist)
        if previous is not None:
            delete_removed(control_plane, previous.dist, step.dist)
        live = live_objects(control_plane, ns, kinds)
        assert identities(live) == {i for i in identities(step.objects) if i[1] == ns}, label
        route = get_json(control_plane, "httproute/vllm-route", "-n", ns)
        rules = route["spec"]["rules"]
        assert [(b["name"], b["weight"]) for b in rules[0]["backendRefs"]] == expected[label], label
        has_smoke_rule = label not in ("stable", "promoted")
        assert len(rules) == (2 if has_smoke_rule else 1), label
        if has_smoke_rule:
            assert [b["name"] for b in rules[1]["backendRefs"]] == ["vllm-green"]
        previous = step
    # The stable pool is still deployed after the promotion (it left the route only): deleting
    # it is the next change, which the synth's delete list then names.
    assert get_json(control_plane, "deployment/vllm", "-n", ns)["metadata"]["name"] == "vllm"


# --- the README's walkthrough, command by command ------------------------------------------

#: The README's "Rollouts and LoRA adapters" steps: examples/rollout.py options per apply.
README_STEPS: list[tuple[str, list[str]]] = [
    ("adapters", []),
    ("canary 0", ["--canary-weight", "0"]),
    ("canary 10", ["--canary-weight", "10"]),
    ("canary 50", ["--canary-weight", "50"]),
    ("canary 100", ["--canary-weight", "100"]),
    ("promote", ["--canary-weight", "100", "--promote"]),
    ("finish", ["--finish"]),
]
#: The README's command that removes the old pool after --finish.
README_DELETE_OLD_POOL = [
    "delete", "deployment,service,pdb,networkpolicy,ciliumnetworkpolicy", "-l", "app=vllm"
]  # fmt: skip
#: ... and the canary's finished smoke test.
CANARY_SMOKE = "vllm-doks.io/canary-smoke-test=vllm-green"
README_DELETE_SMOKE_TEST = ["delete", "job,networkpolicy", "-l", CANARY_SMOKE]
#: The README's wait for the canary's smoke test (after the "canary 0" step).
README_WAIT_SMOKE_TEST = [
    "wait", "--for=condition=complete", "job", "-l", CANARY_SMOKE, "--timeout=30m"
]  # fmt: skip
#: The README's look at the downloads (after the first step).
README_DOWNLOADS = ["get", "jobs", "-l", "app=model-download"]
#: What the stored route's main rule sends where after each step (name, weight).
README_SPLITS: dict[str, list[tuple[str, int]]] = {
    "adapters": [("vllm", 1)],
    "canary 0": [("vllm", 100), ("vllm-green", 0)],
    "canary 10": [("vllm", 90), ("vllm-green", 10)],
    "canary 50": [("vllm", 50), ("vllm-green", 50)],
    "canary 100": [("vllm", 0), ("vllm-green", 100)],
    "promote": [("vllm-green", 1)],
    "finish": [("vllm-green", 1)],
}


def test_readme_rollout_walkthrough_applies_step_by_step(
    control_plane: ControlPlane, namespaces: list[str], tmp_path: Path
) -> None:
    ns = "rollout"
    prepare_namespace(control_plane, ns)
    namespaces.append(ns)
    readme = (REPO / "README.md").read_text()
    for command in (
        README_DELETE_OLD_POOL,
        README_DELETE_SMOKE_TEST,
        README_WAIT_SMOKE_TEST,
        README_DOWNLOADS,
    ):
        assert "kubectl -n vllm " + " ".join(command) in readme, command
    for label, options in README_STEPS:
        assert " ".join(["python examples/rollout.py dist-rollout", *options]) in readme, label
    kinds: set[tuple[str, str]] = set()
    for label, options in README_STEPS:
        dist = tmp_path / label.replace(" ", "-")
        subprocess.run(
            [sys.executable, str(REPO / "examples" / "rollout.py"), str(dist), *options,
             "--namespace", ns],
            check=True, capture_output=True, env=user_environment(control_plane),
        )  # fmt: skip
        apply(control_plane, dist)
        objects = manifest_objects(dist)
        kinds |= {(r.api_version, r.kind) for r in objects}
        route = get_json(control_plane, "httproute/vllm-route", "-n", ns)
        backends = route["spec"]["rules"][0]["backendRefs"]
        assert [(b["name"], b["weight"]) for b in backends] == README_SPLITS[label], label
        if label == "adapters":
            # The adapters' downloads: one Job each, besides the model's.
            listed = control_plane.kubectl("-n", ns, *README_DOWNLOADS).stdout
            assert len(listed.strip().splitlines()) == 1 + 3, listed
        if label == "canary 0":
            # No kubelet runs the smoke test here: end it as the Job controller would, then
            # the README's wait returns (and --promote, later, finds it succeeded).
            (job,) = [r.name for r in objects if r.kind == "Job" and "-smoke-test-" in r.name]
            finish_job(control_plane, ns, job, succeeded=True)
            control_plane.kubectl("-n", ns, *README_WAIT_SMOKE_TEST)
    # After --finish the old pool and the canary's smoke test are no longer in the output:
    # the README's deletes remove them.
    control_plane.kubectl("-n", ns, *README_DELETE_OLD_POOL)
    control_plane.kubectl("-n", ns, *README_DELETE_SMOKE_TEST)
    live = live_objects(control_plane, ns, kinds)
    assert identities(live) == {i for i in identities(objects) if i[1] == ns}
    assert ("Deployment", ns, "vllm") not in identities(live)
    # The adapters' downloads ran once each; no step added a Job (each reuses its marker).
    jobs = get_json(control_plane, "jobs", "-n", ns)["items"]
    assert len(jobs) == 3  # the model and its two adapters
