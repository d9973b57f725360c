"""checkov over the synthesized Kubernetes layer: zero failed checks.

The app's chart (what ``app.py synth`` writes to ``dist/``) is scanned as synthesized, with the
defaults and with HTTPS, cert-manager and two replicas (one checkov run, a folder each). Checks
that are waived on purpose must be waived in the manifest itself (``checkov.io/skip<N>``
annotations, see ``vllm_doks/k8s/suppressions.py``), each with a written reason; this test pins
the exact set, so a new waiver is a deliberate change here too.

checkov is a test requirement but cannot live in the test venv: checkov 3.3.30 pins
``packaging<24`` while pytest 9 needs ``packaging>=24``. It is looked up, in order, at
``$CHECKOV``, on ``PATH``, next to this Python, and in ``.venv-checkov/bin`` of the
repository; when none is there the test fails (it never skips) and says how to install it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.k8s.serving_chart import synth_serving_chart

#: The checkov release these expectations were measured with.
CHECKOV_VERSION = "3.3.30"

INSTALL_HINT = (
    f"checkov {CHECKOV_VERSION} is required for this test and was not found ($CHECKOV, PATH, "
    f"{Path(sys.executable).parent}, {REPO / '.venv-checkov' / 'bin'}). Install it in its own "
    f"venv (it pins packaging<24, which pytest 9 cannot use): python3 -m venv .venv-checkov && "
    f".venv-checkov/bin/pip install checkov=={CHECKOV_VERSION}"
)

#: Deliberate waivers, by object, in the order they are annotated.
VLLM_WAIVERS = ["CKV_K8S_11", "CKV_K8S_13", "CKV_K8S_35", "CKV_K8S_40", "CKV_K8S_43", "CKV_K8S_15"]
DOWNLOAD_WAIVERS = ["CKV_K8S_40", "CKV_K8S_43", "CKV_K8S_15"]
#: The smoke test runs the vLLM image already on the GPU nodes: the download's waivers.
SMOKE_TEST_WAIVERS = DOWNLOAD_WAIVERS

VARIANTS = {
    "default": ArchitectureConfig(),
    "https-ha": ArchitectureConfig(
        replicas=2,
        gpu_node_count=2,
        quantization="fp8",
        tls_certificate_secret="vllm-tls",
        tls_hostname="llm.example.com",
        cert_manager_cluster_issuer="letsencrypt",
        # The download from a Spaces bucket: its key pair as Secret files, no env secret.
        model_source_bucket="my-models",
    ),
}


def find_checkov() -> str:
    candidates = [
        os.environ.get("CHECKOV"),
        shutil.which("checkov"),
        str(Path(sys.executable).parent / "checkov"),
        str(REPO / ".venv-checkov" / "bin" / "checkov"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(INSTALL_HINT)


def run_checkov(directory: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [
            find_checkov(),
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    # Exit status 1 means "some check failed"; the report says which.
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    if isinstance(report, list):  # one entry per framework when several ran
        (report,) = [r for r in report if r.get("check_type") == "kubernetes"]
    assert isinstance(report, dict)
    return report


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One checkov run over every variant's output (a folder each; checkov starts once), split
    into one report per variant by the scanned file's folder."""
    outdir = tmp_path_factory.mktemp("checkov")
    for name, config in VARIANTS.items():
        synth_serving_chart(config, InfraOutputs.examples_for(config), outdir / name)
    report = run_checkov(outdir)
    split: dict[str, dict[str, Any]] = {}
    for name in VARIANTS:
        results = {
            # parsing_errors lists file paths; the checks are records with their file's path.
            kind: [
                c for c in checks if f"/{name}/" in (c if isinstance(c, str) else c["file_path"])
            ]
            for kind, checks in report["results"].items()
        }
        summary = {
            **report["summary"],
            "passed": len(results["passed_checks"]),
            "failed": len(results["failed_checks"]),
        }
        split[name] = {"summary": summary, "results": results}
    return split


@pytest.fixture(params=list(VARIANTS))
def report(request: pytest.FixtureRequest, reports: dict[str, dict[str, Any]]) -> Any:
    return reports[request.param]


def describe(checks: list[dict[str, Any]]) -> str:
    return "\n".join(f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in checks)


def test_checkov_finds_no_failed_check(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["checkov_version"] == CHECKOV_VERSION, (
        f"expectations were measured with checkov {CHECKOV_VERSION}; re-measure them for "
        f"{summary['checkov_version']}"
    )
    assert summary["parsing_errors"] == 0
    failed = report["results"]["failed_checks"]
    assert summary["failed"] == 0, describe(failed)
    assert summary["passed"] > 100  # it really scanned the pods, not an empty directory


def unhashed(name: str) -> str:
    """A name with a Job's template hash (``model-download-<8 hex>``, ``smoke-test-<8 hex>``)
    removed."""
    return re.sub(r"(model-download|smoke-test)-[0-9a-f]{8}\b", r"\1", name)


def test_waivers_are_the_deliberate_ones_each_with_a_reason(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    by_resource: dict[str, list[str]] = {}
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 40 and reason != "No comment provided", check
        by_resource.setdefault(unhashed(check["resource"]), []).append(check["check_id"])
    assert {k: sorted(v) for k, v in by_resource.items()} == {
        "Deployment.vllm.vllm": sorted(VLLM_WAIVERS),
        "Job.vllm.model-download": sorted(DOWNLOAD_WAIVERS),
        "Job.vllm.smoke-test": sorted(SMOKE_TEST_WAIVERS),
    }


def test_every_pod_has_a_network_policy(report: dict[str, Any]) -> None:
    # CKV2_K8S_6: "Minimize the admission of pods which lack an associated NetworkPolicy".
    passed = report["results"]["passed_checks"]
    pods = sorted(c["resource"] for c in passed if c["check_id"] == "CKV2_K8S_6")
    assert [unhashed(p.split(".")[2]) for p in pods] == ["model-download", "smoke-test", "vllm"], (
        pods
    )
