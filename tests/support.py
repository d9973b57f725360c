"""Helpers shared by the test modules (one copy instead of one per file): the seed's values,
charts to build constructs in, finding synthesized objects, and running the CLI in process.

Schema validation and the control plane fixture stay in conftest.py.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import FIXTURES, load_yaml_dir

import vllm_doks  # noqa: F401  (wires Node 22 for jsii before any jsii library loads)
from vllm_doks import contracts
from vllm_doks.cli import main
from vllm_doks.config import ArchitectureConfig, InfraOutputs, load_config
from vllm_doks.k8s import NfsModelStoreProps
from vllm_doks.k8s.serving_chart import synth_serving_chart
from vllm_doks.preflight import kubernetes_problems

Obj = dict[str, Any]
QWEN = "Qwen/Qwen2.5-0.5B-Instruct"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GPU_POOL = "vllm-gpu-h100"
STORE = NfsModelStoreProps(nfs_server="10.200.0.5", nfs_path="/1234567/abcd", capacity_gi=1000)

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


def new_chart(**kwargs: Any) -> cdk8s.Chart:
    """An empty chart in a test app, to build constructs in."""
    return cdk8s.Chart(cdk8s.Testing.app(), "test", **kwargs)


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


def run_main(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``app.py <args>`` run in this process (no interpreter or jsii start per call), in
    ``cwd``, with the caller's environment minus our own variables plus ``env``: the same
    result as the subprocess a user runs, which test_app.py keeps for the paths only a fresh
    process proves (the cold two-process synth, what a fresh process loads)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_DOKS_", "CDK"))}
    full_env.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        rc = main(list(args), env=full_env)
    return subprocess.CompletedProcess(["app.py", *args], rc, out.getvalue(), err.getvalue())


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


class lazy_module:
    """The module ``name``, imported on the first public attribute read (collecting a test file
    then costs nothing; pytest's look for fixtures and markers reads only private names)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)


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
