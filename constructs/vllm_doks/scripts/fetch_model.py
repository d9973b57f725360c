"""Fetch one model revision from the Hugging Face Hub, or from a DigitalOcean Spaces bucket,
and verify every file before the marker.

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

**From a Spaces bucket** (the environment sets ``SPACES_BUCKET_URL``, e.g.
``https://my-models.nyc3.digitaloceanspaces.com``; ``SPACES_REGION``, the region slug of the
credential scope; ``SPACES_PREFIX``, the key prefix of the model's files; and
``SPACES_CREDENTIALS_DIR`` holding the files ``access_key_id`` and ``secret_access_key`` from
the Secret): no hub is asked. The bucket holds the files under the prefix and, next to them, the
same manifest this script writes after a verified hub download (``<prefix>.vllm-doks-manifest.
json``; ``python3 fetch_model.py manifest DIR [MODEL_ID] [REVISION]`` writes one for a local
directory before the upload). Every request is signed with AWS Signature Version 4 (standard
library ``hmac``/``hashlib``; the image has no boto3 to rely on). Each listed file is streamed
to ``<file>.part``, its size and hash (``sha256``, or ``git_blob_sha1`` for the hub's small
files) compared with the manifest and, when the object's ``ETag`` is a plain MD5 (single-part
uploads only; a multipart ETag is ``<md5 of the parts' md5s>-<parts>``), that too; only then
is it renamed into place. Exit codes as above, plus 4 when the credentials are missing, 5 when
the manifest cannot be read (refused: the S3 error code is printed, never a credential; or
unreachable). Verified files are kept, so a retry fetches only what is still missing.

Standard library plus ``huggingface_hub`` for the hub (imported by name: this file runs in
the vLLM image, not in this package's environment).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import importlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
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
    if os.environ.get("SPACES_BUCKET_URL"):
        return main_spaces()
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
    write_manifest(model_dir, manifest)
    log(f"verified {len(info.siblings)} files of {repo} at {commit}")
    return 0


def write_manifest(model_dir: Path, manifest: dict[str, Any]) -> None:
    """Write ``MANIFEST`` atomically (a reader never sees half of it)."""
    tmp = model_dir / f"{MANIFEST}.tmp.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(model_dir / MANIFEST)


# --- Spaces (S3 API) ---------------------------------------------------------------------------

#: What files of a local directory are not the model (``manifest`` skips them).
_NOT_MODEL = (".cache", ".vllm-doks-")
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_PLAIN_MD5 = re.compile(r'^"?([0-9a-f]{32})"?$')


class BucketError(Exception):
    """The bucket answered a request with an error status."""


def sigv4_headers(
    method: str,
    url: str,
    *,
    region: str,
    access_key: str,
    secret_key: str,
    now: datetime.datetime,
) -> dict[str, str]:
    """Headers of a body-less request signed with AWS Signature Version 4 (header form).

    Canonical request = method, URI-encoded path, sorted query, the signed headers ``host``,
    ``x-amz-content-sha256`` (S3 requires it; the SHA-256 of the empty body) and
    ``x-amz-date``, and the payload hash; the string to sign and the signing key
    (``AWS4<secret>`` -> date -> region -> ``s3`` -> ``aws4_request``) follow the spec.
    """
    parts = urllib.parse.urlsplit(url)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    path = urllib.parse.quote(urllib.parse.unquote(parts.path) or "/", safe="/-_.~")
    query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    )
    headers = {"host": parts.netloc, "x-amz-content-sha256": _EMPTY_SHA256, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            _EMPTY_SHA256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-content-sha256": _EMPTY_SHA256,
        "x-amz-date": stamp,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}",
    }


class Bucket:
    """Signed GETs of one bucket's objects (virtual-hosted: the bucket is the host)."""

    def __init__(self, url: str, region: str, access_key: str, secret_key: str) -> None:
        self.url = url.rstrip("/")
        self.region = region
        self._access_key = access_key
        self._secret_key = secret_key

    def open(self, key: str) -> Any:
        url = f"{self.url}/{urllib.parse.quote(key, safe='/-_.~')}"
        headers = sigv4_headers(
            "GET",
            url,
            region=self.region,
            access_key=self._access_key,
            secret_key=self._secret_key,
            now=datetime.datetime.now(datetime.UTC),
        )
        try:
            return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
        except urllib.error.HTTPError as e:
            # S3's XML error names the problem (NoSuchKey, AccessDenied, SignatureDoesNotMatch);
            # it echoes the access key id at most, never the secret.
            code = re.search(rb"<Code>([^<]*)</Code>", e.read(2048) or b"")
            reason = code.group(1).decode() if code else e.reason
            raise BucketError(f"GET {key}: HTTP {e.code} {reason}") from None
        except urllib.error.URLError as e:
            # No HTTP answer at all (DNS, refused, TLS, timeout): say so, then retry later.
            raise BucketError(f"GET {key}: {e.reason}") from None


def _hasher(expected: dict[str, Any], size: int) -> Any:
    if "sha256" in expected:
        return hashlib.sha256()
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % size)
    return digest


def _on_disk_ok(path: Path, expected: dict[str, Any]) -> bool:
    if not path.is_file():
        return False
    if "sha256" in expected:
        return path.stat().st_size == expected.get("size") and sha256_of(path) == expected["sha256"]
    return git_blob_sha1_of(path) == expected.get("git_blob_sha1")


def fetch_object(bucket: Bucket, key: str, path: Path, expected: dict[str, Any]) -> str | None:
    """Stream one object to ``<path>.part``, check it, rename it into place; ``None`` when it
    matched, else why not (the part file is deleted)."""
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    with bucket.open(key) as response:
        length = int(response.headers.get("Content-Length", "-1"))
        digest = _hasher(expected, length)
        md5 = hashlib.md5(usedforsecurity=False)
        received = 0
        with part.open("wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                md5.update(chunk)
                received += len(chunk)
                out.write(chunk)
        etag = _PLAIN_MD5.match(response.headers.get("ETag", ""))
    problem = None
    want_size = expected.get("size")
    if received != length:
        problem = f"received {received} of {length} bytes"
    elif want_size is not None and received != want_size:
        problem = f"size {received} != manifest's {want_size}"
    elif etag and md5.hexdigest() != etag.group(1):
        problem = f"md5 {md5.hexdigest()} != the object's ETag {etag.group(1)}"
    else:
        kind = "sha256" if "sha256" in expected else "git_blob_sha1"
        if digest.hexdigest() != expected.get(kind):
            problem = f"{kind} {digest.hexdigest()} != manifest's {expected.get(kind)}"
    if problem is not None:
        part.unlink(missing_ok=True)
        return problem
    part.replace(path)
    return None


def main_spaces() -> int:
    model_dir = Path(os.environ["MODEL_DIR"])
    url = os.environ["SPACES_BUCKET_URL"]
    prefix = os.environ.get("SPACES_PREFIX", "")
    pinned = os.environ.get("MODEL_REVISION", "").strip()
    creds = Path(os.environ.get("SPACES_CREDENTIALS_DIR", ""))
    try:
        access_key = (creds / "access_key_id").read_text().strip()
        secret_key = (creds / "secret_access_key").read_text().strip()
    except OSError:
        log(
            f"no Spaces credentials in {creds}: create the Secret "
            f"({os.environ.get('SPACES_SECRET_HINT', 'see the README')}); no marker written"
        )
        return 4
    bucket = Bucket(url, os.environ.get("SPACES_REGION", ""), access_key, secret_key)
    where = f"{url}/{prefix}"
    try:
        with bucket.open(prefix + MANIFEST) as response:
            listed = json.loads(response.read())
    except BucketError as e:
        log(f"cannot read the manifest {where}{MANIFEST}: {e}; no marker written")
        return 5
    files: dict[str, dict[str, Any]] = listed.get("files") or {}
    revision = str(listed.get("revision") or "")
    if pinned and revision != pinned:
        log(
            f"the manifest at {where} is of revision {revision or '(none)'}, not {pinned}; refusing"
        )
        return 3
    log(f"{listed.get('model_id', '?')} at {revision or '?'} from {where}: {len(files)} files")
    model_dir.mkdir(parents=True, exist_ok=True)
    bad: dict[str, str] = {}
    for name, expected in sorted(files.items()):
        path = model_dir / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            bad[name] = "not a path inside the model directory"
            continue
        if _on_disk_ok(path, expected):
            continue
        try:
            problem = fetch_object(bucket, prefix + name, path, expected)
        except (BucketError, OSError) as e:
            # OSError: the connection broke mid-file (the Job's next attempt fetches it again).
            problem = str(e) or type(e).__name__
        if problem is not None:
            bad[name] = problem
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".part").unlink(missing_ok=True)
    if bad:
        for name, problem in sorted(bad.items()):
            log(f"VERIFICATION FAILED: {name}: {problem}")
        log(f"{len(bad)} of {len(files)} files failed verification; no marker written")
        return 2
    write_manifest(model_dir, {**listed, "source": where})
    log(f"verified {len(files)} files from {where}")
    return 0


def make_manifest(directory: Path, model_id: str = "", revision: str = "") -> dict[str, Any]:
    """The manifest of a local directory: sha256 and size of every file, for an upload."""
    files = {
        path.relative_to(directory).as_posix(): {
            "sha256": sha256_of(path),
            "size": path.stat().st_size,
        }
        for path in sorted(directory.rglob("*"))
        if path.is_file()
        and not any(p.startswith(_NOT_MODEL) for p in path.relative_to(directory).parts)
    }
    return {"model_id": model_id, "revision": revision, "files": files}


if __name__ == "__main__":
    if sys.argv[1:2] == ["manifest"] and len(sys.argv) >= 3:
        target = Path(sys.argv[2])
        write_manifest(target, make_manifest(target, *sys.argv[3:5]))
        print(target / MANIFEST)
        sys.exit(0)
    sys.exit(main())
