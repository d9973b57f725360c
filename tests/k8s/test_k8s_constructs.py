"""Behaviour of NfsModelStore, ModelDownload, VllmWorkerPool and GatewayEndpoint, asserted on
the objects they synthesize (in process, one jsii kernel for the whole run)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import cdk8s
import pytest
from support import GPU_POOL, LLAMA, QWEN, STORE, Obj, find, names, new_chart, synth

from vllm_doks import ValidationError
from vllm_doks.k8s import (
    DEFAULT_VLLM_IMAGE,
    GatewayEndpoint,
    GatewayEndpointProps,
    ModelDownload,
    NfsModelStore,
    NfsModelStoreProps,
    ProbeTimings,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
    model_name_from_id,
)
from vllm_doks.k8s.scripts import (
    DOWNLOAD_MODEL,
    FETCH_MODEL,
    PRESTOP_DRAIN,
    WAIT_FOR_MODEL,
    script_text,
)
from vllm_doks.k8s.vllm_worker_pool import SHUTDOWN_MARGIN_SECONDS

#: The pod security context of every pod that touches the model files (uid/gid 1000 own them).
POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "fsGroupChangePolicy": "OnRootMismatch",
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pool_chart(
    model_id: str = QWEN, store: NfsModelStoreProps = STORE, **pool: Any
) -> tuple[cdk8s.Chart, VllmWorkerPool]:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", store).add_model(model_id, node_pool_name=GPU_POOL)
    props = VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL, **pool)
    return chart, VllmWorkerPool(chart, "Workers", props)


def deployment(objs: list[Obj], name: str = "vllm") -> Obj:
    return find(objs, "Deployment", name)


def pod(objs: list[Obj], name: str = "vllm") -> Obj:
    return deployment(objs, name)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def vllm_container(objs: list[Obj], name: str = "vllm") -> Obj:
    (container,) = pod(objs, name)["containers"]
    return container  # type: ignore[no-any-return]


def env_of(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --- NfsModelStore ------------------------------------------------------------------------


def test_store_renders_a_cluster_scoped_nfs_volume_like_the_seed() -> None:
    chart = new_chart()
    NfsModelStore(chart, "Models", STORE)
    # Cluster-scoped: the name carries the namespace, so each instance has its own volume.
    pv = find(synth(chart), "PersistentVolume", "vllm.vllm-models-pv")
    assert pv["metadata"] == {
        "name": "vllm.vllm-models-pv",
        "labels": {"vllm-doks.io/store-namespace": "vllm", "vllm-doks.io/store": "vllm-models"},
    }
    # No storageClassName: "" is the API's default for a volume and is not stored.
    assert pv["spec"] == {
        "capacity": {"storage": "1000Gi"},
        "accessModes": ["ReadWriteMany"],
        "persistentVolumeReclaimPolicy": "Retain",
        "nfs": {"server": "10.200.0.5", "path": "/1234567/abcd"},
    }


def test_store_claim_binds_to_its_volume_by_label_with_no_storage_class() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", STORE)
    pvc = find(synth(chart), "PersistentVolumeClaim", "vllm-models-pvc")
    assert pvc["metadata"] == {"name": "vllm-models-pvc", "namespace": "vllm"}
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "",
        "resources": {"requests": {"storage": "1000Gi"}},
        "selector": {
            "matchLabels": {
                "vllm-doks.io/store-namespace": "vllm",
                "vllm-doks.io/store": "vllm-models",
            }
        },
    }
    assert (store.pv_name, store.pvc_name, store.namespace) == (
        "vllm.vllm-models-pv",
        "vllm-models-pvc",
        "vllm",
    )


def test_a_chart_namespace_never_lands_on_the_volume_nor_overrides_props() -> None:
    chart = new_chart(namespace="somewhere-else")
    NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    objs = synth(chart)
    assert "namespace" not in find(objs, "PersistentVolume", "vllm.vllm-models-pv")["metadata"]
    assert find(objs, "PersistentVolumeClaim", "vllm-models-pvc")["metadata"]["namespace"] == "vllm"
    assert find(objs, "Job", "model-download")["metadata"]["namespace"] == "vllm"


def test_store_name_namespace_and_mount_path_are_props() -> None:
    chart = new_chart()
    props = dataclasses.replace(STORE, name="weights", namespace="inference", mount_path="/w")
    model = NfsModelStore(chart, "Models", props).add_model(QWEN)
    objs = synth(chart)
    assert {n for _, n in names(objs)} == {
        "inference.weights-pv",
        "weights-pvc",
        "model-download",  # the download's NetworkPolicy
        download_job(objs)["metadata"]["name"],
    }
    assert find(objs, "Job", "model-download")["metadata"]["namespace"] == "inference"
    assert model.model_dir == "/w/Qwen2.5-0.5B-Instruct"
    assert model.pvc_name == "weights-pvc"


@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        (QWEN, "Qwen2.5-0.5B-Instruct"),
        (LLAMA, "Llama-3.1-8B-Instruct"),
        ("gpt2", "gpt2"),
    ],
)
def test_model_name_is_the_last_segment_of_the_id(model_id: str, name: str) -> None:
    assert model_name_from_id(model_id) == name


def test_each_model_gets_its_own_directory_and_job() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", STORE)
    qwen = store.add_model(QWEN)
    llama = store.add_model(LLAMA)
    assert store.models == (qwen, llama)
    # The first keeps the seed's name as its base; each Job's name ends in its template hash.
    assert (qwen.base_name, llama.base_name) == (
        "model-download",
        "model-download-llama-3-1-8b-instruct",
    )
    assert re.fullmatch(r"model-download-[0-9a-f]{8}", qwen.job_name)
    assert re.fullmatch(r"model-download-llama-3-1-8b-instruct-[0-9a-f]{8}", llama.job_name)
    assert (qwen.model_dir, llama.model_dir) == (
        "/models/Qwen2.5-0.5B-Instruct",
        "/models/Llama-3.1-8B-Instruct",
    )
    assert llama.marker_path == "/models/Llama-3.1-8B-Instruct/.vllm-doks-verified"
    assert (llama.model_id, llama.model_name, llama.namespace) == (
        LLAMA,
        "Llama-3.1-8B-Instruct",
        "vllm",
    )
    objs = synth(chart)
    jobs = [o for o in objs if o["kind"] == "Job"]
    assert [j["metadata"]["name"] for j in jobs] == [qwen.job_name, llama.job_name]
    assert [j["spec"]["template"]["spec"]["containers"][0]["command"][5] for j in jobs] == [
        qwen.model_dir,
        llama.model_dir,
    ]


def test_job_name_can_be_chosen() -> None:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, job_name="fetch-qwen")
    assert model.base_name == "fetch-qwen"
    assert find(synth(chart), "Job", "fetch-qwen")["metadata"]["name"] == model.job_name


def download_job(objs: list[Obj], name: str = "model-download") -> Obj:
    return find(objs, "Job", name)


def test_download_job_runs_once_non_root_and_cleans_up_after_itself() -> None:
    chart = new_chart()
    NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    job = download_job(synth(chart))
    assert job["metadata"]["labels"] == {"app": "model-download"}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "app": "model-download",
        "vllm-doks.io/download-job": "model-download",
    }
    spec = job["spec"]
    assert spec["ttlSecondsAfterFinished"] == 300
    assert spec["backoffLimit"] == 6
    podspec = spec["template"]["spec"]
    assert podspec["restartPolicy"] == "Never"
    assert podspec["automountServiceAccountToken"] is False
    assert podspec["securityContext"] == POD_SECURITY_CONTEXT
    (container,) = podspec["containers"]
    assert container["name"] == "download"
    assert container["image"] == DEFAULT_VLLM_IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "4", "memory": "8Gi"},
    }


def test_download_job_has_writable_home_and_an_optional_token_file() -> None:
    chart = new_chart()
    NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    podspec = download_job(synth(chart))["spec"]["template"]["spec"]
    (container,) = podspec["containers"]
    # The token is a file huggingface_hub reads (HF_TOKEN_PATH), not an environment variable.
    assert env_of(container) == {
        "HOME": "/tmp",
        "HF_HOME": "/tmp/hf_home",
        "HF_TOKEN_PATH": "/var/run/secrets/huggingface/token",
    }
    # Read-only root: /tmp (HOME, HF_HOME) is an emptyDir; /models is the writable share.
    assert container["volumeMounts"] == [
        {"name": "models", "mountPath": "/models"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "hf-token", "mountPath": "/var/run/secrets/huggingface", "readOnly": True},
    ]
    assert podspec["volumes"] == [
        {
            "name": "models",
            "persistentVolumeClaim": {"claimName": "vllm-models-pvc"},
        },
        {"name": "tmp", "emptyDir": {}},
        {
            "name": "hf-token",
            "secret": {
                "defaultMode": 0o440,
                "items": [{"key": "HF_TOKEN", "path": "token"}],
                "optional": True,
                "secretName": "hf-token",
            },
        },
    ]


def test_download_token_secret_can_be_renamed_or_left_out() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", STORE)
    store.add_model(QWEN, hf_token_secret_name="hugging", hf_token_secret_key="token")
    store.add_model(LLAMA, hf_token_secret_name=None)
    objs = synth(chart)
    renamed = download_job(objs)["spec"]["template"]["spec"]
    assert renamed["volumes"][-1]["secret"]["secretName"] == "hugging"
    assert renamed["volumes"][-1]["secret"]["items"] == [{"key": "token", "path": "token"}]
    second = download_job(objs, "model-download-llama-3-1-8b-instruct")["spec"]["template"]["spec"]
    assert "HF_TOKEN_PATH" not in env_of(second["containers"][0])
    assert [v["name"] for v in second["volumes"]] == ["models", "tmp"]


def test_download_job_runs_on_the_gpu_pool_only_when_asked() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", STORE)
    store.add_model(QWEN, node_pool_name=GPU_POOL)
    store.add_model(LLAMA)
    objs = synth(chart)
    pinned = download_job(objs)["spec"]["template"]["spec"]
    assert pinned["nodeSelector"] == {"doks.digitalocean.com/node-pool": GPU_POOL}
    assert pinned["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    anywhere = download_job(objs, "model-download-llama-3-1-8b-instruct")["spec"]["template"][
        "spec"
    ]
    assert "nodeSelector" not in anywhere
    assert "tolerations" not in anywhere


def test_download_script_downloads_once_under_a_lock_and_writes_the_marker_last() -> None:
    chart = new_chart()
    NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    command = download_job(synth(chart))["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    script = command[2]
    assert script == script_text(DOWNLOAD_MODEL)
    # name, model id, model dir, max_workers, lock staleness, heartbeat, poll, revision, fetcher
    assert command[3:-2] == [
        "download-model",
        QWEN,
        "/models/Qwen2.5-0.5B-Instruct",
        "4",
        "120",
        "15",
        "10",
    ]
    assert command[-2:] == ["", script_text(FETCH_MODEL)]
    fetcher = command[-1]
    assert 'marker="${model_dir}/.vllm-doks-verified"' in script
    assert 'if [ -f "$marker" ]; then' in script
    assert 'mkdir "$lock"' in script
    assert "snapshot_download(" in fetcher
    assert "max_workers=workers" in fetcher
    assert script.index('python3 -c "$fetch_program"') < script.rindex('"$marker"')
    assert "pip install" not in script


def test_download_workers_come_from_the_store_or_the_model() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", dataclasses.replace(STORE, download_max_workers=2))
    store.add_model(QWEN)
    store.add_model(LLAMA, max_workers=8)
    objs = synth(chart)
    assert download_job(objs)["spec"]["template"]["spec"]["containers"][0]["command"][6] == "2"
    llama = download_job(objs, "model-download-llama-3-1-8b-instruct")
    assert llama["spec"]["template"]["spec"]["containers"][0]["command"][6] == "8"


def test_store_props_are_validated_all_at_once() -> None:
    chart = new_chart()
    bad = NfsModelStoreProps(
        nfs_server="not a host",
        nfs_path="relative/path",
        capacity_gi=0,
        namespace="Bad_NS",
        download_image="vllm/vllm-openai:latest",
    )
    with pytest.raises(ValidationError) as err:
        NfsModelStore(chart, "Models", bad)
    assert err.value.where == "test/Models"
    assert {p.field for p in err.value.problems} == {
        "nfs_server",
        "nfs_path",
        "capacity_gi",
        "namespace",
        "download_image",
    }
    message = str(err.value)
    assert "capacity_gi: got 0; must be a whole number at least 1" in message
    assert "download_image: got 'vllm/vllm-openai:latest'" in message
    assert "'relative/path'" in message


def test_models_whose_names_differ_only_in_case_or_punctuation_coexist() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", STORE)
    first = store.add_model("org/Model.1")
    second = store.add_model("org/model-1")
    assert (first.model_dir, second.model_dir) == ("/models/Model.1", "/models/model-1")
    assert (first.base_name, second.base_name) == ("model-download", "model-download-model-1")
    with pytest.raises(ValidationError, match="already the Job of another model"):
        store.add_model("org/MODEL_1")


def test_add_model_rejects_duplicates_and_shared_directories() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", STORE)
    store.add_model(QWEN)
    with pytest.raises(ValidationError, match="already added"):
        store.add_model(QWEN)
    with pytest.raises(ValidationError, match="same directory name"):
        store.add_model("someone-else/Qwen2.5-0.5B-Instruct")
    with pytest.raises(ValidationError, match="already the Job of another model"):
        store.add_model(LLAMA, job_name="model-download")
    with pytest.raises(ValidationError) as err:
        store.add_model(
            "not/a/model id", node_pool_name="GPU POOL", max_workers=0, hf_token_secret_key="a b"
        )
    assert {p.field for p in err.value.problems} == {
        "model_id",
        "node_pool_name",
        "max_workers",
        "hf_token_secret_key",
    }
    assert "add_model('not/a/model id')" in err.value.where


# --- VllmWorkerPool -----------------------------------------------------------------------


def test_pool_renders_the_seeds_deployment_service_and_budget_names() -> None:
    chart, _ = pool_chart()
    objs = synth(chart)
    assert [n for n in names(objs) if n[0] in ("Deployment", "Service", "PodDisruptionBudget")] == [
        ("Deployment", "vllm"),
        ("Service", "vllm"),
        ("PodDisruptionBudget", "vllm-pdb"),
    ]
    for kind, name in (
        ("Deployment", "vllm"),
        ("Service", "vllm"),
        ("PodDisruptionBudget", "vllm-pdb"),
    ):
        metadata = dict(find(objs, kind, name)["metadata"])
        metadata.pop("annotations", None)  # the Deployment's checkov waivers
        assert metadata == {"name": name, "namespace": "vllm", "labels": {"app": "vllm"}}


def test_pool_exposes_what_other_constructs_and_outputs_need() -> None:
    _, pool = pool_chart(replicas=3, quantization="fp8")
    assert pool.service_name == "vllm"
    assert pool.service_port == 8000
    assert pool.selector_labels == {"app": "vllm"}
    assert pool.deployment_name == "vllm"
    assert pool.pdb_name == "vllm-pdb"
    assert pool.namespace == "vllm"
    assert pool.model_id == QWEN
    assert pool.model_name == "Qwen2.5-0.5B-Instruct"
    assert pool.served_model_name == "Qwen2.5-0.5B-Instruct"
    assert pool.replicas == 3
    assert pool.quantization == "fp8"
    pool.selector_labels["app"] = "changed"
    assert pool.selector_labels == {"app": "vllm"}


def test_rollouts_replace_one_pod_at_a_time_without_a_surge_pod() -> None:
    chart, _ = pool_chart(replicas=3)
    spec = deployment(synth(chart))["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    assert spec["selector"] == {"matchLabels": {"app": "vllm"}}
    assert spec["template"]["metadata"] == {"labels": {"app": "vllm"}}
    assert spec["progressDeadlineSeconds"] == 1800


def test_vllm_args_serve_the_model_from_the_share() -> None:
    chart, _ = pool_chart()
    container = vllm_container(synth(chart))
    assert container["name"] == "vllm"
    assert container["image"] == "vllm/vllm-openai:v0.18.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert "command" not in container  # the image's entrypoint is `vllm serve`
    assert container["args"] == [
        "--model",
        "/models/Qwen2.5-0.5B-Instruct",
        "--served-model-name",
        "Qwen2.5-0.5B-Instruct",
        "--safetensors-load-strategy",
        "eager",
        "--port",
        "8000",
        "--shutdown-timeout",
        "33",
    ]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


@pytest.mark.parametrize(("quantization", "expected"), [(None, None), ("", None), ("fp8", "fp8")])
def test_quantization_flag_is_emitted_only_when_set(
    quantization: str | None, expected: str | None
) -> None:
    chart, pool = pool_chart(quantization=quantization)
    args = vllm_container(synth(chart))["args"]
    if expected is None:
        assert "--quantization" not in args
        assert pool.quantization is None
    else:
        i = args.index("--quantization")
        assert args[i + 1] == expected
        assert args.index("--served-model-name") < i < args.index("--safetensors-load-strategy")


def test_served_name_port_image_and_extra_args_are_props() -> None:
    chart, pool = pool_chart(
        served_model_name="qwen",
        port=9000,
        image="registry.example.com/vllm-openai:v0.18.0-patched",
        extra_args=("--max-model-len", "8192"),
    )
    objs = synth(chart)
    container = vllm_container(objs)
    assert container["args"][3] == "qwen"
    assert container["args"][-2:] == ["--max-model-len", "8192"]
    assert container["image"] == "registry.example.com/vllm-openai:v0.18.0-patched"
    assert pod(objs)["initContainers"][0]["image"] == container["image"]
    assert container["ports"][0]["containerPort"] == 9000
    assert env_of(container)["VLLM_PORT"] == "9000"
    service = find(objs, "Service", "vllm")
    assert service["spec"]["ports"][0]["port"] == 9000
    assert pool.service_port == 9000
    assert pool.served_model_name == "qwen"


def test_env_matches_the_seed() -> None:
    chart, _ = pool_chart()
    assert vllm_container(synth(chart))["env"] == [
        {"name": "USER", "value": "vllm"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "VLLM_PORT", "value": "8000"},
        {
            "name": "HF_TOKEN",
            "valueFrom": {
                "secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN", "optional": True}
            },
        },
        # Not in the seed: API-key authentication, on by default (tests/k8s/test_k8s_security.py).
        {
            "name": "VLLM_API_KEY",
            "valueFrom": {
                "secretKeyRef": {"name": "vllm-api-key", "key": "VLLM_API_KEY", "optional": False}
            },
        },
        {"name": "HF_HUB_OFFLINE", "value": "1"},
        # Not in the seed: no usage reports to stats.vllm.ai (vllm/envs.py, usage_lib.py).
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
    ]
    chart, _ = pool_chart(hf_token_secret_name=None)
    assert "HF_TOKEN" not in env_of(vllm_container(synth(chart)))


def test_gpu_requests_equal_limits_and_no_cpu_limit() -> None:
    chart, _ = pool_chart()
    assert vllm_container(synth(chart))["resources"] == {
        "requests": {"nvidia.com/gpu": 1, "cpu": "2", "memory": "16Gi"},
        "limits": {"nvidia.com/gpu": 1},
    }


def test_resources_are_props() -> None:
    chart, _ = pool_chart(
        gpu_size="gpu-h100x8-640gb",
        gpus_per_replica=2,
        cpu_request=None,
        memory_request="64Gi",
        memory_limit="200Gi",
    )
    container = vllm_container(synth(chart))
    assert container["resources"] == {
        "requests": {"nvidia.com/gpu": 2, "memory": "64Gi"},
        "limits": {"nvidia.com/gpu": 2, "memory": "200Gi"},
    }
    assert container["args"][-2:] == ["--tensor-parallel-size", "2"]


def test_pods_run_on_the_gpu_pool_one_per_node() -> None:
    chart, _ = pool_chart()
    spec = pod(synth(chart))
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert spec["nodeSelector"] == {"doks.digitalocean.com/node-pool": GPU_POOL}
    assert spec["affinity"] == {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app": "vllm"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }


def test_anti_affinity_can_be_relaxed() -> None:
    chart, _ = pool_chart(anti_affinity="preferred")
    preferred = pod(synth(chart))["affinity"]["podAntiAffinity"]
    assert preferred == {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app": "vllm"}},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }
    chart, _ = pool_chart(anti_affinity="none")
    assert "affinity" not in pod(synth(chart))


def test_pods_are_locked_down_with_only_tmp_and_shm_writable() -> None:
    chart, _ = pool_chart()
    spec = pod(synth(chart))
    assert spec["securityContext"] == POD_SECURITY_CONTEXT
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    locked = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    for container in spec["initContainers"] + spec["containers"]:
        assert container["securityContext"] == locked, container["name"]
    assert vllm_container(synth(chart))["volumeMounts"] == [
        {"name": "models", "mountPath": "/models", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "shm", "mountPath": "/dev/shm"},
    ]
    assert spec["volumes"] == [
        {
            "name": "models",
            "persistentVolumeClaim": {"claimName": "vllm-models-pvc", "readOnly": True},
        },
        {"name": "tmp", "emptyDir": {}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
    ]


def test_shm_size_is_a_prop() -> None:
    chart, _ = pool_chart(shm_size="32Gi")
    shm = pod(synth(chart))["volumes"][2]
    assert shm == {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "32Gi"}}


def test_probes_use_the_seeds_timings_on_health() -> None:
    chart, _ = pool_chart()
    container = vllm_container(synth(chart))
    health = {"path": "/health", "port": "http"}
    assert container["startupProbe"] == {
        "httpGet": health,
        "initialDelaySeconds": 120,
        "periodSeconds": 10,
        "failureThreshold": 12,
    }
    assert container["readinessProbe"] == {"httpGet": health, "periodSeconds": 5}
    assert container["livenessProbe"] == {
        "httpGet": health,
        "periodSeconds": 10,
        "failureThreshold": 3,
    }
    assert ProbeTimings().startup_budget_seconds == 240


def test_probe_timings_are_configurable() -> None:
    probes = ProbeTimings(
        startup_initial_delay_seconds=60,
        startup_period_seconds=15,
        startup_failure_threshold=40,
        readiness_period_seconds=3,
        liveness_period_seconds=20,
        liveness_failure_threshold=5,
    )
    chart, _ = pool_chart(probes=probes)
    container = vllm_container(synth(chart))
    assert container["startupProbe"]["initialDelaySeconds"] == 60
    assert container["startupProbe"]["periodSeconds"] == 15
    assert container["startupProbe"]["failureThreshold"] == 40
    assert container["readinessProbe"]["periodSeconds"] == 3
    assert container["livenessProbe"]["periodSeconds"] == 20
    assert container["livenessProbe"]["failureThreshold"] == 5


def test_termination_drains_within_the_grace_period() -> None:
    chart, pool = pool_chart()
    objs = synth(chart)
    assert pod(objs)["terminationGracePeriodSeconds"] == 70
    container = vllm_container(objs)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    assert command[2] == script_text(PRESTOP_DRAIN)
    # name, port, deadline ((grace - margin) // 2), settle (the seed's sleep 5)
    assert command[3:] == ["prestop-drain", "8000", "32", "5"]
    script = command[2]
    assert "vllm:num_requests_running" in script
    assert "vllm:num_requests_waiting" in script
    assert "--max-time" in script
    assert "http://127.0.0.1:${port}/metrics" in script
    # vLLM's own drain after SIGTERM gets what the hook and the margin leave of the grace.
    assert container["args"][container["args"].index("--shutdown-timeout") + 1] == "33"
    assert (pool.drain_deadline_seconds, pool.shutdown_timeout_seconds) == (32, 33)
    assert 32 + 33 + SHUTDOWN_MARGIN_SECONDS <= 70


def test_drain_timings_follow_the_grace_period_or_are_set() -> None:
    chart, pool = pool_chart(termination_grace_period_seconds=180)
    objs = synth(chart)
    container = vllm_container(objs)
    assert pod(objs)["terminationGracePeriodSeconds"] == 180
    assert container["lifecycle"]["preStop"]["exec"]["command"][5] == "87"
    assert container["args"][container["args"].index("--shutdown-timeout") + 1] == "88"
    assert (pool.drain_deadline_seconds, pool.shutdown_timeout_seconds) == (87, 88)
    chart, _ = pool_chart(
        termination_grace_period_seconds=80,
        drain_deadline_seconds=30,
        shutdown_timeout_seconds=45,
        prestop_settle_seconds=2,
    )
    container = vllm_container(synth(chart))
    assert container["lifecycle"]["preStop"]["exec"]["command"][4:] == ["8000", "30", "2"]
    assert container["args"][container["args"].index("--shutdown-timeout") + 1] == "45"


def test_pods_wait_for_their_model_instead_of_crash_looping() -> None:
    chart, pool = pool_chart()
    spec = pod(synth(chart))
    (init,) = spec["initContainers"]
    assert init["name"] == "wait-for-model"
    assert init["image"] == DEFAULT_VLLM_IMAGE
    assert init["imagePullPolicy"] == "IfNotPresent"
    assert init["command"][:3] == ["/bin/sh", "-c", script_text(WAIT_FOR_MODEL)]
    assert init["command"][3:] == [
        "wait-for-model",
        "/models/Qwen2.5-0.5B-Instruct/.vllm-doks-verified",
        "10",
        "the download of Qwen/Qwen2.5-0.5B-Instruct (kubectl -n vllm get jobs -l "
        "app=model-download)",
    ]
    assert init["command"][4] == pool.model.marker_path
    assert init["volumeMounts"] == [{"name": "models", "mountPath": "/models", "readOnly": True}]
    # Small but bounded: it only runs sh and sleep.
    assert init["resources"] == {
        "requests": {"cpu": "10m", "memory": "16Mi"},
        "limits": {"cpu": "100m", "memory": "64Mi"},
    }


def test_service_is_cluster_ip_on_the_named_port() -> None:
    chart, _ = pool_chart()
    service = find(synth(chart), "Service", "vllm")
    assert service["spec"] == {
        "type": "ClusterIP",
        "selector": {"app": "vllm"},
        "ports": [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}],
    }


def test_disruption_budget_allows_one_pod_down() -> None:
    chart, _ = pool_chart()
    pdb = find(synth(chart), "PodDisruptionBudget", "vllm-pdb")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "vllm"}}}


def test_a_renamed_pool_keeps_the_container_name_for_kubectl_set_image() -> None:
    chart, pool = pool_chart(name="qwen")
    objs = synth(chart)
    assert vllm_container(objs, "qwen")["name"] == "vllm"
    assert find(objs, "Service", "qwen")["spec"]["selector"] == {"app": "qwen"}
    find(objs, "PodDisruptionBudget", "qwen-pdb")
    assert pool.selector_labels == {"app": "qwen"}


def test_no_cdk8s_plus_defaults_leak_into_workloads() -> None:
    """cdk8s-plus would add cpu/memory limits, a TCP startup probe, imagePullPolicy Always and
    fsGroupChangePolicy Always; none of them may appear."""
    chart, _ = pool_chart()
    objs = synth(chart)
    for obj in objs:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        spec = obj["spec"]["template"]["spec"]
        assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert container["imagePullPolicy"] == "IfNotPresent"
            assert "tcpSocket" not in container.get("startupProbe", {})
    # The only limits are the ones the constructs choose (not cdk8s-plus's 1500m / 2048Mi).
    assert vllm_container(objs)["resources"]["limits"] == {"nvidia.com/gpu": 1}


def test_pool_props_are_validated_all_at_once() -> None:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    bad = VllmWorkerPoolProps(
        model=model,
        gpu_node_pool_name="GPU pool",
        replicas=-1,
        quantization="FP 8",
        image="vllm/vllm-openai",
        name="9vllm",
        port=0,
        probes=ProbeTimings(startup_failure_threshold=0),
        termination_grace_period_seconds=30,
        drain_deadline_seconds=40,
        shm_size="lots",
        gpus_per_replica=0,
        memory_limit="200 GB",
        anti_affinity="sometimes",  # type: ignore[arg-type]
        hf_token_secret_key="HF TOKEN",
    )
    with pytest.raises(ValidationError) as err:
        VllmWorkerPool(chart, "Workers", bad)
    assert err.value.where == "test/Workers"
    fields = {p.field for p in err.value.problems}
    assert fields == {
        "gpu_node_pool_name",
        "replicas",
        "quantization",
        "image",
        "name",
        "port",
        "probes.startup_failure_threshold",
        "termination_grace_period_seconds",
        "shm_size",
        "gpus_per_replica",
        "memory_limit",
        "anti_affinity",
        "hf_token_secret_key",
    }
    message = str(err.value)
    assert "image: got 'vllm/vllm-openai'; must be a pinned image reference" in message
    assert (
        "termination_grace_period_seconds: got 30; must be at least drain_deadline_seconds (40)"
        in message
    )


def test_pool_needs_a_model_download() -> None:
    chart = new_chart()
    with pytest.raises(ValidationError, match="must be a ModelDownload"):
        VllmWorkerPool(chart, "W", VllmWorkerPoolProps(model="Qwen", gpu_node_pool_name="p"))  # type: ignore[arg-type]


# --- GatewayEndpoint ----------------------------------------------------------------------


def test_gateway_listens_for_http_on_80_with_cilium() -> None:
    chart = new_chart()
    endpoint = GatewayEndpoint(chart, "Gateway")
    (gateway,) = synth(chart)
    assert gateway["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway["kind"] == "Gateway"
    assert gateway["metadata"] == {"name": "vllm-gateway", "namespace": "vllm"}
    assert gateway["spec"] == {
        "gatewayClassName": "cilium",
        "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
    }
    assert (endpoint.gateway_name, endpoint.namespace, endpoint.http_port) == (
        "vllm-gateway",
        "vllm",
        80,
    )


def test_gateway_props() -> None:
    chart = new_chart()
    GatewayEndpoint(
        chart,
        "Gateway",
        GatewayEndpointProps(
            name="edge", namespace="inference", gateway_class_name="envoy", http_port=8080
        ),
    )
    (gateway,) = synth(chart)
    assert gateway["metadata"] == {"name": "edge", "namespace": "inference"}
    assert gateway["spec"]["gatewayClassName"] == "envoy"
    assert gateway["spec"]["listeners"][0]["port"] == 8080


def test_route_to_sends_everything_to_the_pools_service() -> None:
    chart, pool = pool_chart()
    endpoint = GatewayEndpoint(chart, "Gateway")
    endpoint.route_to(pool)
    route = find(synth(chart), "HTTPRoute", "vllm-route")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"] == {"name": "vllm-route", "namespace": "vllm"}
    # Only /v1 by default: the part of vLLM its API key protects (tests/k8s/test_k8s_security.py).
    assert route["spec"] == {
        "parentRefs": [{"name": "vllm-gateway", "sectionName": "http"}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                "backendRefs": [{"name": "vllm", "port": 8000}],
            }
        ],
    }
    assert endpoint.route_names == ("vllm-route",)


def test_routes_to_several_pools_with_prefixes_names_and_timeouts() -> None:
    chart = new_chart()
    store = NfsModelStore(chart, "Models", STORE)
    qwen = VllmWorkerPool(
        chart, "Qwen", VllmWorkerPoolProps(model=store.add_model(QWEN), gpu_node_pool_name=GPU_POOL)
    )
    llama = VllmWorkerPool(
        chart,
        "Llama",
        VllmWorkerPoolProps(
            model=store.add_model(LLAMA), gpu_node_pool_name=GPU_POOL, name="llama", port=8001
        ),
    )
    endpoint = GatewayEndpoint(chart, "Gateway")
    endpoint.route_to(qwen)
    endpoint.route_to(llama, path_prefix="/llama", request_timeout="300s")
    endpoint.route_to(llama, path_prefix="/l", route_name="llama-short")
    objs = synth(chart)
    llama_route = find(objs, "HTTPRoute", "llama-route")
    (rule,) = llama_route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/llama"}}]
    assert rule["backendRefs"] == [{"name": "llama", "port": 8001}]
    assert rule["timeouts"] == {"request": "300s"}
    find(objs, "HTTPRoute", "llama-short")
    assert endpoint.route_names == ("vllm-route", "llama-route", "llama-short")


def test_route_to_is_validated() -> None:
    chart, pool = pool_chart()
    endpoint = GatewayEndpoint(chart, "Gateway")
    endpoint.route_to(pool)
    with pytest.raises(ValidationError, match="already taken"):
        endpoint.route_to(pool)
    with pytest.raises(ValidationError) as err:
        endpoint.route_to(pool, path_prefix="v1", route_name="x", request_timeout="forever")
    assert {p.field for p in err.value.problems} == {"path_prefix", "request_timeout"}
    other = GatewayEndpoint(chart, "Other", GatewayEndpointProps(name="other", namespace="edge"))
    with pytest.raises(ValidationError, match="accepts routes from its own namespace"):
        other.route_to(pool)
    with pytest.raises(ValidationError, match="must be a VllmWorkerPool"):
        endpoint.route_to("vllm")  # type: ignore[arg-type]


def test_gateway_props_are_validated() -> None:
    with pytest.raises(ValidationError) as err:
        GatewayEndpoint(new_chart(), "Gateway", GatewayEndpointProps(name="", http_port=70000))
    assert {p.field for p in err.value.problems} == {"name", "http_port"}


# --- helpers ------------------------------------------------------------------------------


def test_add_namespace_is_left_to_the_chart_owner() -> None:
    chart = new_chart()
    add_namespace(chart)
    add_namespace(chart, "relaxed", id="Relaxed", pod_security=None)
    assert synth(chart) == [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "vllm",
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "relaxed"}},
    ]
    with pytest.raises(ValidationError):
        add_namespace(new_chart(), "Not_Valid")
    with pytest.raises(ValidationError, match="restricted"):
        add_namespace(new_chart(), pod_security="strict")


def test_model_download_is_only_made_by_the_store() -> None:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    assert isinstance(model, ModelDownload)
    assert model.node.path == "test/Models/Model-model-download"
