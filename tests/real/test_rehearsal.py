"""Deploy rehearsal with real components: the real cdktf CLI, Terraform and DigitalOcean provider
2.99.1 (offline, from ../shared/terraform-mirror) against the simulated DigitalOcean API, then
the Kubernetes layer applied to a real control plane whose nodes mirror the simulated pools.

Skips with the reason when Terraform, the mirror or the cdktf CLI is missing; the Kubernetes
step also needs the control plane (KUBEBUILDER_ASSETS, see conftest.py).
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from realtier import synth_and_validate

from vllm_doks.cloud.infra_props import OUTPUT_DESCRIPTIONS
from vllm_doks.rehearsal.fake_digitalocean import FakeDigitalOcean
from vllm_doks.rehearsal.runner import (
    CONFIGURATIONS,
    RehearsalError,
    StackProject,
    Toolchain,
    rehearse,
)

pytestmark = pytest.mark.real


@pytest.fixture(scope="session")
def fake_do() -> Iterator[FakeDigitalOcean]:
    """One simulated API for the session; each configuration uses its own names and ranges.
    Four sizes per page so that the provider pages through the catalogue."""
    with FakeDigitalOcean(ready_after=1.0, max_per_page=4) as api:
        yield api


def optional_control_plane(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("control_plane")
    except pytest.skip.Exception:
        return None


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_rehearse_documented_configuration(
    name: str,
    toolchain: Toolchain,
    fake_do: FakeDigitalOcean,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    config = {**CONFIGURATIONS[name], "namespace": f"rehearse-{name}"}
    plane = optional_control_plane(request)
    report = rehearse(
        toolchain, tmp_path, name, config, fake_do, plane=plane, drift=(name == "default")
    )

    # Deployed for real by the provider, idempotent, and gone after destroy.
    gpu_nodes = config.get("gpu_node_count", 2)
    assert report.created == {
        "vpcs": 1,
        "kubernetes_clusters": 1,
        "node_pools": 2,
        "nodes": config.get("management_node_pool_min_nodes", 2) + gpu_nodes,
        "nfs_shares": 1,
    }
    assert report.replan is not None and report.replan.no_changes, report.replan.text
    assert report.left_after_destroy == {}

    # The outputs file `cdktf deploy --outputs-file` wrote: the seed's 11 outputs and the GPU
    # pool's size, real values.
    assert set(report.outputs) == set(OUTPUT_DESCRIPTIONS)
    vpc = ipaddress.ip_network(config.get("vpc_cidr", "10.200.0.0/22"))
    assert ipaddress.ip_address(report.outputs["nfs_host"]) in vpc
    assert report.outputs["nfs_mount_path"].startswith("/")
    assert str(report.outputs["gpu_node_pool_name"]).startswith(
        config.get("name_prefix", "my-vllm") + "-gpu-"
    )

    if name == "default":
        # Catalogue changes at DigitalOcean must not change the deployed cluster...
        assert set(report.drift) == {
            "cheaper 2 vCPU / 4 GB size",
            "price change",
            "new Kubernetes release",
        }
        for what, plan in report.drift.items():
            assert plan.no_changes, f"{what}: {plan.changes}"
        # ...which the check can tell: without the pins, the cheaper size replaces it.
        assert report.control is not None
        assert report.control.changes.get("digitalocean_kubernetes_cluster.vllm") == [
            "delete",
            "create",
        ]

    if plane is None:
        pytest.skip("cloud rehearsal passed; no control plane for the Kubernetes step")
    pool = str(report.outputs["gpu_node_pool_name"])
    assert "<pending>" not in report.pods_per_node, report.pods_per_node
    # Besides the download and smoke-test Jobs' pods, every pod is a vLLM replica: each on its
    # own node of the GPU pool (required anti-affinity, the GPU taint tolerated, GPU capacity
    # of the size).
    replicas = {
        node: [p for p in pods if not p.startswith(("model-download", "smoke-test"))]
        for node, pods in report.pods_per_node.items()
    }
    replica_nodes = [node for node, pods in replicas.items() if pods]
    assert sum(len(pods) for pods in replicas.values()) == config.get("replicas", 1)
    assert all(len(replicas[node]) == 1 for node in replica_nodes)
    assert all(node.startswith(pool + "-") for node in report.pods_per_node), report.pods_per_node


def test_a_plan_the_real_api_refuses_fails_the_rehearsal(
    toolchain: Toolchain, fake_do: FakeDigitalOcean, tmp_path: Path
) -> None:
    # Validates (fra1 is let through by allow_unlisted_region) but cannot apply: no Managed
    # NFS there. The failed deploy is destroyed again.
    config = {
        "name_prefix": "rh-fra1",
        "region": "fra1",
        "allow_unlisted_region": True,
        "vpc_cidr": "10.210.0.0/22",
        "doks_cluster_subnet": "172.17.0.0/20",
        "doks_service_subnet": "192.168.40.0/22",
    }
    project = StackProject(toolchain, tmp_path / "fra1", config, fake_do)
    try:
        with pytest.raises(RehearsalError, match="Managed NFS is not offered in 'fra1'"):
            project.deploy()
    finally:
        project.destroy()
    assert not any(v["name"] == "rh-fra1" for v in fake_do.vpcs.values())


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_terraform_validate_with_real_provider(
    name: str, toolchain: Toolchain, tmp_path: Path
) -> None:
    verdict = synth_and_validate(toolchain, tmp_path, CONFIGURATIONS[name], "vllm-infra")
    assert verdict["valid"] is True, verdict["diagnostics"]


def test_stack_two_via_terraform_validates_with_real_providers(
    toolchain: Toolchain, tmp_path: Path
) -> None:
    if not (toolchain.mirror / "registry.terraform.io" / "hashicorp" / "kubernetes").is_dir():
        pytest.skip(
            "Stack 2 via Terraform (vllm-kubernetes) needs the hashicorp/kubernetes provider, "
            "which ../shared/terraform-mirror does not hold: neither validated nor rehearsed "
            "offline"
        )
    verdict = synth_and_validate(
        toolchain, tmp_path, {"kubernetes_via_terraform": True}, "vllm-kubernetes"
    )
    assert verdict["valid"] is True, verdict["diagnostics"]


def test_readme_rehearsal_commands_run_as_written(toolchain: Toolchain, tmp_path: Path) -> None:
    """The README's two rehearsal commands: `make rehearse` runs the module for every documented
    configuration (the cycles themselves are the tests above), and
    `.venv/bin/python -m vllm_doks.rehearsal --config vllm.yaml` rehearses the README's own
    example configuration end to end, exit 0 and a report naming it."""
    readme = (REPO / "README.md").read_text()
    own = ".venv/bin/python -m vllm_doks.rehearsal --config vllm.yaml"
    assert "make rehearse" in readme and own in readme
    # --no-print-directory: under `make test` the parent's MAKEFLAGS add "Entering directory".
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "rehearse"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert dry.stdout.rstrip().splitlines()[-1].endswith("-m vllm_doks.rehearsal"), dry.stdout

    example = readme.split("```yaml\n# vllm.yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "vllm.yaml").write_text(example)
    argv = own.split()
    argv[0] = str(REPO / argv[0])
    done = subprocess.run(
        [*argv, "--repo", str(REPO)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vllm" in done.stdout and "FAILED" not in done.stdout, done.stdout
