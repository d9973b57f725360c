"""download-model.sh + fetch_model.py fetching from a DigitalOcean Spaces bucket, for real: real
``sh`` and ``python3`` against a fake S3 endpoint on 127.0.0.1 that refuses any request whose
AWS Signature Version 4 does not verify, and serves objects with S3's ETag rules (the MD5 of a
single-part upload, ``<md5>-<parts>`` for a multipart one).

The fake's verifier is checked first against the signed requests AWS publishes
(docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "Examples: Signature
Calculations": GET Bucket Lifecycle and GET Bucket (List Objects)), so a request it accepts is
one Spaces would accept too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from support import QuietHandler, Run, python3_path, run_download, serving

from vllm_doks import contracts
from vllm_doks.k8s.scripts import FETCH_MODEL, script_text

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")

ACCESS_KEY = "DO00EXAMPLEACCESSKEY"
SECRET_KEY = "example-secret-0123456789abcdefghijklmnopqrstuv"
REGION = "nyc3"
PREFIX = "Qwen/Qwen2.5-0.5B-Instruct/"
COMMIT = "a" * 40
FILES = {
    "model.safetensors": bytes(range(256)) * 4096,  # 1 MiB
    "config.json": b'{"architectures": ["Qwen2ForCausalLM"]}\n',
    "tokenizer/vocab.json": b'{"a": 1}\n',
}
MANIFEST = ".vllm-doks-manifest.json"
_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def signature_problem(
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    secrets: Mapping[str, str],
    region: str,
) -> str | None:
    """``None`` when the request carries a valid SigV4 ``Authorization``, else why not.

    Written from the spec, from what arrived: the scope and signed header list come from the
    header itself, the canonical URI and query from the raw request line.
    """
    auth = headers.get("authorization", "")
    match = re.fullmatch(
        re.escape(contracts.SPACES_SIGNATURE_ALGORITHM)
        + r" Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
        auth,
    )
    if match is None:
        return "AuthorizationHeaderMalformed"
    key_id, day, scope_region, signed, signature = match.groups()
    if key_id not in secrets:
        return "InvalidAccessKeyId"
    if scope_region != region or not headers.get("x-amz-date", "").startswith(day):
        return "AuthorizationHeaderMalformed"
    names = signed.split(";")
    if not {"host", "x-amz-date", "x-amz-content-sha256"} <= set(names):
        return "AccessDenied"
    url = urlsplit(raw_path)
    pairs = sorted(parse_qsl(url.query, keep_blank_values=True))
    creq = (
        f"{method}\n{url.path}\n"
        + "&".join(f"{k}={v}" for k, v in pairs)
        + "\n"
        + "".join(f"{n}:{headers[n].strip()}\n" for n in names)
        + f"\n{signed}\n{headers['x-amz-content-sha256']}"
    )
    sts = (
        f"AWS4-HMAC-SHA256\n{headers['x-amz-date']}\n{day}/{region}/s3/aws4_request\n"
        + hashlib.sha256(creq.encode()).hexdigest()
    )
    k = ("AWS4" + secrets[key_id]).encode()
    for piece in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, piece.encode(), "sha256").digest()
    expected = hmac.new(k, sts.encode(), "sha256").hexdigest()
    return None if hmac.compare_digest(expected, signature) else "SignatureDoesNotMatch"


EMPTY = hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("path", "signature"),
    [
        ("/?lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        (
            "/?max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
)
def test_the_fake_verifies_the_requests_aws_publishes(path: str, signature: str) -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-content-sha256": EMPTY,
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
        "s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
        f"Signature={signature}",
    }
    secrets = {"AKIAIOSFODNN7EXAMPLE": _AWS_SECRET}
    assert signature_problem("GET", path, headers, secrets, "us-east-1") is None
    tampered = {**headers, "x-amz-date": "20130524T000001Z"}
    assert signature_problem("GET", path, tampered, secrets, "us-east-1") == (
        "SignatureDoesNotMatch"
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FakeSpaces:
    port: int = 0
    objects: dict[str, bytes] = field(default_factory=dict)
    served_instead: dict[str, bytes] = field(default_factory=dict)
    """Bytes sent for a key instead of its content (its ETag stays the true one)."""
    multipart: set[str] = field(default_factory=set)
    """Keys uploaded in parts: their ETag is not an MD5 of the content."""
    gets: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def upload(self, files: Mapping[str, bytes], revision: str = COMMIT) -> None:
        for name, data in files.items():
            self.objects[PREFIX + name] = data
        manifest = {
            "model_id": "Qwen/Qwen2.5-0.5B-Instruct",
            "revision": revision,
            "files": {n: {"sha256": sha256(d), "size": len(d)} for n, d in files.items()},
        }
        self.objects[PREFIX + MANIFEST] = json.dumps(manifest).encode()


@pytest.fixture
def spaces() -> Iterator[FakeSpaces]:
    state = FakeSpaces()

    class Handler(QuietHandler):
        def _error(self, status: int, code: str) -> None:
            body = f"<Error><Code>{code}</Code></Error>".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            problem = signature_problem("GET", self.path, headers, {ACCESS_KEY: SECRET_KEY}, REGION)
            if problem is not None:
                state.refused.append(problem)
                self._error(403, problem)
                return
            from urllib.parse import unquote

            key = unquote(urlsplit(self.path).path).lstrip("/")
            if key not in state.objects:
                self._error(404, "NoSuchKey")
                return
            true = state.objects[key]
            body = state.served_instead.get(key, true)
            etag = (
                f"{hashlib.md5(true, usedforsecurity=False).hexdigest()[:30]}ab-2"
                if key in state.multipart
                else hashlib.md5(true, usedforsecurity=False).hexdigest()
            )
            state.gets.append(key)
            self.send_response(200)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as port:
        state.port = port
        yield state


@pytest.fixture
def download(tmp_path: Path, spaces: FakeSpaces) -> Iterator[tuple[Path, Callable[..., Run]]]:
    path = python3_path(tmp_path)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "access_key_id").write_text(ACCESS_KEY)
    (creds / "secret_access_key").write_text(SECRET_KEY + "\n")
    model_dir = tmp_path / "models" / "Qwen2.5-0.5B-Instruct"

    def run(revision: str = COMMIT, credentials: Path = creds) -> Run:
        env = {
            "PATH": path,
            "HOME": str(tmp_path),
            "NO_PROXY": "127.0.0.1",
            "SPACES_BUCKET_URL": spaces.url,
            "SPACES_REGION": REGION,
            "SPACES_PREFIX": PREFIX,
            "SPACES_CREDENTIALS_DIR": str(credentials),
            "SPACES_SECRET_HINT": "kubectl -n vllm create secret generic spaces-model-source",
        }
        return run_download("Qwen/Qwen2.5-0.5B-Instruct", model_dir, revision, env)

    yield model_dir, run


def test_a_bucket_download_is_signed_verified_and_marked(
    download: tuple[Path, Callable[..., Run]], spaces: FakeSpaces
) -> None:
    model_dir, run = download
    spaces.upload(FILES)
    spaces.multipart.add(PREFIX + "model.safetensors")
    result = run()
    assert result.rc == 0, result.out
    assert spaces.refused == []
    for name, data in FILES.items():
        assert (model_dir / name).read_bytes() == data
    assert (model_dir / ".vllm-doks-verified").is_file()
    manifest = json.loads((model_dir / MANIFEST).read_text())
    assert manifest["revision"] == COMMIT
    assert manifest["source"] == f"{spaces.url}/{PREFIX}"
    assert set(spaces.gets) == {PREFIX + n for n in [*FILES, MANIFEST]}
    assert f"verified 3 files from {spaces.url}/{PREFIX}" in result.out
    assert not list(model_dir.rglob("*.part"))
    assert SECRET_KEY not in result.out and ACCESS_KEY not in result.out
    # The marker is trusted next time: no request at all.
    before = len(spaces.gets)
    assert run().rc == 0
    assert len(spaces.gets) == before


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart-etag", "md5-etag"])
def test_a_corrupt_object_fails_clearly_without_a_marker_and_a_retry_heals(
    download: tuple[Path, Callable[..., Run]], spaces: FakeSpaces, multipart: bool
) -> None:
    model_dir, run = download
    spaces.upload(FILES)
    key = PREFIX + "model.safetensors"
    if multipart:
        spaces.multipart.add(key)
    true = FILES["model.safetensors"]
    spaces.served_instead[key] = bytes([true[0] ^ 0xFF]) + true[1:]  # same size
    result = run()
    assert result.rc == 2, result.out
    # A multipart ETag says nothing about the content: the manifest's sha256 catches it;
    # a single-part one is an MD5, checked first.
    expected = "sha256 " if multipart else "md5 "
    assert f"VERIFICATION FAILED: model.safetensors: {expected}" in result.out
    assert "no marker written" in result.out
    assert not (model_dir / ".vllm-doks-verified").exists()
    assert not (model_dir / MANIFEST).exists()
    assert not (model_dir / "model.safetensors").exists()
    assert not list(model_dir.rglob("*.part"))
    assert not (model_dir / ".vllm-doks-lock").exists()

    del spaces.served_instead[key]
    gets = list(spaces.gets)
    healed = run()
    assert healed.rc == 0, healed.out
    # Files that were verified are not fetched again.
    assert spaces.gets[len(gets) :] == [PREFIX + MANIFEST, key]
    assert (model_dir / "model.safetensors").read_bytes() == true


def test_a_wrong_secret_is_refused_by_the_signature_check_and_never_printed(
    download: tuple[Path, Callable[..., Run]], spaces: FakeSpaces, tmp_path: Path
) -> None:
    model_dir, run = download
    spaces.upload(FILES)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "access_key_id").write_text(ACCESS_KEY)
    (wrong / "secret_access_key").write_text("not-the-secret")
    result = run(credentials=wrong)
    assert result.rc == 5, result.out
    assert "HTTP 403 SignatureDoesNotMatch" in result.out
    assert spaces.refused == ["SignatureDoesNotMatch"]
    assert "not-the-secret" not in result.out
    assert not (model_dir / ".vllm-doks-verified").exists()


def test_missing_credentials_name_the_secret_to_create(
    download: tuple[Path, Callable[..., Run]], spaces: FakeSpaces, tmp_path: Path
) -> None:
    model_dir, run = download
    spaces.upload(FILES)
    result = run(credentials=tmp_path / "absent")
    assert result.rc == 4, result.out
    assert "kubectl -n vllm create secret generic spaces-model-source" in result.out
    assert spaces.gets == [] and spaces.refused == []
    assert not (model_dir / ".vllm-doks-verified").exists()


def test_a_manifest_of_another_revision_is_refused(
    download: tuple[Path, Callable[..., Run]], spaces: FakeSpaces
) -> None:
    model_dir, run = download
    spaces.upload(FILES, revision="b" * 40)
    result = run(revision=COMMIT)
    assert result.rc == 3, result.out
    assert f"not {COMMIT}; refusing" in result.out
    assert spaces.gets == [PREFIX + MANIFEST]
    assert not (model_dir / ".vllm-doks-verified").exists()


def test_a_missing_manifest_is_a_clear_failure(
    download: tuple[Path, Callable[..., Run]], spaces: FakeSpaces
) -> None:
    model_dir, run = download
    result = run()
    assert result.rc == 5, result.out
    assert not (model_dir / ".vllm-doks-verified").exists()
    assert f"cannot read the manifest {spaces.url}/{PREFIX}{MANIFEST}" in result.out
    assert "NoSuchKey" in result.out


def test_an_unreachable_bucket_is_a_clear_failure(
    download: tuple[Path, Callable[..., Run]], spaces: FakeSpaces
) -> None:
    model_dir, run = download
    port = spaces.port
    spaces.port = free_port()  # nothing listens there
    result = run()
    spaces.port = port
    assert result.rc == 5, result.out
    assert "cannot read the manifest" in result.out and "Traceback" not in result.out
    assert not (model_dir / ".vllm-doks-verified").exists()


def test_the_manifest_command_describes_a_local_directory_for_the_upload(tmp_path: Path) -> None:
    model = tmp_path / "qwen"
    for name, data in FILES.items():
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(data)
    # huggingface-cli download --local-dir leaves its own bookkeeping: not part of the model.
    (model / ".cache" / "huggingface").mkdir(parents=True)
    (model / ".cache" / "huggingface" / "x.metadata").write_text("x")
    script = tmp_path / "fetch_model.py"
    script.write_text(script_text(FETCH_MODEL))
    proc = subprocess.run(
        [sys.executable, str(script), "manifest", str(model), "Qwen/Qwen2.5-0.5B-Instruct", COMMIT],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert proc.stdout.strip() == str(model / MANIFEST)
    manifest = json.loads((model / MANIFEST).read_text())
    assert manifest == {
        "model_id": "Qwen/Qwen2.5-0.5B-Instruct",
        "revision": COMMIT,
        "files": {n: {"sha256": sha256(d), "size": len(d)} for n, d in FILES.items()},
    }
