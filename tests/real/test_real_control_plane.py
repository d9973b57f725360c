"""The test control plane itself: ready, CRDs Established, fake DOKS nodes kept Ready."""

from __future__ import annotations

import json

import pytest
from conftest import envtest_crd_files

from vllm_doks.rehearsal import ControlPlane

pytestmark = pytest.mark.real


def test_control_plane_serves_the_crds_the_output_targets(control_plane: ControlPlane) -> None:
    names = set(control_plane.kubectl("get", "crd", "-o", "name").stdout.split())
    for kind in (
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "inferencepools.inference.networking.k8s.io",
        "scaledobjects.keda.sh",
        "podmonitors.monitoring.coreos.com",
        "ciliumnetworkpolicies.cilium.io",
    ):
        assert f"customresourcedefinition.apiextensions.k8s.io/{kind}" in names
    assert len(envtest_crd_files()) >= 5
    assert len(control_plane.pids) == 4


def test_added_node_is_ready_with_a_lease(control_plane: ControlPlane) -> None:
    control_plane.add_node(
        "cp-selftest",
        labels={"doks.digitalocean.com/node-pool": "selftest"},
        taints=[{"key": "selftest", "value": "true", "effect": "NoSchedule"}],
        capacity={"cpu": "2", "memory": "4Gi", "pods": "10"},
    )
    try:
        node = json.loads(control_plane.kubectl("get", "node", "cp-selftest", "-o", "json").stdout)
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
        assert node["status"]["allocatable"]["cpu"] == "2"
        assert node["spec"]["taints"][0]["key"] == "selftest"
        lease = control_plane.kubectl("get", "lease", "-n", "kube-node-lease", "cp-selftest")
        assert lease.returncode == 0
    finally:
        control_plane.remove_node("cp-selftest")
