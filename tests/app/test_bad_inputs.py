"""Every bad input is refused at synth time: one clear message per problem naming the field,
the value and what would be valid; exit status 1; and no output file changes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from support import synthesized

from vllm_doks.cli import main

# (case id, flags, [fragments the error must contain])
CASES: list[tuple[str, list[str], list[str]]] = [
    (
        "prefix-uppercase",
        ["--name-prefix", "My_VLLM"],
        ["name_prefix: got 'My_VLLM'", "DNS-1123 label"],
    ),
    (
        "prefix-too-long",
        ["--name-prefix", "a" * 41],
        ["name_prefix: got 'aaaa", "at most 40 characters"],
    ),
    (
        "prefix-leading-digit",
        ["--name-prefix", "1vllm"],
        ["name_prefix: got '1vllm'", "must start with a letter"],
    ),
    ("prefix-empty", ["--name-prefix", ""], ["name_prefix: got ''"]),
    (
        "region-unsupported",
        ["--region", "fra1"],
        ["region: got 'fra1'", "atl1, nyc2", "allow_unlisted_region"],
    ),
    (
        "region-bad-slug",
        ["--region", "NYC 2", "--allow-unlisted-region", "true"],
        ["region: got 'NYC 2'", "region slug"],
    ),
    (
        "vpc-cidr-prefix",
        ["--vpc-cidr", "10.200.0.0/33"],
        ["vpc_cidr: got '10.200.0.0/33'", "IPv4 CIDR"],
    ),
    (
        "vpc-cidr-host-bits",
        ["--vpc-cidr", "10.200.0.1/22"],
        ["vpc_cidr: got '10.200.0.1/22'", "no host bits"],
    ),
    (
        "vpc-cidr-public",
        ["--vpc-cidr", "8.8.0.0/16"],
        ["vpc_cidr: got '8.8.0.0/16'", "private range"],
    ),
    (
        "cluster-overlaps-vpc",
        ["--doks-cluster-subnet", "10.200.0.0/20"],
        ["doks_cluster_subnet: got '10.200.0.0/20'", "must not overlap vpc_cidr"],
    ),
    (
        "service-overlaps-cluster",
        ["--doks-service-subnet", "172.16.4.0/22"],
        ["doks_service_subnet: got '172.16.4.0/22'", "must not overlap doks_cluster_subnet"],
    ),
    (
        "service-not-cidr",
        ["--doks-service-subnet", "services"],
        ["doks_service_subnet: got 'services'", "IPv4 CIDR"],
    ),
    ("nfs-too-small", ["--nfs-size-gb", "10"], ["nfs_size_gb: got 10", "at least 50"]),
    ("nfs-not-number", ["--nfs-size-gb", "lots"], ["nfs_size_gb: got 'lots'", "whole number"]),
    (
        "gpu-size-unknown",
        ["--gpu-size", "gpu-a100x1-80gb"],
        ["gpu_size: got 'gpu-a100x1-80gb'", "gpu-h100x1-80gb", "custom_gpu_size"],
    ),
    ("gpu-nodes-negative", ["--gpu-node-count", "-1"], ["gpu_node_count: got -1", "at least 0"]),
    (
        "mgmt-min-zero",
        ["--management-node-pool-min-nodes", "0"],
        ["management_node_pool_min_nodes: got 0", "at least 1"],
    ),
    (
        "mgmt-max-below-min",
        ["--management-node-pool-min-nodes", "3", "--management-node-pool-max-nodes", "2"],
        ["management_node_pool_max_nodes: got 2", "at least management_node_pool_min_nodes (3)"],
    ),
    ("replicas-zero", ["--replicas", "0"], ["replicas: got 0", "at least 1"]),
    (
        "replicas-exceed-gpu-nodes",
        ["--replicas", "3", "--gpu-node-count", "2"],
        ["replicas: got 3", "at most gpu_node_count (2)", "anti-affinity"],
    ),
    (
        "gpu-autoscale-max-below-count",
        ["--gpu-autoscale-max-nodes", "1"],
        ["gpu_autoscale_max_nodes: got 1", "at least gpu_node_count (2)"],
    ),
    (
        "gpu-autoscale-max-negative",
        ["--gpu-autoscale-max-nodes", "-1"],
        ["gpu_autoscale_max_nodes: got -1", "at least 1"],
    ),
    (
        "autoscaling-without-max",
        ["--autoscaling", "true"],
        ["autoscaling_max_replicas: got 0", "at least 1"],
    ),
    (
        "autoscaling-max-exceeds-gpu-nodes",
        ["--autoscaling", "true", "--autoscaling-max-replicas", "3"],
        [
            "autoscaling_max_replicas: got 3",
            "at most gpu_node_count (2)",
            "gpu_autoscale_max_nodes",
        ],
    ),
    (
        "autoscaling-max-exceeds-gpu-pool-max",
        [
            "--autoscaling",
            "true",
            "--autoscaling-max-replicas",
            "5",
            "--gpu-autoscale-max-nodes",
            "4",
        ],
        ["autoscaling_max_replicas: got 5", "at most gpu_autoscale_max_nodes (4)"],
    ),
    (
        "autoscaling-max-below-min",
        [
            "--autoscaling",
            "true",
            "--autoscaling-min-replicas",
            "2",
            "--autoscaling-max-replicas",
            "1",
        ],
        ["autoscaling_max_replicas: got 1", "at least autoscaling_min_replicas (2)"],
    ),
    (
        "autoscaling-min-negative",
        [
            "--autoscaling",
            "true",
            "--autoscaling-min-replicas",
            "-1",
            "--autoscaling-max-replicas",
            "2",
        ],
        ["autoscaling_min_replicas: got -1", "at least 1"],
    ),
    (
        "autoscaling-replicas-below-min",
        [
            "--autoscaling",
            "true",
            "--autoscaling-min-replicas",
            "2",
            "--autoscaling-max-replicas",
            "2",
        ],
        ["replicas: got 1", "between autoscaling_min_replicas (2) and autoscaling_max_replicas"],
    ),
    (
        "prometheus-url",
        [
            "--autoscaling",
            "true",
            "--autoscaling-max-replicas",
            "2",
            "--prometheus-server-address",
            "prometheus:9090",
        ],
        ["prometheus_server_address: got 'prometheus:9090'", "http(s) URL"],
    ),
    (
        "prometheus-namespace",
        ["--pod-monitor", "true", "--prometheus-namespace", "Monitoring"],
        ["prometheus_namespace: got 'Monitoring'", "DNS-1123 label"],
    ),
    (
        "prometheus-release",
        ["--pod-monitor", "true", "--prometheus-release", "kube prometheus"],
        ["prometheus_release: got 'kube prometheus'", "Kubernetes label value"],
    ),
    (
        "amd-size-cuda-image",
        ["--gpu-size", "gpu-mi300x1-192gb", "--vllm-image", "vllm/vllm-openai:v0.18.0"],
        ["image: got 'vllm/vllm-openai:v0.18.0'", "NVIDIA build, but gpu_size"],
    ),
    (
        "dashboard-not-bool",
        ["--grafana-dashboard", "maybe"],
        ["grafana_dashboard: got 'maybe'", "true or false"],
    ),
    (
        "model-no-org",
        ["--model-id", "Qwen2.5-0.5B-Instruct"],
        ["model_id: got 'Qwen2.5-0.5B-Instruct'", "'organization/name'"],
    ),
    (
        "model-space",
        ["--model-id", "Qwen/Qwen 2.5"],
        ["model_id: got 'Qwen/Qwen 2.5'", "Hugging Face model id"],
    ),
    ("model-two-slashes", ["--model-id", "a/b/c"], ["model_id: got 'a/b/c'", "at most one '/'"]),
    ("quantization-unknown", ["--quantization", "fp7"], ["quantization: got 'fp7'", "fp8"]),
    (
        "image-latest",
        ["--vllm-image", "vllm/vllm-openai:latest"],
        ["vllm_image: got 'vllm/vllm-openai:latest'", "other than 'latest'"],
    ),
    (
        "image-untagged",
        ["--vllm-image", "vllm/vllm-openai"],
        ["vllm_image: got 'vllm/vllm-openai'", "pinned image reference"],
    ),
    ("namespace-uppercase", ["--namespace", "VLLM"], ["namespace: got 'VLLM'", "DNS-1123 label"]),
    (
        "namespace-too-long",
        ["--namespace", "n" * 64],
        ["namespace: got 'nnnn", "at most 63 characters"],
    ),
    (
        "gateway-class",
        ["--gateway-class", "Cilium!"],
        ["gateway_class: got 'Cilium!'", "DNS-1123 subdomain"],
    ),
    (
        "hf-secret-name",
        ["--hf-token-secret", "Bad_Secret"],
        ["hf_token_secret: got 'Bad_Secret'", "DNS-1123 subdomain"],
    ),
    (
        "bool-not-bool",
        ["--doks-control-plane-ha", "maybe"],
        ["doks_control_plane_ha: got 'maybe'", "true or false"],
    ),
    ("state-bucket", ["--state-bucket", "Bad_Bucket"], ["state_backend.bucket: got 'Bad_Bucket'"]),
    (
        "state-region",
        ["--state-bucket", "ok-bucket", "--state-spaces-region", "NYC-3"],
        ["state_backend.spaces_region: got 'NYC-3'", "Spaces region slug"],
    ),
    (
        "state-key",
        ["--state-bucket", "ok-bucket", "--state-key", "/abs/key"],
        ["state_backend.key: got '/abs/key'", "without a leading '/'"],
    ),
]


@pytest.fixture(scope="module")
def previous_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good synth whose files every bad run must leave alone (each test changes a copy)."""
    return synthesized(tmp_path_factory)


def outdir_flags(base: Path) -> list[str]:
    return ["--cloud-outdir", str(base / "cdktf.out"), "--k8s-outdir", str(base / "dist")]


def digest(base: Path) -> dict[str, str]:
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def test_there_are_at_least_30_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(("flags", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_nothing_is_written(
    previous_output: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    fragments: list[str],
) -> None:
    work = tmp_path / "work"
    shutil.copytree(previous_output, work)
    before = digest(work)
    rc = main(["synth", *outdir_flags(work), *flags], env={})
    err = capsys.readouterr().err
    assert rc == 1
    for fragment in fragments:
        assert fragment in err, err
    assert "nothing was written; previous output is unchanged." in err
    assert digest(work) == before
    assert sorted(p.name for p in work.iterdir()) == ["cdktf.out", "dist"]


def test_all_problems_of_a_config_are_reported_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "name_prefix: Bad_Prefix\nregion: fra1\nvpc_cidr: 8.8.0.0/16\nnfs_size_gb: 1\n"
        "replicas: 0\nmodel_id: nothing\nnamespace: Not-OK\n"
    )
    assert main(["synth", "--config", str(cfg), *outdir_flags(tmp_path)], env={}) == 1
    err = capsys.readouterr().err
    for field in (
        "name_prefix",
        "region",
        "vpc_cidr",
        "nfs_size_gb",
        "replicas",
        "model_id",
        "namespace",
    ):
        assert f"  - {field}: got" in err, field
    assert "(7 problem(s))" in err
    assert not (tmp_path / "cdktf.out").exists() and not (tmp_path / "dist").exists()


def test_bad_infra_outputs_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"vllm-infra": {"nfs_host": "10.0.0.1"}}))
    rc = main(
        ["synth", "--layer", "k8s", "--infra-outputs", str(outputs), *outdir_flags(tmp_path)],
        env={},
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "nfs_mount_path: got None; missing from" in err
    assert not (tmp_path / "dist").exists()
