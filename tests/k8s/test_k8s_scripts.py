"""The pods' shell scripts, run for real with /bin/sh against local stand-ins.

* prestop-drain.sh polls a local HTTP server serving Prometheus text that the test changes.
* wait-for-model.sh watches a temp directory for the completion marker.
* download-model.sh runs with a fake ``python3`` first on PATH that stands in for
  huggingface_hub, so locking, the marker and failure handling are exercised offline.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import QuietHandler, env_with_fake_python, serving

from vllm_doks.k8s.scripts import DOWNLOAD_MODEL, PRESTOP_DRAIN, WAIT_FOR_MODEL, sh_command

pytestmark = pytest.mark.skipif(
    shutil.which("sh") is None or shutil.which("curl") is None, reason="needs sh and curl"
)

IDLE = "vllm:num_requests_running 0.0\nvllm:num_requests_waiting 0.0\n"


def metrics(running: list[float], waiting: list[float]) -> str:
    """Prometheus text as vLLM writes it: HELP/TYPE lines, one sample per label set."""
    lines = [
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
    ]
    lines += [
        f'vllm:num_requests_running{{engine="0",model_name="m{i}"}} {v}'
        for i, v in enumerate(running)
    ]
    lines += ["# TYPE vllm:num_requests_waiting gauge"]
    lines += [
        f'vllm:num_requests_waiting{{engine="0",model_name="m{i}"}} {v}'
        for i, v in enumerate(waiting)
    ]
    lines += ["vllm:num_requests_running_total_not_a_gauge 99.0"]
    return "\n".join(lines) + "\n"


@dataclass
class MetricsServer:
    """A /metrics endpoint whose body, status and delay the test changes while it runs."""

    body: str = IDLE
    status: int = 200
    delay: float = 0.0
    port: int = 0


@pytest.fixture
def serve_metrics() -> Iterator[Callable[[], MetricsServer]]:
    """Starts local metrics servers on random ports; all are stopped after the test."""
    with contextlib.ExitStack() as servers:

        def start() -> MetricsServer:
            state = MetricsServer()

            class Handler(QuietHandler):
                def do_GET(self) -> None:
                    if state.delay:
                        time.sleep(state.delay)
                    self.reply(state.status, state.body.encode(), "text/plain; version=0.0.4")

            state.port = servers.enter_context(serving(Handler))
            return state

        yield start


@pytest.fixture
def metrics_server(serve_metrics: Callable[[], MetricsServer]) -> MetricsServer:
    return serve_metrics()


def start_drain(
    port: int, deadline: int, settle: int = 0, interval: int = 1
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        sh_command(PRESTOP_DRAIN, str(port), str(deadline), str(settle), str(interval)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- prestop-drain.sh ---------------------------------------------------------------------


def test_drain_waits_while_requests_run_or_wait_and_exits_once_both_are_zero(
    metrics_server: MetricsServer,
) -> None:
    # Two label sets: 0 + 1 running must count as busy, not as "the last line says 0".
    metrics_server.body = metrics(running=[0.0, 1.0], waiting=[0.0, 0.0])
    proc = start_drain(metrics_server.port, deadline=30)
    time.sleep(1.5)
    assert proc.poll() is None, "exited while a request was still running"

    metrics_server.body = metrics(running=[0.0, 0.0], waiting=[2.0, 0.0])
    time.sleep(1.5)
    assert proc.poll() is None, "exited while requests were still waiting"

    metrics_server.body = metrics(running=[0.0, 0.0], waiting=[0.0, 0.0])
    rc, out = finish(proc, timeout=10)  # well before its 30 s deadline
    assert rc == 0
    assert "draining: running/waiting = 1 0" in out
    assert "draining: running/waiting = 0 2" in out
    assert "no requests running or waiting" in out


UNUSABLE = {
    "garbage": ("<html>this is not Prometheus text</html>", 200),
    "waiting-missing": ("vllm:num_requests_running 0.0\n", 200),  # not proof of idle
    "nan": ("vllm:num_requests_running NaN\nvllm:num_requests_waiting 0.0\n", 200),
    "http-500": (IDLE, 500),
    # As if /metrics ever required the API key: refused, so not proof of idle either.
    "http-401": ('{"error": "Unauthorized"}', 401),
}


def test_drain_gives_up_at_its_deadline_when_metrics_are_unusable(
    serve_metrics: Callable[[], MetricsServer],
) -> None:
    # One server and one script per case, all at once: the deadline is the slow part.
    procs: dict[str, subprocess.Popen[str]] = {}
    for case, (body, status) in UNUSABLE.items():
        server = serve_metrics()
        server.body, server.status = body, status
        procs[case] = start_drain(server.port, deadline=2)
    for case, proc in procs.items():
        rc, out = finish(proc, timeout=10)
        assert rc == 0, case
        # It ended because of its deadline (not of an idle reading), and not by hanging.
        assert "deadline of 2s reached" in out, case


def test_drain_deadline_bounds_a_hanging_endpoint(metrics_server: MetricsServer) -> None:
    metrics_server.delay = 30  # answers long after the deadline; curl --max-time must cut it
    # Ends long before the endpoint would answer (30 s): curl --max-time cut the request.
    rc, _ = finish(start_drain(metrics_server.port, deadline=2), timeout=15)
    assert rc == 0


def test_drain_exits_at_once_when_nothing_listens() -> None:
    rc, out = finish(start_drain(free_port(), deadline=30), timeout=10)  # not its deadline
    assert rc == 0
    assert "nothing to drain" in out


def test_drain_settles_before_counting_but_not_past_the_deadline(
    metrics_server: MetricsServer,
) -> None:
    started = time.monotonic()
    rc, _ = finish(start_drain(metrics_server.port, deadline=30, settle=1), timeout=10)
    assert rc == 0
    assert time.monotonic() - started >= 1  # it settled first (and did not wait 30 s)

    # A settle time longer than the deadline is cut to the deadline.
    metrics_server.body = metrics(running=[3.0], waiting=[0.0])
    rc, _ = finish(start_drain(metrics_server.port, deadline=1, settle=60), timeout=10)
    assert rc == 0


# --- wait-for-model.sh --------------------------------------------------------------------


def test_wait_for_model_blocks_until_the_marker_exists(tmp_path: Path) -> None:
    marker = tmp_path / "Qwen2.5-0.5B-Instruct" / ".vllm-doks-verified"
    proc = subprocess.Popen(
        sh_command(WAIT_FOR_MODEL, str(marker), "0.2", "Job model-download"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.0)
    assert proc.poll() is None, "did not wait for the marker"
    marker.parent.mkdir()
    (marker.parent / "model.safetensors").write_bytes(b"half")
    time.sleep(0.5)
    assert proc.poll() is None, "a model directory without the marker is not complete"

    marker.write_text("done\n")
    rc, out = finish(proc, timeout=5)
    assert rc == 0
    waits = [line for line in out.splitlines() if "does not exist yet" in line]
    assert len(waits) >= 3, "should log each check it waits on"
    assert "Job model-download" in waits[0]
    assert "model is complete" in out.splitlines()[-1]


def test_wait_for_model_returns_at_once_when_the_model_is_there(tmp_path: Path) -> None:
    marker = tmp_path / ".vllm-doks-verified"
    marker.write_text("done\n")
    rc, _ = finish(subprocess.Popen(sh_command(WAIT_FOR_MODEL, str(marker)), text=True), 5)
    assert rc == 0


def test_wait_for_model_needs_a_marker_path() -> None:
    proc = subprocess.Popen(sh_command(WAIT_FOR_MODEL, ""), stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=5)
    assert proc.returncode == 64
    assert "usage" in err


# --- download-model.sh ----------------------------------------------------------------------

FAKE_PYTHON = """#!/bin/sh
# Stands in for `python3 -c <snapshot_download>`: records the call, writes a weight file.
echo "$MODEL_ID $MODEL_DIR $MAX_WORKERS" >>"$FAKE_CALLS"
sleep "${FAKE_SECONDS:-0}"
if [ -n "${FAKE_FAIL:-}" ]; then exit 3; fi
echo weights >"$MODEL_DIR/model.safetensors"
"""


@dataclass
class Downloader:
    root: Path
    calls: Path
    env: dict[str, str]

    @property
    def model_dir(self) -> Path:
        return self.root / "Qwen2.5-0.5B-Instruct"

    @property
    def marker(self) -> Path:
        return self.model_dir / ".vllm-doks-verified"

    @property
    def lock(self) -> Path:
        return self.model_dir / ".vllm-doks-lock"

    def start(self, stale: int = 120, poll: str = "0.2", **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            sh_command(
                DOWNLOAD_MODEL,
                "Qwen/Qwen2.5-0.5B-Instruct",
                str(self.model_dir),
                "4",
                str(stale),
                "0.3",  # heartbeat: several per second of staleness, whatever date +%s rounds
                poll,
            ),
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def call_count(self) -> int:
        return len(self.calls.read_text().splitlines()) if self.calls.exists() else 0


@pytest.fixture
def downloader(tmp_path: Path) -> Downloader:
    env = env_with_fake_python(tmp_path, FAKE_PYTHON)
    calls = Path(env["FAKE_CALLS"])
    root = tmp_path / "models"
    root.mkdir()
    return Downloader(root=root, calls=calls, env=env)


def test_download_writes_the_marker_last_and_releases_the_lock(downloader: Downloader) -> None:
    rc, out = finish(downloader.start(), timeout=10)
    assert rc == 0, out
    assert downloader.calls.read_text().split() == [
        "Qwen/Qwen2.5-0.5B-Instruct",
        str(downloader.model_dir),
        "4",
    ]
    assert (downloader.model_dir / "model.safetensors").exists()
    assert downloader.marker.exists()
    assert not downloader.lock.exists()
    assert not list(downloader.model_dir.glob(".vllm-doks-verified.tmp*"))


def test_download_is_skipped_when_the_model_is_complete(downloader: Downloader) -> None:
    downloader.model_dir.mkdir()
    downloader.marker.write_text("done\n")
    rc, out = finish(downloader.start(), timeout=10)
    assert rc == 0
    assert downloader.call_count() == 0
    assert "already complete" in out


def test_concurrent_downloads_fetch_the_model_once(downloader: Downloader) -> None:
    procs = [downloader.start(FAKE_SECONDS="1.5") for _ in range(3)]
    results = [finish(p, timeout=20) for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0], results
    assert downloader.call_count() == 1
    assert downloader.marker.exists()
    assert not downloader.lock.exists()
    assert sum("completed by another downloader" in out for _, out in results) == 2


def test_a_stale_lock_of_a_dead_downloader_is_broken(downloader: Downloader) -> None:
    downloader.lock.mkdir(parents=True)
    (downloader.lock / "owner").write_text("model-download-x7k2p-1\n")
    (downloader.lock / "heartbeat").write_text("41\n")
    rc, out = finish(downloader.start(stale=1), timeout=15)
    assert rc == 0, out
    assert "lock held by model-download-x7k2p-1 shows no heartbeat" in out
    assert downloader.call_count() == 1
    assert downloader.marker.exists()
    assert not downloader.lock.exists()


def test_a_live_lock_is_respected(downloader: Downloader) -> None:
    holder = downloader.start(FAKE_SECONDS="3")
    time.sleep(1.0)
    assert downloader.lock.exists()
    # Its heartbeat (every 0.3 s here) keeps a waiter with a 2 s staleness limit from breaking in.
    waiter = downloader.start(stale=2)
    results = [finish(holder, timeout=15), finish(waiter, timeout=15)]
    assert [rc for rc, _ in results] == [0, 0]
    assert downloader.call_count() == 1
    assert "breaking" not in results[1][1]


def test_a_failed_download_leaves_no_marker_and_no_lock(downloader: Downloader) -> None:
    rc, _ = finish(downloader.start(FAKE_FAIL="1"), timeout=10)
    assert rc != 0
    assert not downloader.marker.exists()
    assert not downloader.lock.exists()
    # The Job's next attempt downloads again.
    rc, _ = finish(downloader.start(), timeout=10)
    assert rc == 0
    assert downloader.call_count() == 2
    assert downloader.marker.exists()
