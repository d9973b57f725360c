"""download-model.sh + fetch_model.py run for real: real ``sh``, real ``python3`` with the real
``huggingface_hub`` (the 0.x line vLLM v0.18 installs: ``transformers<5`` needs
``huggingface-hub<1.0``), against a fake Hugging Face Hub on 127.0.0.1 that speaks the
endpoints huggingface_hub 0.36 calls:

* ``GET /api/models/<repo>/revision/<rev>[?blobs=True]``: ``sha`` and ``siblings`` with
  ``blobId``, ``size`` and, for LFS files, ``lfs.sha256``/``lfs.size``/``lfs.pointerSize``;
* ``HEAD``/``GET /<repo>/resolve/<rev>/<file>`` with ``X-Repo-Commit``, ``ETag`` and
  ``Content-Length``.

The hub's listing is computed from the true content; a test can make the server send other
bytes for a file (same size, one byte flipped) as a corrupted mirror or a man in the middle
would, and must then see the Job attempt fail with no marker.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from vllm_doks import contracts
from vllm_doks.k8s.scripts import DOWNLOAD_MODEL, FETCH_MODEL, script_text, sh_command

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


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class FakeHub:
    port: int = 0
    commit: str = COMMIT
    files: dict[str, bytes] = field(default_factory=lambda: {**LFS_FILES, **PLAIN_FILES})
    served_instead: dict[str, bytes] = field(default_factory=dict)
    """Bytes sent for a file instead of its true content (the listing keeps the true hash)."""
    answer_any_revision: bool = False
    """Answer every revision with ``commit``, as a rewritten mirror would."""
    downloads: list[str] = field(default_factory=list)
    revisions_asked: list[str] = field(default_factory=list)
    listing_queries: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sibling(self, name: str) -> dict[str, object]:
        data = self.files[name]
        entry: dict[str, object] = {"rfilename": name, "size": len(data)}
        if name in LFS_FILES:
            entry["blobId"] = git_blob_sha1(b"version https://git-lfs ... pointer")
            entry["lfs"] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 134,
            }
        else:
            entry["blobId"] = git_blob_sha1(data)
        return entry


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    state = FakeHub()

    class Handler(BaseHTTPRequestHandler):
        def _file(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            prefix = f"/{REPO}/resolve/"
            if not path.startswith(prefix):
                self.send_error(404)
                return
            _, _, name = path[len(prefix) :].partition("/")
            if name not in state.files:
                self.send_error(404)
                return
            true = state.files[name]
            body = state.served_instead.get(name, true)
            etag = hashlib.sha256(true).hexdigest() if name in LFS_FILES else git_blob_sha1(true)
            self.send_response(200)
            self.send_header("X-Repo-Commit", state.commit)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                state.downloads.append(name)
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._file(head=True)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            prefix = f"/api/models/{REPO}/revision/"
            if url.path.startswith(prefix) or url.path == f"/api/models/{REPO}":
                # No revision in the path: the default branch.
                revision = (
                    unquote(url.path[len(prefix) :]) if url.path.startswith(prefix) else "main"
                )
                state.revisions_asked.append(revision)
                state.listing_queries.append(url.query)
                if revision not in ("main", state.commit) and not state.answer_any_revision:
                    self.send_error(404)
                    return
                payload = json.dumps(
                    {
                        "id": REPO,
                        "modelId": REPO,
                        "sha": state.commit,
                        "siblings": [state.sibling(n) for n in sorted(state.files)],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self._file(head=False)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Run:
    rc: int
    out: str


@pytest.fixture
def download(tmp_path: Path, hub: FakeHub) -> Iterator[tuple[Path, Callable[..., Run]]]:
    models = tmp_path / "models"
    models.mkdir()
    # python3 on PATH is this interpreter (it has huggingface_hub), as in the vLLM image.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "NO_PROXY": "127.0.0.1",
    }

    def run(model_dir: Path, revision: str = COMMIT) -> Run:
        proc = subprocess.run(
            sh_command(
                DOWNLOAD_MODEL,
                REPO,
                str(model_dir),
                "2",
                "120",
                "1",
                "1",
                revision,
                script_text(FETCH_MODEL),
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Run(proc.returncode, proc.stdout + proc.stderr)

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
