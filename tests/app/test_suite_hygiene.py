"""What a test run leaves on the machine: no folder of its own in the system temp directory."""

from __future__ import annotations

import re
from pathlib import Path

import cdk8s
from support import app_outdir, k8s_app, tf_app

TESTS = Path(__file__).resolve().parent.parent

#: A test app without an output folder of its own: cdk8s and cdktf then make one in the system
#: temp directory per call and never remove it (see tests/support.py).
_LEAKING_APP = re.compile(r"\b(cdk8s|cdktf)\.Testing\.(app|chart)\(\s*\)")


def test_no_test_module_makes_an_app_that_leaks_a_temp_folder() -> None:
    found = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "support.py"  # where the helpers say what they replace
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _LEAKING_APP.search(line)
    ]
    assert found == [], f"use support.k8s_app() / support.tf_app() instead at {found}"


def test_test_apps_write_into_the_process_folder_removed_at_exit() -> None:
    root = Path(app_outdir()).parent
    app = k8s_app()
    cdk8s.Chart(app, "hygiene")
    app.synth()
    assert Path(app.outdir).parent == root
    assert (Path(app.outdir) / "hygiene.k8s.yaml").is_file()
    assert Path(tf_app().outdir).parent == root
