"""Fetch one model revision from the Hugging Face Hub and verify every file against the hub.

Run by ``download-model.sh`` as ``python3 -c <this file>`` inside the download Job (the vLLM
image, which ships ``huggingface_hub``), with the environment:

* ``MODEL_ID``: the repository, e.g. ``Qwen/Qwen2.5-0.5B-Instruct``;
* ``MODEL_DIR``: where the files go (``snapshot_download(local_dir=...)``);
* ``MAX_WORKERS``: parallel file downloads;
* ``MODEL_REVISION``: a 40-hex commit to pin, or empty for the default branch;
* ``HF_ENDPOINT`` / ``HF_TOKEN_PATH``: read by ``huggingface_hub`` itself.

Steps: resolve the revision to a commit with ``HfApi.model_info(files_metadata=True)``, which
lists every file with its hashes (``lfs.sha256`` and ``lfs.size`` for LFS files, ``blobId``, the
git blob SHA-1, for the rest: huggingface_hub 0.36 ``RepoSibling``); download exactly that
commit; hash every listed file on disk and compare. Only then is the manifest
``MODEL_DIR/.vllm-doks-manifest.json`` written and the process exits 0; the shell script writes
the marker the workers wait for after that.

Exit codes: 0 verified; 2 a file is missing or its hash differs (the file and its
``huggingface_hub`` download metadata are deleted, so the Job's next attempt fetches it again
instead of trusting it); 3 the pinned revision is not what the hub resolved; anything else is
an error of ``huggingface_hub`` (network, authentication, unknown repository).

Standard library plus ``huggingface_hub`` (imported by name: this file runs in the vLLM
image, not in this package's environment).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

MANIFEST = ".vllm-doks-manifest.json"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 8 * 1024 * 1024


def log(message: str) -> None:
    print(f"fetch-model: {message}", flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1_of(path: Path) -> str:
    """The git object id of a file's content: SHA-1 of ``blob <size>\\0<content>``."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(model_dir: Path, sibling: Any) -> str | None:
    """``None`` when the file on disk is the one the hub lists, else why not."""
    path = model_dir / sibling.rfilename
    if not path.is_file():
        return "missing"
    lfs = sibling.lfs
    if lfs is not None:
        size = path.stat().st_size
        if size != lfs.size:
            return f"size {size} != hub's {lfs.size}"
        actual = sha256_of(path)
        return None if actual == lfs.sha256 else f"sha256 {actual} != hub's {lfs.sha256}"
    if sibling.blob_id:
        actual = git_blob_sha1_of(path)
        expected = sibling.blob_id
        return None if actual == expected else f"git blob {actual} != hub's {expected}"
    return "the hub lists no hash for it"


def forget(model_dir: Path, rfilename: str) -> None:
    """Delete a bad file and huggingface_hub's record of it, so a retry downloads it again."""
    for path in (
        model_dir / rfilename,
        model_dir / ".cache" / "huggingface" / "download" / f"{rfilename}.metadata",
    ):
        path.unlink(missing_ok=True)


def main() -> int:
    hub = importlib.import_module("huggingface_hub")
    repo = os.environ["MODEL_ID"]
    model_dir = Path(os.environ["MODEL_DIR"])
    workers = int(os.environ.get("MAX_WORKERS", "4"))
    pinned = os.environ.get("MODEL_REVISION", "").strip()

    info = hub.HfApi().model_info(repo, revision=pinned or None, files_metadata=True)
    commit = str(info.sha)
    if pinned and _COMMIT.match(pinned) and commit != pinned:
        log(f"the hub resolved revision {pinned} of {repo} to {commit}; refusing")
        return 3
    log(f"{repo} at commit {commit}: {len(info.siblings)} files listed by the hub")

    hub.snapshot_download(
        repo_id=repo, revision=commit, local_dir=str(model_dir), max_workers=workers
    )

    bad: dict[str, str] = {}
    for sibling in info.siblings:
        problem = check_file(model_dir, sibling)
        if problem is not None:
            bad[sibling.rfilename] = problem
    if bad:
        for name, problem in sorted(bad.items()):
            log(f"VERIFICATION FAILED: {name}: {problem}")
            forget(model_dir, name)
        log(f"{len(bad)} of {len(info.siblings)} files failed verification; no marker written")
        return 2

    manifest = {
        "model_id": repo,
        "revision": commit,
        "files": {
            s.rfilename: (
                {"sha256": s.lfs.sha256, "size": s.lfs.size}
                if s.lfs is not None
                else {"git_blob_sha1": s.blob_id}
            )
            for s in info.siblings
        },
    }
    tmp = model_dir / f"{MANIFEST}.tmp.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(model_dir / MANIFEST)
    log(f"verified {len(info.siblings)} files of {repo} at {commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
