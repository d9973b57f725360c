"""Helpers of the real tier (tests/real/ and the ``real``-marked tests of every folder):
synthesize as the app does, apply as the README tells users (``kubectl apply -f dist/``), look
at what the cluster did, and validate Terraform with the real provider.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cdk8s
from conftest import REPO

from vllm_doks.cli import synth
from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.rehearsal import ControlPlane
from vllm_doks.rehearsal.runner import Toolchain
from vllm_doks.removed_objects import ObjectRef, manifest_objects, removed_objects

#: Kinds the cluster's controllers create from ours; never in dist/, never ours to delete.
CONTROLLER_OWNED = frozenset({"Pod", "ReplicaSet", "EndpointSlice", "Endpoints", "Event"})

#: ConfigMaps kube-controller-manager publishes into every namespace (root-ca-cert-publisher,
#: service-ca-cert-publisher).
CONTROLLER_CONFIGMAPS = frozenset({"kube-root-ca.crt", "openshift-service-ca.crt"})


@dataclasses.dataclass
class Synth:
    """One synthesized dist/ and what the app printed."""

    dist: Path
    log: list[str]
    outputs: dict[str, Any]

    @property
    def objects(self) -> set[ObjectRef]:
        return manifest_objects(self.dist)


class SynthCache:
    """Synthesizes each configuration once per session (the app's own synth, in-process)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: dict[str, Synth] = {}

    def k8s(self, nfs_path: str = "/1234567/models", **inputs: object) -> Synth:
        key = json.dumps({"nfs_path": nfs_path, **inputs}, sort_keys=True, default=str)
        if key not in self._done:
            config = load_config(None, env={}, overrides=inputs)
            infra = dataclasses.replace(
                InfraOutputs.examples_for(config),
                nfs_host="10.200.0.5",
                nfs_mount_path=nfs_path,
                examples=(),
            )
            dist = self.root / f"dist-{len(self._done)}"
            log: list[str] = []
            report = synth(config, ["k8s"], {"k8s": dist}, infra, log=log.append, parallel=False)
            self._done[key] = Synth(dist, log, report.get("outputs", {}))
        return self._done[key]

    def chart(self, name: str, build: Callable[[cdk8s.App], None]) -> Synth:
        """A chart built with the Python API (``build(app)``), written as cdk8s writes it."""
        if name not in self._done:
            dist = self.root / f"chart-{name}"
            app = cdk8s.App(outdir=str(dist), output_file_extension=".yaml")
            build(app)
            app.synth()
            self._done[name] = Synth(dist, [], {})
        return self._done[name]


def prepare_namespace(cp: ControlPlane, namespace: str, *, api_key: bool = True) -> None:
    """README step 4 before the apply: the namespace and the API key Secret."""
    cp.kubectl("create", "namespace", namespace, "--save-config")
    if api_key:
        cp.kubectl(
            "-n", namespace, "create", "secret", "generic", "vllm-api-key",
            "--from-literal=VLLM_API_KEY=test-key-not-a-secret",
        )  # fmt: skip


def apply(cp: ControlPlane, dist: Path) -> tuple[int, str]:
    """``kubectl apply -f dist/``; fails on an error or any warning. Returns the number of
    objects applied and kubectl's output."""
    proc = cp.kubectl("apply", "-f", str(dist), check=False)
    assert proc.returncode == 0, f"kubectl apply -f {dist.name}/ failed:\n{proc.stderr}"
    assert "Warning:" not in proc.stderr, f"admission warnings:\n{proc.stderr}"
    applied = [line for line in proc.stdout.splitlines() if line.strip()]
    return len(applied), proc.stdout


def delete_removed(cp: ControlPlane, old: Path, new: Path) -> list[ObjectRef]:
    """Run the ``kubectl delete`` commands the synth prints for what ``new`` dropped."""
    gone = removed_objects(old, new)
    for ref in gone:
        args = shlex.split(ref.delete_command())
        assert args[0] == "kubectl"
        cp.kubectl(*args[1:])
    return gone


def live_objects(cp: ControlPlane, namespace: str, kinds: set[tuple[str, str]]) -> set[ObjectRef]:
    """Live objects of ``kinds`` ((apiVersion, kind)) in ``namespace``, except those the
    cluster's controllers made (owned ones) or made by themselves (default ServiceAccount,
    root CA ConfigMap) and the API key Secret of README step 4."""
    resources = sorted({ObjectRef(a, k, "", "x").resource for a, k in kinds})
    proc = cp.kubectl("get", ",".join(resources), "-n", namespace, "-o", "json")
    refs: set[ObjectRef] = set()
    for item in json.loads(proc.stdout)["items"]:
        meta = item["metadata"]
        if meta.get("namespace") != namespace:
            continue  # cluster-scoped kinds: -n does not filter them
        if meta.get("ownerReferences") or item["kind"] in CONTROLLER_OWNED:
            continue
        if item["kind"] == "ServiceAccount" and meta["name"] == "default":
            continue
        if item["kind"] == "ConfigMap" and meta["name"] in CONTROLLER_CONFIGMAPS:
            continue
        if item["kind"] == "Secret" and meta["name"] == "vllm-api-key":
            continue
        refs.add(
            ObjectRef(item["apiVersion"], item["kind"], meta.get("namespace", ""), meta["name"])
        )
    return refs


def identities(refs: set[ObjectRef]) -> set[tuple[str, str, str]]:
    return {(r.kind, r.namespace, r.name) for r in refs}


def cleanup(cp: ControlPlane, *namespaces: str, pvs: tuple[str, ...] = ()) -> None:
    """Delete what a scenario created, without waiting for the namespace controller."""
    for ns in namespaces:
        cp.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")
    for pv in pvs:
        cp.kubectl("delete", "pv", pv, "--ignore-not-found", "--wait=false")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def get_json(cp: ControlPlane, *args: str) -> Any:
    return json.loads(cp.kubectl("get", *args, "-o", "json").stdout)


def doks_gpu_node(
    cp: ControlPlane, name: str, *, pool: str, resource: str, gpus: int, cpu: str, memory: str
) -> None:
    """A Node as DOKS registers a GPU Droplet: pool label, the vendor's GPU taint, capacity."""
    cp.add_node(
        name,
        labels={"doks.digitalocean.com/node-pool": pool},
        taints=[{"key": resource, "effect": "NoSchedule"}],
        capacity={
            "cpu": cpu,
            "memory": memory,
            "pods": "110",
            "ephemeral-storage": "700Gi",
            resource: str(gpus),
        },
    )


def finish_job(cp: ControlPlane, namespace: str, name: str, *, succeeded: bool) -> None:
    """Mark a Job succeeded or failed as the Job controller would once its pod ended (there is
    no kubelet here to run it): through the status subresource, with what the API server's
    Job status validation requires of a finished Job (the Complete/Failed condition after
    SuccessCriteriaMet/FailureTarget, start and completion times, no active pods)."""
    job = get_json(cp, "job", name, "-n", namespace)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    start = (job.get("status") or {}).get("startTime") or now

    def condition(kind: str, reason: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": f"marked by the test ({reason})",
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }

    if succeeded:
        kinds, reason = ("SuccessCriteriaMet", "Complete"), "CompletionsReached"
        status: dict[str, Any] = {"succeeded": 1, "failed": 0, "completionTime": now}
    else:
        kinds, reason = ("FailureTarget", "Failed"), "BackoffLimitExceeded"
        status = {"succeeded": 0, "failed": 1}
    status |= {
        "active": 0,
        "ready": 0,
        "terminating": 0,
        "startTime": start,
        "uncountedTerminatedPods": {},
        "conditions": [condition(kind, reason) for kind in kinds],
    }
    cp.kubectl(
        "-n", namespace, "patch", "job", name, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def user_environment(cp: ControlPlane) -> dict[str, str]:
    """A user's shell for this cluster: its kubectl first on PATH, its kubeconfig."""
    return {
        **os.environ,
        "KUBECONFIG": str(cp.kubeconfig),
        "PATH": f"{cp.assets_dir}{os.pathsep}{os.environ['PATH']}",
    }


def synth_and_validate(
    toolchain: Toolchain, workdir: Path, config: dict[str, Any], stack: str
) -> dict[str, Any]:
    """Synthesize the cloud layer of ``config`` and run ``terraform init -backend=false`` and
    ``terraform validate -json`` on ``stack`` with the real provider, offline
    (TF_CLI_CONFIG_FILE naming ../shared/terraform-mirror's filesystem mirror)."""
    config_file = workdir / "vllm.yaml"
    config_file.write_text(json.dumps(config))
    out = workdir / "cdktf.out"
    subprocess.run(
        [
            *(str(toolchain.python), str(REPO / "app.py"), "synth", "--layer", "cloud"),
            *("--config", str(config_file), "--cloud-outdir", str(out)),
        ],
        check=True,
        capture_output=True,
    )
    env = {
        "TF_CLI_CONFIG_FILE": str(toolchain.cli_config(workdir)),
        "CHECKPOINT_DISABLE": "1",
        "PATH": "/usr/bin:/bin",
    }
    tf, stack_dir = str(toolchain.terraform), out / "stacks" / stack
    init = subprocess.run(
        [tf, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=stack_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, init.stderr
    result = subprocess.run(
        [tf, "validate", "-json"], cwd=stack_dir, env=env, capture_output=True, text=True
    )
    verdict: dict[str, Any] = json.loads(result.stdout)
    return verdict


def apply_in_sequence(
    cp: ControlPlane, ns: str, steps: list[tuple[str, Synth]], kinds: set[tuple[str, str]]
) -> int:
    """Applies each step's dist/ as the README says (apply, then delete what the step no longer
    emits) and asserts that what is live in ``ns`` is exactly what the step emits, nothing
    left from earlier steps. Returns how many objects were applied."""
    previous: Synth | None = None
    applied = 0
    for label, step in steps:
        count, _ = apply(cp, step.dist)
        applied += count
        if previous is not None:
            delete_removed(cp, previous.dist, step.dist)
        live = live_objects(cp, ns, kinds)
        assert identities(live) == {i for i in identities(step.objects) if i[1] == ns}, (
            f"after step {label!r}"
        )
        previous = step
    return applied
