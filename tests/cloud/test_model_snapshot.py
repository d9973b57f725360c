"""digitalocean_nfs_snapshot of the model share: off by default, one resource with the share's
id when named, a clear error for a bad name, and valid for the real provider (2.99.1, from
the offline mirror) under ``terraform validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from realtier import synth_and_validate

from vllm_doks import ValidationError
from vllm_doks.cli import main
from vllm_doks.rehearsal.runner import Toolchain


def synth_cloud(tmp_path: Path, **config: Any) -> dict[str, Any]:
    config_file = tmp_path / "vllm.yaml"
    config_file.write_text(json.dumps(config))
    out = tmp_path / "cdktf.out"
    assert (
        main(
            [
                "synth",
                "--layer",
                "cloud",
                "--config",
                str(config_file),
                "--cloud-outdir",
                str(out),
            ]
        )
        == 0
    )
    doc: dict[str, Any] = json.loads((out / "stacks" / "vllm-infra" / "cdk.tf.json").read_text())
    return doc


def test_no_snapshot_by_default(tmp_path: Path) -> None:
    doc = synth_cloud(tmp_path)
    assert "digitalocean_nfs_snapshot" not in doc["resource"]
    assert "nfs_snapshot_id" not in doc.get("output", {})


def test_a_named_snapshot_of_the_share(tmp_path: Path) -> None:
    doc = synth_cloud(tmp_path, nfs_snapshot_name="my-vllm-models-qwen-7ae5576")
    snapshot = doc["resource"]["digitalocean_nfs_snapshot"]["models"]
    assert snapshot["name"] == "my-vllm-models-qwen-7ae5576"
    assert snapshot["region"] == "nyc2"
    assert snapshot["share_id"] == "${digitalocean_nfs.models.id}"
    assert doc["output"]["nfs_snapshot_id"]["value"] == "${digitalocean_nfs_snapshot.models.id}"


def test_a_bad_snapshot_name_names_the_input(tmp_path: Path) -> None:
    from vllm_doks.config import load_config
    from vllm_doks.wiring import infra_props

    problems = infra_props(load_config(overrides={"nfs_snapshot_name": "Models_1"})).problems()
    assert [p.field for p in problems.items] == ["nfs_snapshot_name"]
    with pytest.raises(ValidationError):
        problems.raise_if_any()


@pytest.mark.real
def test_the_snapshot_validates_with_the_real_provider(
    toolchain: Toolchain, tmp_path: Path
) -> None:
    verdict = synth_and_validate(
        toolchain, tmp_path, {"nfs_snapshot_name": "my-vllm-models-snap"}, "vllm-infra"
    )
    assert verdict["valid"] is True, verdict["diagnostics"]
