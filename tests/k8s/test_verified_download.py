"""download-model.sh + fetch_model.py run for real: real ``sh``, real ``python3`` with the real
``huggingface_hub`` (the 0.x line vLLM v0.18 installs: ``transformers<5`` needs
``huggingface-hub<1.0``), against a fake Hugging Face Hub on 127.0.0.1
(:class:`support.FakeHub`: the endpoints huggingface_hub 0.36 calls).

The hub's listing is computed from the true content; a test can make the server send other
bytes for a file (same size, one byte flipped) as a corrupted mirror or a man in the middle
would, and must then see the Job attempt fail with no marker.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import FakeHub, Run, fake_hub, git_blob_sha1, run_download

from vllm_doks import contracts

pytest.importorskip("huggingface_hub", reason="needs huggingface_hub (the test extra)")
pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")

REPO = "Qwen/Qwen2.5-0.5B-Instruct"
COMMIT = "a" * 40
OTHER_COMMIT = "b" * 40
LFS_FILES = {"model.safetensors": bytes(range(256)) * 4096}  # 1 MiB
PLAIN_FILES = {
    "config.json": b'{"architectures": ["Qwen2ForCausalLM"]}\n',
    "tokenizer_config.json": b'{"model_max_length": 32768}\n',
}


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with fake_hub(
        FakeHub(repo=REPO, files={**LFS_FILES, **PLAIN_FILES}, lfs=frozenset(LFS_FILES))
    ) as state:
        yield state


@pytest.fixture
def download(tmp_path: Path, hub: FakeHub) -> Iterator[tuple[Path, Callable[..., Run]]]:
    models = tmp_path / "models"
    models.mkdir()
    env = hub.environment(tmp_path)

    def run(model_dir: Path, revision: str = COMMIT) -> Run:
        return run_download(REPO, model_dir, revision, env)

    yield models, run


def test_a_pinned_download_is_verified_before_the_marker(
    download: tuple[Path, Callable[..., Run]], hub: FakeHub
) -> None:
    models, run = download
    model_dir = models / "Qwen2.5-0.5B-Instruct-aaaaaaaaaaaa"
    result = run(model_dir)
    assert result.rc == 0, result.out
    for name, data in hub.files.items():
        assert (model_dir / name).read_bytes() == data
    assert (model_dir / ".vllm-doks-verified").is_file()
    manifest = json.loads((model_dir / ".vllm-doks-manifest.json").read_text())
    assert manifest["revision"] == COMMIT
    assert manifest["files"]["model.safetensors"]["sha256"] == (
        hashlib.sha256(LFS_FILES["model.safetensors"]).hexdigest()
    )
    assert manifest["files"]["config.json"] == {
        "git_blob_sha1": git_blob_sha1(PLAIN_FILES["config.json"])
    }
    assert f"verified 3 files of {REPO} at {COMMIT}" in result.out
    # The pinned commit is what was asked for, never a branch.
    assert set(hub.revisions_asked) == {COMMIT}
    # The listing with hashes is the files-metadata one (contracts.HF_HUB_FILES_METADATA_PARAM).
    assert f"{contracts.HF_HUB_FILES_METADATA_PARAM}=True" in hub.listing_queries
    assert not (model_dir / ".vllm-doks-lock").exists()

    # A second run trusts the marker and does not touch the hub.
    asked = len(hub.revisions_asked)
    again = run(model_dir)
    assert again.rc == 0 and "already complete" in again.out
    assert len(hub.revisions_asked) == asked


@pytest.mark.parametrize("bad", ["model.safetensors", "config.json"])
def test_a_corrupted_file_fails_the_attempt_without_a_marker_and_a_retry_heals(
    download: tuple[Path, Callable[..., Run]], hub: FakeHub, bad: str
) -> None:
    models, run = download
    model_dir = models / "m"
    true = hub.files[bad]
    # Same size, one byte changed: only a hash can tell.
    hub.served_instead[bad] = bytes([true[0] ^ 0xFF]) + true[1:]
    result = run(model_dir)
    assert result.rc == 2, result.out
    assert f"VERIFICATION FAILED: {bad}:" in result.out
    assert "no marker written" in result.out
    assert not (model_dir / ".vllm-doks-verified").exists()
    assert not (model_dir / ".vllm-doks-manifest.json").exists()
    assert not (model_dir / ".vllm-doks-lock").exists()
    # The bad file is gone, so the Job's next attempt cannot skip it as already downloaded.
    assert not (model_dir / bad).exists()

    del hub.served_instead[bad]
    downloads_before = hub.downloads.count(bad)
    healed = run(model_dir)
    assert healed.rc == 0, healed.out
    assert hub.downloads.count(bad) == downloads_before + 1
    assert (model_dir / bad).read_bytes() == true
    assert (model_dir / ".vllm-doks-verified").is_file()


def test_an_unpinned_download_records_the_commit_it_verified(
    download: tuple[Path, Callable[..., Run]], hub: FakeHub
) -> None:
    models, run = download
    result = run(models / "m", revision="")
    assert result.rc == 0, result.out
    assert hub.revisions_asked[0] == "main"
    manifest = json.loads((models / "m" / ".vllm-doks-manifest.json").read_text())
    assert manifest["revision"] == COMMIT
    # The files were fetched at the commit main resolved to, not at a moving "main".
    assert set(hub.revisions_asked[1:]) == {COMMIT}


def test_a_pinned_revision_the_hub_resolves_elsewhere_is_refused(
    download: tuple[Path, Callable[..., Run]], hub: FakeHub
) -> None:
    models, run = download
    hub.commit = OTHER_COMMIT
    hub.answer_any_revision = True
    result = run(models / "m", revision=COMMIT)
    assert result.rc == 3, result.out
    assert f"resolved revision {COMMIT} of {REPO} to {OTHER_COMMIT}; refusing" in result.out
    assert hub.downloads == []
    assert not (models / "m" / ".vllm-doks-verified").exists()


def test_an_unknown_revision_fails_clearly(download: tuple[Path, Callable[..., Run]]) -> None:
    models, run = download
    model_dir = models / "m"
    result = run(model_dir, revision="c" * 40)
    assert result.rc != 0
    assert "no marker written" in result.out
    assert not (model_dir / ".vllm-doks-verified").exists()
