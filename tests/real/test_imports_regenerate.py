"""The typed bindings in imports/ are what `make imports` makes from the CRDs cdk8s.yaml names:
the real cdk8s CLI, offline, from the copies of those CRDs in tests/fixtures/crds, regenerates
them byte for byte (so nobody edits generated code by hand, and a CRD bump is one command)."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.real

CRDS = REPO / "tests" / "fixtures" / "crds"


def _tree(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_make_imports_regenerates_the_committed_bindings(tmp_path: Path) -> None:
    if not (REPO / "node_modules" / ".bin" / "cdk8s").exists():
        pytest.fail("cdk8s CLI missing: run `make cli` (make test does)")
    work = tmp_path / "repo"
    work.mkdir()
    # The Makefile and cdk8s.yaml, the installed tools by link (read only: `-o cli` below keeps
    # make from reinstalling them, which through the link would rewrite the checkout's
    # node_modules); imports/ starts with the hand-written package markers only.
    for name in (
        "Makefile",
        "cdk8s.yaml",
        "pyproject.toml",
        "setup.py",
        "requirements.lock",
        "package.json",
        "package-lock.json",
    ):
        shutil.copy2(REPO / name, work / name)
    for name in (".venv", "node_modules"):
        (work / name).symlink_to(REPO / name)
    committed = REPO / "imports"
    generated = [p for p in committed.rglob("*") if "_jsii" in p.parts or p.name == "py.typed"]
    markers = [p for p in committed.rglob("__init__.py") if "_jsii" not in p.parts]
    for p in markers:
        target = work / "imports" / p.relative_to(committed)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)
    assert generated, "no generated bindings in imports/"

    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
    proc = subprocess.run(
        ["make", "--no-print-directory", "-o", "cli", "imports", f"CRDS={CRDS}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    mine, theirs = _tree(work / "imports"), _tree(committed)
    # Every generated module: the same files, the same bytes. (cdk8s import rewrites a
    # package's __init__.py too; ours are regenerated identically.)
    assert sorted(mine) == sorted(theirs)
    different = [
        name for name in theirs if not filecmp.cmp(mine[name], theirs[name], shallow=False)
    ]
    assert not different, f"regenerated bindings differ from imports/: {different}"
