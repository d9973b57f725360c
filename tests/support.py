"""Helpers shared by the test modules (one copy instead of one per file): the seed's values,
charts to build constructs in, finding synthesized objects, and running the CLI in process.

Schema validation and the control plane fixture stay in conftest.py.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import cdk8s
import pytest
from conftest import FIXTURES, REPO, load_yaml_dir

import vllm_doks  # noqa: F401  (wires Node 22 for jsii before any jsii library loads)
from vllm_doks import contracts
from vllm_doks.cli import main
from vllm_doks.config import ArchitectureConfig, InfraOutputs, load_config
from vllm_doks.k8s import NfsModelStoreProps
from vllm_doks.k8s.serving_chart import synth_serving_chart
from vllm_doks.preflight import kubernetes_problems

if TYPE_CHECKING:
    import cdktf

Obj = dict[str, Any]
APP = REPO / "app.py"
QWEN = "Qwen/Qwen2.5-0.5B-Instruct"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GPU_POOL = "vllm-gpu-h100"
STORE = NfsModelStoreProps(nfs_server="10.200.0.5", nfs_path="/1234567/abcd", capacity_gi=1000)

#: Stack 1's hand-off outputs as an outputs file gives them (values of a deployment).
STACK_ONE_OUTPUTS: dict[str, str] = {
    "nfs_host": "10.200.0.12",
    "nfs_mount_path": "/7788/share-abc",
    "nfs_size_gb": "500",
    "gpu_node_pool_name": "prod-gpu-h100",
}

#: The seed's Stack 1 inputs (its terraform.tfvars example).
SEED_TFVARS: dict[str, Any] = {
    "name_prefix": "my-vllm",
    "region": "nyc2",
    "vpc_cidr": "10.200.0.0/22",
    "doks_cluster_subnet": "172.16.0.0/20",
    "doks_service_subnet": "192.168.0.0/22",
    "nfs_size_gb": 1000,
    "gpu_node_count": 2,
}

#: The seed's Stack 2 outputs (its outputs.tf), as the default configuration gives them.
SEED_STACK2_OUTPUTS: dict[str, str | int] = {
    "namespace": "vllm",
    "service_name": "vllm",
    "service_port": 8000,
    "gateway_name": "vllm-gateway",
    "model_id": "Qwen/Qwen2.5-0.5B-Instruct",
    "model_name": "Qwen2.5-0.5B-Instruct",
    "replicas": 1,
    "quantization": "",
}

#: The README's LoRA example (Rollouts and LoRA adapters): one model with two adapters.
README_ADAPTERS_YAML = """\
models:
  - id: Qwen/Qwen2.5-7B-Instruct
    served_name: qwen
    adapters:
      - {id: acme/qwen2.5-7b-instruct-sql-lora, name: sql, rank: 16}
      - {id: acme/qwen2.5-7b-instruct-support-lora, name: support, rank: 64,
         base_model: Qwen/Qwen2.5-7B-Instruct}
"""


@functools.cache
def load_example(name: str) -> Any:
    """``examples/<name>.py`` as a module (its ``__main__`` part does not run), to build its
    charts in a test app."""
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: This test process's folder for the test apps' output, removed when the process exits.
#: cdk8s' ``Testing.app()``/``Testing.chart()`` and cdktf's ``Testing.app()`` each make a new
#: folder in the system temp directory per call and never remove it (cdk8s 2.70
#: ``lib/testing.js``, cdktf 0.21 ``lib/testing/index.js``): this project's CI machine had
#: 56,387 of them in /tmp when that was noticed.
_TEST_APP_OUTDIRS = tempfile.TemporaryDirectory(prefix="vllm-doks-test-apps-")


def app_outdir() -> str:
    """A new empty folder in this process's test output folder (see above)."""
    return tempfile.mkdtemp(dir=_TEST_APP_OUTDIRS.name)


def k8s_app() -> cdk8s.App:
    """``cdk8s.Testing.app()`` writing into :func:`app_outdir` instead of a folder it leaks."""
    return cdk8s.Testing.app(outdir=app_outdir())


def tf_app() -> cdktf.App:
    """``cdktf.Testing.app()`` writing into :func:`app_outdir` instead of a folder it leaks."""
    import cdktf  # here: most test modules never load the cloud layer's libraries

    return cdktf.Testing.app(outdir=app_outdir())


def new_chart(**kwargs: Any) -> cdk8s.Chart:
    """An empty chart in a test app, to build constructs in."""
    return cdk8s.Chart(k8s_app(), "test", **kwargs)


def synth(chart: cdk8s.Chart) -> list[Obj]:
    return list(cdk8s.Testing.synth(chart))


def _named(obj: Obj, name: str) -> bool:
    actual = str(obj["metadata"]["name"])
    return actual == name or (
        obj["kind"] == "Job" and re.fullmatch(re.escape(name) + r"-[0-9a-f]{8}", actual) is not None
    )


def names(objs: Iterable[Obj]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objs]


def kinds(objs: Iterable[Obj]) -> list[str]:
    return [o["kind"] for o in objs]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    """The one object of ``kind`` named ``name``; a Job also by its base name (download Jobs
    are ``<base name>-<hash of the pod template>``)."""
    matches = [o for o in objs if o["kind"] == kind and _named(o, name)]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found in {names(objs)}"
    return matches[0]


def _app_env(env: dict[str, str] | None) -> dict[str, str]:
    """The caller's environment minus our own variables (config and CLI outdirs), plus ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_DOKS_", "CDK"))}
    full_env.update(env or {})
    return full_env


def run_main(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``app.py <args>`` run in this process (no interpreter or jsii start per call), in
    ``cwd``, with the caller's environment minus our own variables plus ``env``: the same
    result as :func:`run_app`'s subprocess, which the tests keep for the paths only a fresh
    process proves (the cold two-process synth, what a fresh process loads, how it exits)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        rc = main(list(args), env=_app_env(env))
    return subprocess.CompletedProcess(["app.py", *args], rc, out.getvalue(), err.getvalue())


def python_hooks(folder: Path, source: str, cores: int | None = None) -> dict[str, str]:
    """The environment that makes a fresh interpreter (and the processes it spawns) run
    ``source`` at start: it becomes ``folder/sitecustomize.py``, ``folder`` goes first on
    ``PYTHONPATH``. With ``cores``, the interpreter sees that many usable cores
    (``os.sched_getaffinity``), e.g. 4 for the default synth's second process."""
    folder.mkdir()
    if cores is not None:
        source = f"import os\nos.sched_getaffinity = lambda pid: set(range({cores}))\n{source}"
    (folder / "sitecustomize.py").write_text(source)
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    }


def run_python(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python <args>`` in a fresh interpreter, in ``cwd``, with :func:`run_main`'s
    environment."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_app_env(env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_app(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``app.py <args>`` in a fresh interpreter (:func:`run_python`)."""
    return run_python(cwd, str(APP), *args, env=env)


def start_app(
    cwd: Path, *args: str, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """:func:`run_app`, started and left running (its output piped) for a test that acts on
    it meanwhile; ``popen`` goes to ``subprocess.Popen``."""
    return subprocess.Popen(
        [sys.executable, str(APP), *args],
        cwd=cwd,
        env=_app_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@functools.cache
def _synthesized(base: Path, args: tuple[str, ...]) -> Path:
    out = base / f"synth-{len(os.listdir(base))}"
    out.mkdir()
    flags = ["--cloud-outdir", str(out / "cdktf.out"), "--k8s-outdir", str(out / "dist")]
    assert main(["synth", *flags, *args], env={}) == 0, args
    return out


def synthesized(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Path:
    """A folder with ``cdktf.out/`` and ``dist/`` of ``app.py synth <args>``, synthesized once
    per session for each distinct ``args``; callers copy it (``copy_of``) before changing it."""
    base = tmp_path_factory.getbasetemp() / "synthesized"
    base.mkdir(exist_ok=True)
    return _synthesized(base, tuple(args))


def copy_of(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- running the download scripts for real, against fakes on 127.0.0.1 ----------------------


def python3_path(tmp_path: Path) -> str:
    """A PATH whose ``python3`` is this interpreter (as the vLLM image's python3 has what the
    download needs: huggingface_hub here, and the standard library)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def run_download(model_id: str, model_dir: Path, revision: str, env: dict[str, str]) -> Run:
    """Run download-model.sh with the fetch program, as the download Job does (2 workers,
    a 1 s heartbeat and poll); the exit status and everything it printed."""
    from vllm_doks.k8s.scripts import DOWNLOAD_MODEL, FETCH_MODEL, script_text, sh_command

    proc = subprocess.run(
        sh_command(
            DOWNLOAD_MODEL,
            model_id,
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


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler of the tests' local HTTP servers: logs nothing, replies in one call."""

    def reply(self, status: int, body: bytes = b"", content_type: str | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server of ``handler`` on a free port of 127.0.0.1 (yields the port),
    stopped on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Run:
    """Exit status and output of a script run."""

    rc: int
    out: str


def kubernetes_stack_json(tmp_path: Path, config: Any) -> tuple[Any, dict[str, Any]]:
    """Stack 2 via Terraform for ``config`` (with Stack 1's example outputs): the serving chart
    it was built from and the stack's ``cdk.tf.json``."""
    import json

    from cdktf import App

    from vllm_doks.cloud.kubernetes_stack import (
        KubernetesObjectsStackProps,
        StackOneValues,
        VllmKubernetesStack,
    )
    from vllm_doks.config import InfraOutputs
    from vllm_doks.k8s.serving_chart import VllmServingChart

    examples = InfraOutputs.examples_for(config)

    def build(app: cdk8s.App, values: StackOneValues) -> None:
        VllmServingChart(app, "vllm", config, examples)

    chart = VllmServingChart(cdk8s.App(), "vllm", config, examples)
    app = App(outdir=str(tmp_path))
    VllmKubernetesStack(
        app, "k8s", KubernetesObjectsStackProps(build_chart=build, outputs=chart.outputs)
    )
    app.synth()
    return chart, json.loads((tmp_path / "stacks" / "k8s" / "cdk.tf.json").read_text())


# --- a fake Hugging Face Hub, for the download scripts run for real -------------------------


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class FakeHub:
    """One repository on a fake Hugging Face Hub (served by :func:`fake_hub`), speaking the
    endpoints huggingface_hub 0.36 calls:

    * ``GET /api/models/<repo>/revision/<rev>[?blobs=True]``: ``sha`` and ``siblings`` with
      ``blobId``, ``size`` and, for LFS files, ``lfs.sha256``/``lfs.size``/``lfs.pointerSize``;
    * ``HEAD``/``GET /<repo>/resolve/<rev>/<file>`` with ``X-Repo-Commit``, ``ETag`` and
      ``Content-Length``.

    The listing is computed from the true content; ``served_instead`` makes the server send
    other bytes for a file, as a corrupted mirror or a man in the middle would."""

    repo: str
    files: dict[str, bytes]
    lfs: frozenset[str]
    """Names of the files stored in LFS (listed with their sha256)."""
    commit: str = "a" * 40
    port: int = 0
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
        if name in self.lfs:
            entry["blobId"] = git_blob_sha1(b"version https://git-lfs ... pointer")
            entry["lfs"] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 134,
            }
        else:
            entry["blobId"] = git_blob_sha1(data)
        return entry

    def environment(self, tmp_path: Path) -> dict[str, str]:
        """Environment of a download run against this hub: ``python3`` on ``PATH`` is this
        interpreter (it has huggingface_hub), as in the vLLM image."""
        return {
            "PATH": python3_path(tmp_path),
            "HOME": str(tmp_path),
            "HF_HOME": str(tmp_path / "hf_home"),
            "HF_ENDPOINT": self.endpoint,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "NO_PROXY": "127.0.0.1",
        }


@contextlib.contextmanager
def fake_hub(state: FakeHub) -> Iterator[FakeHub]:
    """Serve ``state`` on 127.0.0.1 (a free port, set on ``state.port``) while in the block."""

    class Handler(QuietHandler):
        def _file(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            prefix = f"/{state.repo}/resolve/"
            if not path.startswith(prefix):
                self.send_error(404)
                return
            _, _, name = path[len(prefix) :].partition("/")
            if name not in state.files:
                self.send_error(404)
                return
            true = state.files[name]
            body = state.served_instead.get(name, true)
            etag = hashlib.sha256(true).hexdigest() if name in state.lfs else git_blob_sha1(true)
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
            prefix = f"/api/models/{state.repo}/revision/"
            if url.path.startswith(prefix) or url.path == f"/api/models/{state.repo}":
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
                        "id": state.repo,
                        "modelId": state.repo,
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

    with serving(Handler) as port:
        state.port = port
        yield state


# --- vLLM's command line, as vllm==0.18.0 parses it (tests/fixtures' extract) --------------

VLLM_OPTIONS = json.loads((FIXTURES / "vllm-0.18.0-serve-options.json").read_text("utf-8"))

#: How ``vllm serve`` parses the values of the options we emit (vllm==0.18.0
#: engine/arg_utils.py and config dataclasses: int / float / str fields; the choice lists are
#: in the extract).
VALUE_KINDS = {
    contracts.VLLM_FLAG_MODEL: str,
    contracts.VLLM_FLAG_SERVED_MODEL_NAME: str,
    contracts.VLLM_FLAG_QUANTIZATION: "choice",
    contracts.VLLM_FLAG_SAFETENSORS_LOAD_STRATEGY: str,
    contracts.VLLM_FLAG_PORT: int,
    contracts.VLLM_FLAG_SHUTDOWN_TIMEOUT: int,
    contracts.VLLM_FLAG_TENSOR_PARALLEL_SIZE: int,
    contracts.VLLM_FLAG_MAX_MODEL_LEN: int,
    contracts.VLLM_FLAG_KV_CACHE_DTYPE: "choice",
    contracts.VLLM_FLAG_GPU_MEMORY_UTILIZATION: float,
    contracts.VLLM_FLAG_MAX_LORAS: int,
    contracts.VLLM_FLAG_MAX_LORA_RANK: "choice",
}
SWITCHES = {contracts.VLLM_FLAG_ALLOW_DEPRECATED_QUANTIZATION, contracts.VLLM_FLAG_ENABLE_LORA}
#: Options taking one or more values (nargs "+"), each checked as vLLM's LoRAParserAction
#: reads it: ``name=path`` when it has '=' and no ',' (else vLLM parses it as JSON).
LISTS = {contracts.VLLM_FLAG_LORA_MODULES}


def vllm_parse_problems(args: list[str]) -> list[str]:
    """What vLLM 0.18.0's parser would refuse in ``args`` (per the extract)."""
    problems = []
    options = set(VLLM_OPTIONS["options"])
    i = 0
    while i < len(args):
        flag = args[i]
        if flag not in options:
            problems.append(f"{flag}: not an option of vllm serve {VLLM_OPTIONS['vllm_version']}")
            i += 1
            continue
        if flag in SWITCHES:
            i += 1
            continue
        if flag in LISTS:
            i += 1
            values = list(itertools.takewhile(lambda a: not a.startswith("--"), args[i:]))
            problems += [
                f"{flag} {v}: not name=path (one '=', no ',')"
                for v in values
                if v.count("=") != 1 or "," in v or v.startswith("=") or v.endswith("=")
            ]
            problems += [f"{flag}: no value"] if not values else []
            i += len(values)
            continue
        kind = VALUE_KINDS.get(flag)
        if kind is None:
            problems.append(f"{flag}: no value kind recorded in this test")
            i += 2
            continue
        value = args[i + 1]
        if kind == "choice":
            if value not in [str(c) for c in VLLM_OPTIONS["choices"][flag]]:
                problems.append(f"{flag} {value}: not one of vLLM's choices")
        elif kind is not str:
            try:
                kind(value)  # type: ignore[operator]
            except ValueError:
                problems.append(f"{flag} {value}: not a {kind}")
        i += 2
    return problems


# --- configurations, synthesized as the app does -------------------------------------------

#: Stack 1 outputs for the configuration tests.
CONFIG_INFRA = InfraOutputs("10.200.0.7", "/123456/abc", 1000, "my-vllm-gpu-h100")


def config_from(tmp_path: Path, text: str, **env: str) -> ArchitectureConfig:
    path = tmp_path / "vllm.yaml"
    path.write_text(text)
    return load_config(path, env={f"VLLM_DOKS_{k.upper()}": v for k, v in env.items()})


def synth_config(
    tmp_path: Path, config: ArchitectureConfig, name: str = "dist"
) -> list[dict[str, Any]]:
    problems = kubernetes_problems(config, CONFIG_INFRA)
    assert not problems, problems.items
    synth_serving_chart(config, CONFIG_INFRA, tmp_path / name)
    return load_yaml_dir(tmp_path / name)


def named(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def env_with_fake_python(tmp_path: Path, script: str) -> dict[str, str]:
    """This process's environment with ``script`` as the ``python3`` on PATH (standing in for
    the image's), which may append to the file ``$FAKE_CALLS`` (``tmp_path/calls``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(script)
    fake.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_CALLS": str(tmp_path / "calls"),
    }


# --- the smoke test's counterpart: a chat completions endpoint on 127.0.0.1 ------------

needs_sh_curl = pytest.mark.skipif(
    shutil.which("sh") is None or shutil.which("curl") is None, reason="needs sh and curl"
)
KEY = "sk-test-0123456789abcdef"
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "Qwen2.5-0.5B-Instruct",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ready"}}],
}


@dataclass
class FakeOpenAI:
    port: int = 0
    unavailable_first: int = 0
    """Answer this many requests with 503 first (no ready backend behind the Gateway)."""
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"


@contextlib.contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that records each request and answers
    as a Gateway in front of vLLM would (503 first if asked, 401 without the key)."""
    state = FakeOpenAI()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "content_type": self.headers.get("Content-Type"),
                    "canary": self.headers.get("x-vllm-doks-canary"),
                    "json": json.loads(body),
                }
            )
            if len(state.requests) <= state.unavailable_first:
                status, payload = 503, {"error": "no healthy upstream"}
            elif self.headers.get("Authorization") != f"Bearer {KEY}":
                status, payload = 401, {"error": "Unauthorized"}
            elif self.path != "/v1/chat/completions":
                status, payload = 404, {"error": "not found"}
            else:
                status, payload = 200, COMPLETION
            self.reply(status, json.dumps(payload).encode(), "application/json")

    with serving(Handler) as state.port:
        yield state


#: The rollout tests' canary: a second entry serving the same name, at a weight.
CANARY = """
models:
  - id: Qwen/Qwen2.5-7B-Instruct
    served_name: qwen
  - id: Qwen/Qwen2.5-7B-Instruct-1M
    served_name: qwen
    canary: {{of: vllm, weight: {weight}{extra}}}
"""
