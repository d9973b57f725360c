"""A synth that replaces dist/ says which objects the new output no longer emits, with the
``kubectl delete`` for each (kubectl apply never deletes; its pruning is alpha in 1.34).
The real-API-server tests run these very commands (tests/real/test_real_apply.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vllm_doks.cli import main
from vllm_doks.removed_objects import REMOVED_FILE, manifest_objects, removed_objects


def synth(outdir: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    capsys.readouterr()
    assert main(["synth", "--layer", "k8s", "--k8s-outdir", str(outdir), *flags], env={}) == 0
    return capsys.readouterr().err


def job_name(outdir: Path, base: str = "model-download-") -> str:
    (job,) = [r.name for r in manifest_objects(outdir) if r.kind == "Job" and base in r.name]
    return job


def test_a_changed_model_lists_the_old_job_to_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = tmp_path / "dist"
    first = synth(dist, capsys)
    assert "no longer emitted" not in first
    assert not (dist / REMOVED_FILE).exists()
    old_job = job_name(dist)
    old_smoke = job_name(dist, "smoke-test-")

    err = synth(dist, capsys, "--model-id", "Qwen/Qwen2.5-7B-Instruct")
    new_job = job_name(dist)
    assert new_job != old_job
    assert f"kubectl delete job.batch/{old_job} -n vllm --ignore-not-found" in err
    listed = json.loads((dist / REMOVED_FILE).read_text())
    # The smoke test names the model too: its Job (and that Job's NetworkPolicy) is new.
    assert sorted(listed["commands"]) == sorted(
        [
            f"kubectl delete job.batch/{old_job} -n vllm --ignore-not-found",
            f"kubectl delete job.batch/{old_smoke} -n vllm --ignore-not-found",
            f"kubectl delete networkpolicy.networking.k8s.io/{old_smoke} -n vllm "
            "--ignore-not-found",
        ]
    )

    # Back to the first model: the old Job is emitted again (not listed), the 7B one is.
    err = synth(dist, capsys)
    assert job_name(dist) == old_job
    assert f"job.batch/{new_job}" in err and f"job.batch/{old_job}" not in err


def test_dropped_custom_resources_are_named_with_their_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = tmp_path / "dist"
    on = ["--autoscaling", "true", "--autoscaling-max-replicas", "2", "--pod-monitor", "true"]
    synth(dist, capsys, *on)
    err = synth(dist, capsys)
    commands = re.findall(r"kubectl delete \S+", err)
    assert any(c.startswith("kubectl delete scaledobject.keda.sh/") for c in commands)
    assert any(c.startswith("kubectl delete podmonitor.monitoring.coreos.com/") for c in commands)


def test_an_unchanged_synth_reports_nothing_new_but_keeps_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = tmp_path / "dist"
    synth(dist, capsys)
    synth(dist, capsys, "--replicas", "2", "--model-id", "Qwen/Qwen2.5-7B-Instruct")
    err = synth(dist, capsys, "--replicas", "2", "--model-id", "Qwen/Qwen2.5-7B-Instruct")
    assert "no longer emitted" not in err
    # The first model's download Job, and its smoke test's Job and NetworkPolicy.
    assert "3 object(s) dropped by earlier synths are listed" in err
    assert len(json.loads((dist / REMOVED_FILE).read_text())["objects"]) == 3


def test_cluster_scoped_and_namespaces_are_deleted_last(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "a.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: vllm}\n---\n"
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: vllm.vllm-models-pv}\n---\n"
        "apiVersion: batch/v1\nkind: Job\n"
        "metadata: {name: model-download-0123abcd, namespace: vllm}\n"
    )
    (new / "a.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: y}\n"
    )
    assert [r.delete_command() for r in removed_objects(old, new)] == [
        "kubectl delete job.batch/model-download-0123abcd -n vllm --ignore-not-found",
        "kubectl delete persistentvolume/vllm.vllm-models-pv --ignore-not-found",
        "kubectl delete namespace/vllm --ignore-not-found",
    ]
