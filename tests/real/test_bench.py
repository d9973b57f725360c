"""`make bench`, as the README shows it: it runs, and reports every figure the speed targets
name (no timing is asserted here: a loaded machine says nothing about the code)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import REPO

pytestmark = pytest.mark.real


def test_make_bench_reports_every_target() -> None:
    proc = subprocess.run(
        ["make", "--no-print-directory", "bench", "BENCH_FLAGS=--runs 1"],
        cwd=REPO,
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for pattern in (
        r"default synth, both layers +[0-9.]+ +[0-9.]+",
        r"kubernetes layer only +[0-9.]+ +[0-9.]+",
        r"its objects via cdk8s Include +[0-9.]+ +[0-9.]+",
        r"each added worker pool: [0-9.]+ ms \(target <= 15 ms\)",
        r"kubernetes-only synth loads the DigitalOcean provider: no",
        r"kubernetes-only synth: [0-9.]+x its floor \(one round; target <= 1.25\)",
        r"^(targets met|TARGETS MISSED)$",
    ):
        assert re.search(pattern, out, re.M), (pattern, out)
