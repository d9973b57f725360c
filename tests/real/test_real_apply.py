"""Against a real kube-apiserver 1.34 (with its controllers and admission): every configuration
the README documents applies with plain ``kubectl apply -f dist/``, with no error and no
admission warning, and every everyday change re-applies, and back, leaving nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cdk8s
import pytest
import yaml
from conftest import REPO, load_yaml_dir
from realtier import (
    SynthCache,
    apply,
    apply_in_sequence,
    identities,
    live_objects,
    prepare_namespace,
)

from vllm_doks.k8s import (
    GatewayEndpoint,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
)
from vllm_doks.k8s.inference_pool import VllmInferencePool, VllmInferencePoolProps
from vllm_doks.k8s.prefix_router import PrefixAwareRouter, PrefixAwareRouterProps
from vllm_doks.rehearsal import ControlPlane

pytestmark = pytest.mark.real

#: The configurations the README documents (Kubernetes layer inputs), by section.
README_CONFIGS: dict[str, dict[str, object]] = {
    # Set-up / deploy walkthrough: `make synth` and the vllm.yaml example (same k8s inputs).
    "default": {},
    # Capacity plan: the seed's HA example.
    # The seed's HA example as the README's capacity section makes it start (on one H100 the
    # planner refuses it, as vLLM would): one H200 per replica, or an H100 with an fp8 KV cache.
    "seed-ha-h200": {
        "model_id": "Qwen/Qwen2.5-72B-Instruct",
        "quantization": "fp8",
        "replicas": 3,
        "gpu_node_count": 3,
        "gpu_size": "gpu-h200x1-141gb",
    },
    "seed-ha-h100-fp8-kv": {
        "model_id": "Qwen/Qwen2.5-72B-Instruct",
        "quantization": "fp8",
        "replicas": 3,
        "gpu_node_count": 3,
        "gpu_memory_utilization": "0.95",
        "kv_cache_dtype": "fp8",
        "max_model_len": "12288",
    },
    # Security defaults: HTTPS with cert-manager; API key off; NetworkPolicies off.
    "https": {
        "tls_certificate_secret": "vllm-tls",
        "tls_hostname": "llm.example.com",
        "cert_manager_cluster_issuer": "letsencrypt",
    },
    "no-api-key": {"api_key_secret": ""},
    "no-network-policy": {"network_policy": False},
    # Optional: autoscaling and observability (the README's YAML block).
    "autoscaling-observability": {
        "autoscaling": True,
        "autoscaling_max_replicas": 4,
        "gpu_autoscale_max_nodes": 4,
        "pod_monitor": True,
        "grafana_dashboard": True,
    },
    # GPU sizes: AMD (ROCm image, amd.com/gpu) and a multi-GPU size (tensor parallel).
    "amd-mi300x": {"gpu_size": "gpu-mi300x1-192gb"},
    "h100x8": {"gpu_size": "gpu-h100x8-640gb"},
    # Downloading from a Spaces bucket instead of the hub.
    "spaces-source": {"model_source_bucket": "my-vllm-models"},
}

GPU_POOL = "my-vllm-gpu-h100"
QWEN = "Qwen/Qwen2.5-0.5B-Instruct"
QWEN_7B = "Qwen/Qwen2.5-7B-Instruct"


def _ns(name: str, namespaces: list[str], cp: ControlPlane, **kw: Any) -> str:
    prepare_namespace(cp, name, **kw)
    namespaces.append(name)
    return name


@pytest.mark.parametrize("config", list(README_CONFIGS))
def test_readme_configuration_applies_cleanly(
    config: str, control_plane: ControlPlane, synths: SynthCache, namespaces: list[str]
) -> None:
    ns = _ns(f"doc-{config}", namespaces, control_plane)
    out = synths.k8s(namespace=ns, **README_CONFIGS[config])
    count, stdout = apply(control_plane, out.dist)
    assert count == len(out.objects), stdout
    # Applied as emitted: the server would change nothing more (kubectl diff exits 0).
    diff = control_plane.kubectl("diff", "-f", str(out.dist), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    live = live_objects(control_plane, ns, {(r.api_version, r.kind) for r in out.objects})
    assert identities(live) <= identities(out.objects)
    print(f"[real] {config}: {count} objects applied")


def test_make_synth_output_applies_as_the_readme_says(
    control_plane: ControlPlane, tmp_path: Path, namespaces: list[str]
) -> None:
    """The real command line: `app.py synth --layer k8s`, then README step 4 verbatim."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_DOKS_", "CDK"))}
    proc = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "synth", "--layer", "k8s"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # Step 4 creates the namespace with --save-config (what prepare_namespace does): a plain
    # `kubectl create namespace` makes the apply warn about the missing last-applied annotation.
    assert "kubectl create namespace vllm --save-config" in (REPO / "README.md").read_text()
    _ns("vllm", namespaces, control_plane)
    control_plane.kubectl(
        "-n", "vllm", "create", "secret", "generic", "hf-token", "--from-literal=HF_TOKEN=hf_x"
    )
    count, _ = apply(control_plane, tmp_path / "dist")
    assert count >= 10
    # README step 5's log command names a Job that exists and selects its pods.
    job = control_plane.kubectl("get", "jobs", "-n", "vllm", "-l", "app=model-download")
    assert "model-download-" in job.stdout


# --- upgrade sequences ----------------------------------------------------------------------

#: Each input users change, set to another value: apply it, then the base again.
CHANGES: dict[str, dict[str, object]] = {
    "model_id": {"model_id": QWEN_7B},
    "model_id_typo_fixed": {"model_id": "Qwen/Qwen2.5-0.5B-Instruct-typo"},
    "replicas": {"replicas": 2},
    "quantization": {"quantization": "fp8"},
    "vllm_image": {"vllm_image": "registry.example.com/vllm/vllm-openai:v0.18.0"},
    "gpu_size": {"gpu_size": "gpu-h200x1-141gb"},
    "api_key_off": {"api_key_secret": ""},
    "api_key_other": {"api_key_secret": "other-api-key"},
    "tls_on": README_CONFIGS["https"],
    "autoscaling_on": README_CONFIGS["autoscaling-observability"],
    "network_policy_off": {"network_policy": False},
}


def test_every_change_reapplies_and_back(
    control_plane: ControlPlane, synths: SynthCache, namespaces: list[str]
) -> None:
    ns = _ns("upgrade", namespaces, control_plane)
    base = synths.k8s(namespace=ns)
    kinds: set[tuple[str, str]] = set()
    steps: list[tuple[str, Any]] = [("base", base)]
    for change, inputs in CHANGES.items():
        steps += [(change, synths.k8s(namespace=ns, **inputs)), (f"{change} back", base)]
    for _, s in steps:
        kinds |= {(r.api_version, r.kind) for r in s.objects}
    applied = apply_in_sequence(control_plane, ns, steps, kinds)
    print(f"[real] upgrade sequence: {len(steps)} applies, {applied} objects applied")


def test_model_change_gets_a_new_job_and_never_patches_the_old(synths: SynthCache) -> None:
    """Why the sequence above can pass: a Job's name follows its pod template (the download
    Job's and the smoke test's, which names the model too)."""
    a = {r.name for r in synths.k8s(namespace="upgrade").objects if r.kind == "Job"}
    b = {
        r.name for r in synths.k8s(namespace="upgrade", model_id=QWEN_7B).objects if r.kind == "Job"
    }
    assert len(a) == len(b) == 2 and not a & b


# --- the Python API: a second model, routing strategies -------------------------------------


def _api_chart(ns: str, *, models: dict[str, str], strategy: str = "round-robin"):  # type: ignore[no-untyped-def]
    def build(app: cdk8s.App) -> None:
        chart = cdk8s.Chart(
            app, f"{ns}-{strategy}-{len(models)}", disable_resource_name_hashes=True
        )
        add_namespace(chart, ns)
        store = NfsModelStore(
            chart,
            "Models",
            NfsModelStoreProps(
                nfs_server="10.200.0.5", nfs_path="/1234567/api", capacity_gi=1000, namespace=ns
            ),
        )
        gateway = GatewayEndpoint(chart, "Gateway", _gateway_props(ns))
        for name, model_id in models.items():
            pool = VllmWorkerPool(
                chart,
                name,
                VllmWorkerPoolProps(
                    model=store.add_model(model_id, node_pool_name=GPU_POOL),
                    gpu_node_pool_name=GPU_POOL,
                    name=name,
                ),
            )
            backend: Any = None
            if strategy == "prefix-aware":
                backend = PrefixAwareRouter(
                    chart, f"Router-{name}", PrefixAwareRouterProps(pools=[pool])
                )
            elif strategy == "inference-pool":
                backend = VllmInferencePool(
                    chart,
                    f"Pool-{name}",
                    VllmInferencePoolProps(pool=pool, gateway_namespaces=("envoy-gateway-system",)),
                )
            if len(models) == 1:
                gateway.route_to(pool, backend=backend)
            else:
                gateway.route_to(
                    pool, path_prefix=f"/{name}/v1", rewrite_prefix_to="/v1", backend=backend
                )

    return build


def _gateway_props(ns: str) -> Any:
    from vllm_doks.k8s import GatewayEndpointProps

    # Not Cilium: an InferencePool needs a Gateway implementing the Inference Extension (the
    # route refuses it behind `cilium`), and one Gateway class serves every strategy here.
    return GatewayEndpointProps(namespace=ns, gateway_class_name="eg")


def test_second_model_and_routing_strategies_reapply_and_back(
    control_plane: ControlPlane, synths: SynthCache, namespaces: list[str]
) -> None:
    ns = _ns("api", namespaces, control_plane)
    one = {"vllm": QWEN}
    two = {"vllm": QWEN, "qwen-7b": QWEN_7B}
    variants = {
        "one model": synths.chart("one", _api_chart(ns, models=one)),
        "second model": synths.chart("two", _api_chart(ns, models=two)),
        "prefix-aware": synths.chart("router", _api_chart(ns, models=one, strategy="prefix-aware")),
        "inference-pool": synths.chart(
            "inference", _api_chart(ns, models=one, strategy="inference-pool")
        ),
    }
    sequence = [
        "one model",
        "second model",
        "one model",
        "prefix-aware",
        "inference-pool",
        "one model",
        "inference-pool",
        "prefix-aware",
        "second model",
        "one model",
    ]
    kinds = {(r.api_version, r.kind) for v in variants.values() for r in v.objects}
    steps = [(label, variants[label]) for label in sequence]
    applied = apply_in_sequence(control_plane, ns, steps, kinds)
    print(f"[real] Python API sequence: {len(sequence)} applies, {applied} objects applied")


# --- the defects the real server shows, as it shows them ------------------------------------


def test_the_server_refuses_a_changed_job_template_under_the_same_name(
    control_plane: ControlPlane, synths: SynthCache, namespaces: list[str]
) -> None:
    """Why the download Job's name carries its template's hash: re-applying another model's
    Job under the old name is what failed before ("spec.template: ... field is immutable")."""
    ns = _ns("immutable", namespaces, control_plane)
    first, second = (
        next(d for d in load_yaml_dir(s.dist) if d["kind"] == "Job")
        for s in (synths.k8s(namespace=ns), synths.k8s(namespace=ns, model_id=QWEN_7B))
    )
    second["metadata"]["name"] = first["metadata"]["name"]
    control_plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(first))
    proc = control_plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(second), check=False)
    assert proc.returncode != 0 and "field is immutable" in proc.stderr, proc.stderr


def test_readme_upgrade_from_the_old_volume_names(
    control_plane: ControlPlane, synths: SynthCache, namespaces: list[str]
) -> None:
    """The README's steps for an instance made before the per-instance volume names."""
    ns = _ns("legacy", namespaces, control_plane)
    new = synths.k8s(namespace=ns)
    old_docs = []
    for doc in load_yaml_dir(new.dist):
        if doc["kind"] == "PersistentVolume":
            doc["metadata"] = {"name": "legacy-vllm-models-pv", "labels": {"pv-name": "legacy"}}
        elif doc["kind"] == "PersistentVolumeClaim":
            doc["spec"]["selector"] = {"matchLabels": {"pv-name": "legacy"}}
        old_docs.append(doc)
    control_plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(old_docs))
    refused = control_plane.kubectl("apply", "-f", str(new.dist), check=False)
    assert refused.returncode != 0 and "PersistentVolumeClaim" in refused.stderr
    # README: delete the old claim (after its users) and volume once, then apply again.
    control_plane.kubectl("delete", "-n", ns, "deployment/vllm", "pvc/vllm-models-pvc")
    control_plane.kubectl("delete", "-n", ns, "job", "-l", "app=model-download")
    control_plane.kubectl("delete", "pv", "legacy-vllm-models-pv")
    apply(control_plane, new.dist)
