"""The GPU catalogue wired into both layers: every size synthesizes a valid GPU node pool and
vLLM pool; AMD sizes get amd.com/gpu, the ROCm image, their own toleration and the cluster's
AMD plugins; multi-GPU sizes get tensor parallelism; unknown sizes list the known ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from cdktf import App
from conftest import validate_objects
from support import QWEN, SEED_TFVARS, STORE, Obj, k8s_app

from vllm_doks import ValidationError
from vllm_doks.cloud import (
    DoksClusterProps,
    GpuNodePoolProps,
    InfraProps,
    VllmInfraStack,
)
from vllm_doks.cloud.infra_props import gpu_node_pool_name
from vllm_doks.gpu_catalog import (
    CUDA_VLLM_IMAGE,
    GPU_SIZES,
    ROCM_VLLM_IMAGE,
    GpuSize,
    custom_gpu_size,
)
from vllm_doks.k8s import (
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
)

INFRA = SEED_TFVARS
AMD_FLAGS = ("amd_gpu_device_plugin", "amd_gpu_device_metrics_exporter_plugin")
SLUGS = sorted(GPU_SIZES)
AMD_SLUGS = [s for s in SLUGS if GPU_SIZES[s].vendor == "amd"]
B300 = custom_gpu_size("gpu-b300x1-288gb", vendor="nvidia", gpu_count=1, gpu_memory_gb=288)
MI325 = custom_gpu_size("gpu-mi325x8-2048gb", vendor="amd", gpu_count=8, gpu_memory_gb=256)


# -- helpers ---------------------------------------------------------------------------------


def k8s_objects(gpu_size: str | GpuSize, pool_name: str = "p-gpu", **pool: Any) -> list[Obj]:
    chart = cdk8s.Chart(k8s_app(), "test")
    add_namespace(chart)
    model = NfsModelStore(chart, "Models", STORE).add_model(
        QWEN, node_pool_name=pool_name, gpu_size=gpu_size
    )
    VllmWorkerPool(
        chart,
        "Workers",
        VllmWorkerPoolProps(model=model, gpu_node_pool_name=pool_name, gpu_size=gpu_size, **pool),
    )
    return list(cdk8s.Testing.synth(chart))


def find(objs: list[Obj], kind: str) -> Obj:
    (obj,) = [o for o in objs if o["kind"] == kind]
    return obj


def pod_spec(objs: list[Obj], kind: str) -> Obj:
    return find(objs, kind)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def vllm_container(objs: list[Obj]) -> Obj:
    (container,) = pod_spec(objs, "Deployment")["containers"]
    return container  # type: ignore[no-any-return]


def synth_infra(tmp_path: Path, **overrides: Any) -> Obj:
    app = App(outdir=str(tmp_path / "out"))
    VllmInfraStack(app, "vllm-infra", InfraProps(**{**INFRA, **overrides}))
    app.synth()
    doc: Obj = json.loads((tmp_path / "out" / "stacks" / "vllm-infra" / "cdk.tf.json").read_text())
    return doc


def cluster_of(doc: Obj) -> Obj:
    return doc["resource"]["digitalocean_kubernetes_cluster"]["vllm"]  # type: ignore[no-any-return]


def gpu_pool_of(doc: Obj) -> Obj:
    return doc["resource"]["digitalocean_kubernetes_node_pool"]["gpu"]  # type: ignore[no-any-return]


# -- every size, both layers -----------------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_every_size_synthesizes_valid_kubernetes_objects(slug: str) -> None:
    size = GPU_SIZES[slug]
    objs = k8s_objects(slug)
    assert validate_objects(objs) == []

    container = vllm_container(objs)
    gpus = {size.resource_name: size.gpu_count}
    assert container["resources"]["requests"][size.resource_name] == size.gpu_count
    assert container["resources"]["limits"] == gpus
    assert container["image"] == size.vllm_image
    assert pod_spec(objs, "Deployment")["initContainers"][0]["image"] == size.vllm_image
    toleration = [{"key": size.toleration_key, "operator": "Exists", "effect": "NoSchedule"}]
    assert pod_spec(objs, "Deployment")["tolerations"] == toleration
    job = pod_spec(objs, "Job")
    assert job["tolerations"] == toleration
    assert job["containers"][0]["image"] == size.vllm_image
    args = container["args"]
    if size.gpu_count > 1:
        assert args[args.index("--tensor-parallel-size") + 1] == str(size.gpu_count)
    else:
        assert "--tensor-parallel-size" not in args


@pytest.mark.parametrize("slug", SLUGS)
def test_every_size_gives_a_gpu_node_pool(tmp_path: Path, slug: str) -> None:
    props = InfraProps(**INFRA, gpu_size=slug)
    assert props.problems().items == []
    doc = synth_infra(tmp_path, gpu_size=slug)
    pool = gpu_pool_of(doc)
    assert pool["size"] == slug
    assert pool["name"] == props.gpu_node_pool_name
    assert pool["node_count"] == 2
    # A valid DOKS pool name, usable in the vLLM pods' node selector.
    assert validate_objects(k8s_objects(slug, pool_name=props.gpu_node_pool_name)) == []
    cluster = cluster_of(doc)
    if GPU_SIZES[slug].vendor == "amd":
        assert {k: cluster[k] for k in AMD_FLAGS} == {k: {"enabled": True} for k in AMD_FLAGS}
    else:
        assert not any(k in cluster for k in AMD_FLAGS)


def test_pool_names_keep_the_seeds_name_for_the_default_size() -> None:
    names = {slug: InfraProps(**INFRA, gpu_size=slug).gpu_node_pool_name for slug in SLUGS}
    assert names["gpu-h100x1-80gb"] == "my-vllm-gpu-h100"
    assert names["gpu-h100x8-640gb"] == "my-vllm-gpu-h100x8"
    assert names["gpu-mi300x1-192gb"] == "my-vllm-gpu-mi300x1"
    assert names["gpu-6000adax1-48gb"] == "my-vllm-gpu-6000adax1"
    assert len(set(names.values())) == len(SLUGS)
    assert InfraProps(**INFRA).gpu_node_pool_name == "my-vllm-gpu-h100"
    # The longest prefix allowed still gives valid pool names for every size.
    longest = "a" * 40
    for slug in SLUGS:
        assert InfraProps(**{**INFRA, "name_prefix": longest}, gpu_size=slug).problems().items == []
        assert len(gpu_node_pool_name(longest, slug)) <= 63


# -- AMD and multi-GPU specifics -------------------------------------------------------------


@pytest.mark.parametrize("slug", AMD_SLUGS)
def test_amd_pool_gets_amd_resources_rocm_image_and_no_nvidia_toleration(slug: str) -> None:
    size = GPU_SIZES[slug]
    objs = k8s_objects(slug)
    container = vllm_container(objs)
    assert container["resources"]["requests"]["amd.com/gpu"] == size.gpu_count
    assert container["resources"]["limits"] == {"amd.com/gpu": size.gpu_count}
    assert container["image"] == ROCM_VLLM_IMAGE
    for kind in ("Deployment", "Job"):
        assert pod_spec(objs, kind)["tolerations"] == [
            {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
        text = json.dumps(find(objs, kind))
        assert "nvidia.com" not in text
        assert CUDA_VLLM_IMAGE not in text
        assert "privileged" not in text


def test_x8_pool_gets_tensor_parallel_8_and_8_gpus() -> None:
    container = vllm_container(k8s_objects("gpu-h100x8-640gb"))
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 8}
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 8
    args = container["args"]
    assert args[
        args.index("--tensor-parallel-size") : args.index("--tensor-parallel-size") + 2
    ] == [
        "--tensor-parallel-size",
        "8",
    ]


def test_fewer_gpus_per_replica_than_the_node_has() -> None:
    container = vllm_container(
        k8s_objects("gpu-mi300x8-1536gb", gpus_per_replica=1, anti_affinity="none")
    )
    assert container["resources"]["limits"] == {"amd.com/gpu": 1}
    assert "--tensor-parallel-size" not in container["args"]


def test_more_gpus_per_replica_than_the_node_has_is_an_error() -> None:
    with pytest.raises(ValidationError) as info:
        k8s_objects("gpu-l40sx1-48gb", gpus_per_replica=2)
    assert "gpus_per_replica: got 2" in str(info.value)
    assert "1 GPU(s) of a gpu-l40sx1-48gb node" in str(info.value)


def test_an_explicit_image_wins_over_the_sizes() -> None:
    image = "rocm/vllm:rocm7.0.0_vllm_0.10.2_20251006"
    container = vllm_container(k8s_objects("gpu-mi300x1-192gb", image=image))
    assert container["image"] == image


def test_a_store_download_image_wins_over_the_sizes() -> None:
    chart = cdk8s.Chart(k8s_app(), "test")
    store = NfsModelStore(
        chart,
        "Models",
        NfsModelStoreProps(
            nfs_server="10.0.0.5",
            nfs_path="/x",
            capacity_gi=100,
            download_image="python:3.12-slim",
        ),
    )
    store.add_model(QWEN, node_pool_name="p", gpu_size="gpu-mi300x1-192gb")
    job = pod_spec(list(cdk8s.Testing.synth(chart)), "Job")
    assert job["containers"][0]["image"] == "python:3.12-slim"
    assert job["tolerations"][0]["key"] == "amd.com/gpu"


def test_download_without_a_node_pool_has_no_toleration() -> None:
    chart = cdk8s.Chart(k8s_app(), "test")
    NfsModelStore(chart, "Models", STORE).add_model(QWEN, gpu_size="gpu-mi300x1-192gb")
    job = pod_spec(list(cdk8s.Testing.synth(chart)), "Job")
    assert "tolerations" not in job
    assert job["containers"][0]["image"] == ROCM_VLLM_IMAGE


# -- unknown sizes and the escape hatch -----------------------------------------------------


def assert_lists_known_slugs(message: str) -> None:
    for slug in SLUGS:
        assert slug in message


def test_unknown_size_errors_list_the_known_slugs() -> None:
    (problem,) = InfraProps(**INFRA, gpu_size="gpu-b300x1-288gb").problems().items
    assert problem.field == "gpu_size"
    assert_lists_known_slugs(problem.expected)
    assert "custom_gpu_size=custom_gpu_size(" in problem.expected

    (problem,) = GpuNodePoolProps(cluster_id="c", name="p", size="gpu-nope").problems().items
    assert problem.field == "size"
    assert_lists_known_slugs(problem.expected)

    with pytest.raises(ValidationError) as info:
        k8s_objects("gpu-b300x1-288gb")
    assert "gpu_size: got 'gpu-b300x1-288gb'" in str(info.value)
    assert_lists_known_slugs(str(info.value))
    assert "gpu_size=custom_gpu_size(" in str(info.value)


def test_unknown_size_stops_the_cloud_stack(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        synth_infra(tmp_path, gpu_size="gpu-h100x2-160gb")
    assert_lists_known_slugs(str(info.value))


def test_custom_size_must_match_the_requested_slug() -> None:
    problems = InfraProps(**INFRA, gpu_size="gpu-h100x1-80gb", custom_gpu_size=B300).problems()
    (problem,) = problems.items
    assert problem.field == "custom_gpu_size"


def test_custom_nvidia_size_end_to_end(tmp_path: Path) -> None:
    props = InfraProps(**INFRA, gpu_size=B300.slug, custom_gpu_size=B300)
    assert props.problems().items == []
    assert props.gpu is B300
    doc = synth_infra(tmp_path, gpu_size=B300.slug, custom_gpu_size=B300)
    assert gpu_pool_of(doc)["size"] == "gpu-b300x1-288gb"
    assert gpu_pool_of(doc)["name"] == "my-vllm-gpu-b300x1"
    assert not any(k in cluster_of(doc) for k in AMD_FLAGS)

    objs = k8s_objects(B300, pool_name=props.gpu_node_pool_name)
    assert validate_objects(objs) == []
    container = vllm_container(objs)
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert container["image"] == CUDA_VLLM_IMAGE


def test_custom_amd_size_end_to_end(tmp_path: Path) -> None:
    doc = synth_infra(tmp_path, gpu_size=MI325.slug, custom_gpu_size=MI325)
    assert gpu_pool_of(doc)["name"] == "my-vllm-gpu-mi325x8"
    assert {k: cluster_of(doc)[k] for k in AMD_FLAGS} == {k: {"enabled": True} for k in AMD_FLAGS}

    objs = k8s_objects(MI325, pool_name="my-vllm-gpu-mi325x8")
    assert validate_objects(objs) == []
    container = vllm_container(objs)
    assert container["resources"]["limits"] == {"amd.com/gpu": 8}
    assert container["args"][container["args"].index("--tensor-parallel-size") + 1] == "8"
    assert container["image"] == ROCM_VLLM_IMAGE


def test_custom_slug_that_makes_a_bad_pool_name_is_an_error() -> None:
    odd = custom_gpu_size("gpu-B300x1_288GB", vendor="nvidia", gpu_count=1, gpu_memory_gb=288)
    (problem,) = InfraProps(**INFRA, gpu_size=odd.slug, custom_gpu_size=odd).problems().items
    assert problem.field == "gpu_size"
    assert "DNS-1123 label" in problem.expected


def test_cluster_gpu_flags_are_checked() -> None:
    props = DoksClusterProps(
        name="c",
        region="nyc2",
        vpc_id="v",
        cluster_subnet="172.16.0.0/20",
        service_subnet="192.168.0.0/22",
        gpu_cluster_flags={"nvidia_gpu_device_plugin": {"enabled": True}},
    )
    (problem,) = props.problems().items
    assert problem.field == "gpu_cluster_flags.nvidia_gpu_device_plugin"
