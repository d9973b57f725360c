"""Two instances side by side in one real cluster: every cluster-scoped name is unique per
instance, and each claim binds to its own volume (the real PersistentVolume binder decides)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from realtier import SynthCache, apply, cleanup, get_json, prepare_namespace, wait_for

from vllm_doks.rehearsal import ControlPlane

pytestmark = pytest.mark.real

#: Two instances as the README describes them: own namespace, own name prefix, own NFS share.
INSTANCES: dict[str, dict[str, Any]] = {
    "prod": {"namespace": "inst-prod", "name_prefix": "prod", "nfs_path": "/1111111/prod"},
    "staging": {"namespace": "inst-staging", "name_prefix": "staging", "nfs_path": "/2222222/stg"},
}


@pytest.fixture(scope="module")
def instances(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    synths = SynthCache(tmp_path_factory.mktemp("real-instances"))
    built = {name: synths.k8s(**inputs) for name, inputs in INSTANCES.items()}
    for inputs in INSTANCES.values():
        prepare_namespace(control_plane, inputs["namespace"])
    yield built
    pvs = tuple(r.name for s in built.values() for r in s.objects if r.kind == "PersistentVolume")
    cleanup(control_plane, *(i["namespace"] for i in INSTANCES.values()), pvs=pvs)


def test_two_instances_have_distinct_cluster_scoped_names(instances: dict[str, Any]) -> None:
    cluster_scoped = {
        name: {(r.kind, r.name) for r in s.objects if not r.namespace}
        for name, s in instances.items()
    }
    assert cluster_scoped["prod"] and cluster_scoped["staging"]
    assert not cluster_scoped["prod"] & cluster_scoped["staging"]


def test_each_claim_binds_to_its_own_volume(
    control_plane: ControlPlane, instances: dict[str, Any]
) -> None:
    for s in instances.values():
        apply(control_plane, s.dist)
    for name, inputs in INSTANCES.items():
        ns = inputs["namespace"]
        (pv_name,) = [r.name for r in instances[name].objects if r.kind == "PersistentVolume"]

        def bound(ns: str = ns) -> Any:
            pvc = get_json(control_plane, "pvc", "vllm-models-pvc", "-n", ns)
            return pvc if pvc.get("status", {}).get("phase") == "Bound" else None

        pvc = wait_for(f"the claim of {name} to bind", bound)
        assert pvc["spec"]["volumeName"] == pv_name
        pv = get_json(control_plane, "pv", pv_name)
        assert pv["spec"]["claimRef"]["namespace"] == ns
        assert pv["spec"]["nfs"]["path"] == inputs["nfs_path"]
        print(f"[real] instance {name}: claim {ns}/vllm-models-pvc Bound to {pv_name}")
