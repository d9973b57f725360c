"""compile-cache.sh run for real (/bin/sh, cp, curl) on temp directories standing in for the
NFS share and the pods' emptyDirs, with a local /health server standing in for vLLM; and the
pod parts the worker pool gets."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import validate_objects
from support import STORE, QuietHandler, k8s_app, serving

from vllm_doks.k8s import NfsModelStore, VllmWorkerPool, VllmWorkerPoolProps
from vllm_doks.k8s.compile_cache import LOCAL_CACHE_ROOT, compile_cache_key
from vllm_doks.k8s.scripts import COMPILE_CACHE, sh_command

needs_tools = pytest.mark.skipif(
    shutil.which("sh") is None or shutil.which("curl") is None, reason="needs sh and curl"
)


@dataclass
class Health:
    ready: bool = False
    port: int = 0


@pytest.fixture
def health() -> Iterator[Health]:
    state = Health()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.reply(200 if state.ready and self.path == "/health" else 503)

    with serving(Handler) as state.port:
        yield state


def seed(share: Path, local: Path) -> str:
    run = subprocess.run(
        sh_command(COMPILE_CACHE, "seed", str(share), str(local)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture
def publishers() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(share: Path, local: Path, port: int, keep: int = 2) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            sh_command(COMPILE_CACHE, "publish", str(share), str(local), str(port), "1", str(keep)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            import os
            import signal

            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 20) -> str:
    """Read the publisher's output until ``needle`` (it idles afterwards, by design)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not in {seen!r}")


def compile_into(local: Path, name: str = "rank_0_0/vllm_compile_cache.py") -> None:
    """What vLLM does on a cold compile: write files under VLLM_CACHE_ROOT."""
    path = local / "torch_compile_cache" / "abc1234567" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")


def generations(share: Path) -> list[Path]:
    return sorted(share.glob("gen-*"))


@needs_tools
def test_first_pod_publishes_after_health_and_the_next_pod_seeds_and_publishes_nothing(
    tmp_path: Path, health: Health, publishers: Callable[..., subprocess.Popen[str]]
) -> None:
    share = tmp_path / "share" / "key"
    pod_a = tmp_path / "a"
    assert "no cache" in seed(share, pod_a)
    publisher = publishers(share, pod_a, health.port)
    compile_into(pod_a)
    time.sleep(2.5)
    # Not published while vLLM is not healthy (still compiling).
    assert not share.exists() or generations(share) == []
    health.ready = True
    wait_for_line(publisher, "published")
    (gen,) = generations(share)
    assert (gen / ".vllm-doks-complete").is_file()
    assert (gen / "torch_compile_cache/abc1234567/rank_0_0/vllm_compile_cache.py").is_file()
    assert not (gen / ".vllm-doks-seeded").exists()
    assert not list(share.glob(".tmp-*"))
    assert publisher.poll() is None  # the sidecar stays up

    pod_b = tmp_path / "b"
    assert f"seeded {pod_b} from {gen}" in seed(share, pod_b)
    assert (pod_b / "torch_compile_cache/abc1234567/rank_0_0/vllm_compile_cache.py").is_file()
    quiet = publishers(share, pod_b, health.port)
    wait_for_line(quiet, "compiled nothing new")
    assert generations(share) == [gen]


@needs_tools
def test_a_new_vllm_hash_is_published_as_a_new_generation_and_old_ones_are_pruned(
    tmp_path: Path, health: Health, publishers: Callable[..., subprocess.Popen[str]]
) -> None:
    health.ready = True
    share = tmp_path / "share" / "key"
    for i in range(3):
        pod = tmp_path / f"pod{i}"
        seed(share, pod)
        # E.g. a rotated API key: vLLM hashes into a new directory and compiles again.
        compile_into(pod, f"rank_0_0/new-{i}.py")
        wait_for_line(publishers(share, pod, health.port), "published")
        time.sleep(1.1)  # generation names carry the second
    gens = generations(share)
    assert len(gens) == 2
    # The newest generation holds everything compiled so far (each pod seeded the previous).
    newest = gens[-1] / "torch_compile_cache/abc1234567/rank_0_0"
    assert {p.name for p in newest.iterdir()} == {"new-0.py", "new-1.py", "new-2.py"}


@needs_tools
def test_two_pods_publishing_at_once_give_two_complete_generations(
    tmp_path: Path, health: Health, publishers: Callable[..., subprocess.Popen[str]]
) -> None:
    share = tmp_path / "share" / "key"
    procs = []
    for name in ("x", "y"):
        pod = tmp_path / name
        seed(share, pod)
        compile_into(pod)
        procs.append(publishers(share, pod, health.port, 5))
    health.ready = True
    for proc in procs:
        wait_for_line(proc, "published")
    gens = generations(share)
    assert len(gens) == 2
    assert all((g / ".vllm-doks-complete").is_file() for g in gens)
    assert not list(share.glob(".tmp-*"))


@needs_tools
def test_an_incomplete_generation_is_never_seeded(tmp_path: Path) -> None:
    share = tmp_path / "share" / "key"
    half = share / "gen-9999999999-crashed"
    half.mkdir(parents=True)
    (half / "partial.py").write_text("{")
    out = seed(share, tmp_path / "pod")
    assert "no cache" in out
    assert not (tmp_path / "pod" / "partial.py").exists()


# --- the pod parts ---------------------------------------------------------------------------


def pool_objects(**props: Any) -> tuple[VllmWorkerPool, list[dict[str, Any]]]:
    chart = cdk8s.Chart(k8s_app(), "t")
    model = NfsModelStore(chart, "Models", STORE).add_model("Qwen/Qwen2.5-0.5B-Instruct")
    pool = VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu", **props)
    )
    return pool, list(cdk8s.Testing.synth(chart))


def test_the_pool_compiles_locally_and_seeds_and_publishes_through_its_own_rw_volume() -> None:
    pool, objs = pool_objects(compile_cache=True)
    assert validate_objects(objs) == []
    spec = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    vllm = spec["containers"][0]
    assert {"name": "VLLM_CACHE_ROOT", "value": LOCAL_CACHE_ROOT} in vllm["env"]
    # vLLM never writes the share: its mounts of the claim stay read-only.
    claim_mounts = [m for m in vllm["volumeMounts"] if m["name"] in ("models", "compile-cache")]
    assert all(m.get("readOnly") for m in claim_mounts)
    names = [c["name"] for c in spec["initContainers"]]
    assert names[-3:] == ["wait-for-model", "compile-cache-seed", "compile-cache-publish"]
    publish = spec["initContainers"][-1]
    assert publish["restartPolicy"] == "Always"  # a native sidecar
    assert "restartPolicy" not in spec["initContainers"][-2]
    assert pool.compile_cache is not None
    assert publish["command"][4:7] == [
        "publish",
        f"/compile-cache/.vllm-compile-cache/{pool.compile_cache.key}",
        LOCAL_CACHE_ROOT,
    ]
    volume = next(v for v in spec["volumes"] if v["name"] == "compile-cache")
    assert "readOnly" not in volume["persistentVolumeClaim"]


def test_off_by_default_on_the_construct() -> None:
    pool, objs = pool_objects()
    assert pool.compile_cache is None
    spec = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert all(not c["name"].startswith("compile-cache") for c in spec["initContainers"])


def test_the_key_changes_with_everything_the_compiled_result_depends_on() -> None:
    base: dict[str, Any] = {
        "model_id": "Qwen/Qwen2.5-7B-Instruct",
        "revision": None,
        "image": "vllm/vllm-openai:v0.18.0",
        "gpu_size": "gpu-h100x1-80gb",
        "tensor_parallel_size": 1,
        "quantization": None,
        "kv_cache_dtype": None,
        "vllm_args": ["--model", "/models/x"],
    }
    key = compile_cache_key(**base)
    assert key.startswith("Qwen2.5-7B-Instruct-gpu-h100x1-80gb-tp1-noquant-")
    assert compile_cache_key(**base) == key  # no per-pod or per-run input
    for change in (
        {"revision": "a" * 40},
        {"image": "vllm/vllm-openai:v0.18.1"},
        {"gpu_size": "gpu-h200x1-141gb"},
        {"tensor_parallel_size": 8},
        {"quantization": "fp8"},
        {"kv_cache_dtype": "fp8"},
        {"vllm_args": ["--model", "/models/x", "--max-model-len", "4096"]},
    ):
        assert compile_cache_key(**(base | change)) != key, change
