"""Load the jsii libraries a synth needs into the jsii Node process from a thread of their own,
while the caller's thread imports the same libraries' Python code. For the CLI (``app.py``,
:mod:`vllm_doks.cli`), not for a library: nothing here runs unless :func:`start` was called.

Importing a jsii library does two things in turn: its ``_jsii`` module asks the Node process to
load the library's assembly (Node's work: cdk8s 35 ms, cdk8s-plus-28 45 ms, cdktf 140 ms, the
DigitalOcean provider 190 ms on this 2-core machine), then Python runs the library's generated
classes (cdk8s-plus-28's alone some 110 ms). Done in turn, each process idles while the other
works, and a one-layer synth waited on them one after the other. Here the Node process starts
at once and the thread sends it every assembly the synth will need (:func:`add`), in the order
given (each after its dependencies), while the caller's own load requests for those assemblies
return at once: the caller's thread runs the libraries' Python code meanwhile, and waits only
at its first other jsii request (an object, a call) for the loads still under way. Measured
(``make bench``): the Kubernetes-only synth ~90 ms sooner, i.e. at its floor instead of ~1.2x.

The jsii Node process answers one request at a time on one pipe, so every request goes through
:class:`_Gate` (installed as the jsii kernel's provider): another thread's request other than a
load the thread took waits until the thread has sent every load it was given, and no two
requests ever overlap (one lock around each). An assembly the thread was not given (a CRD
binding a configuration option needs) is loaded by its importer, after the thread's loads.
If one of the thread's loads fails, the next request of another thread raises that error.

A library's assembly is read from its generated ``_jsii/__init__.py`` (``jsii.JSIIAssembly.load(
name, version, __name__[0:-6], tarball)``, jsii-pacmak's layout), without importing it;
tests/app/test_jsii_loading.py pins that for every library the layers load.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from vllm_doks._node import node_problem


@dataclass(frozen=True)
class Assembly:
    """A jsii library's assembly, as its import asks the Node process to load it."""

    name: str
    version: str
    tarball: str


def assembly_of(module: str) -> Assembly:
    """The assembly ``import module`` loads (a jsii library's top package, e.g. ``cdk8s``),
    read from its generated ``_jsii/__init__.py`` without importing the library. Raises
    ``LookupError`` if ``module`` is not laid out that way."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"{module}: not an installed package")
    folder = Path(next(iter(spec.submodule_search_locations))) / "_jsii"
    source = folder / "__init__.py"
    if not source.is_file():
        raise LookupError(f"{module}: not a jsii library (no {source})")
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "jsii.JSIIAssembly.load":
            with contextlib.suppress(ValueError, IndexError):  # not as jsii-pacmak writes it
                name, version, tarball = (ast.literal_eval(node.args[i]) for i in (0, 1, 3))
                if (folder / tarball).is_file():  # not in a zip file, say: its import loads it
                    return Assembly(name=name, version=version, tarball=str(folder / tarball))
    raise LookupError(f"{module}: no jsii.JSIIAssembly.load(name, version, ...) in {source}")


#: How long the loading thread waits to be told more (:func:`add`) before it ends: the CLI tells
#: it within a tenth of a second of its start (see :meth:`_Loader._next`).
WAIT_FOR_MORE_S = 30.0


class _Loader:
    """The loading thread's state, shared with :class:`_Gate` under one condition."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider  # jsii's own (ProcessProvider): the Node process
        self.changed = threading.Condition()
        self.pipe = threading.RLock()  # held for each request, by whichever thread sends it
        self.queue: deque[Assembly] = deque()
        self.taken: set[str] = set()  # assemblies queued, loaded, or left to their importers
        self.sending = False  # a load is under way
        self.more = True  # add() may still give it assemblies
        self.running = True
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, name="jsii-load")

    def run(self) -> None:
        from jsii._kernel.types import LoadRequest

        try:
            with self.pipe:
                self.provider.stats()  # the first request starts the Node process
            while (assembly := self._next()) is not None:
                try:
                    with self.pipe:
                        self.provider.load(
                            LoadRequest(
                                name=assembly.name,
                                version=assembly.version,
                                tarball=assembly.tarball,
                            )
                        )
                finally:
                    with self.changed:
                        self.sending = False
                        self.changed.notify_all()
        except BaseException as e:  # raised in the caller's thread instead (_Loader.wait)
            with self.changed:
                self.error = e
        finally:
            with self.changed:
                self.running = False
                self.queue.clear()
                self.changed.notify_all()

    def _next(self) -> Assembly | None:
        """The next assembly to load; ``None`` once none will come: :func:`add` said so, or the
        caller's main thread has ended (the interpreter exits once this thread has; a CLI that
        stops before its synth, e.g. ``--help``, need not say anything), or nothing came for
        :data:`WAIT_FOR_MORE_S` (a safety net: should an interpreter not report its main thread
        ended, its exit would otherwise wait for this thread for ever; a later :func:`add` is
        then left to the imports)."""
        deadline = time.monotonic() + WAIT_FOR_MORE_S
        with self.changed:
            while threading.main_thread().is_alive():
                if self.queue:
                    self.sending = True
                    return self.queue.popleft()
                if not self.more or time.monotonic() > deadline:
                    break
                self.changed.wait(0.02)  # a main thread that ends notifies nobody
            self.more = False
            return None

    def add(self, modules: tuple[str, ...], last: bool) -> None:
        assemblies = []
        for module in modules:
            try:
                assemblies.append(assembly_of(module))
            except LookupError:
                continue  # its import loads it, after the thread's loads
        with self.changed:
            if not self.more:
                return
            for assembly in assemblies:
                if assembly.name not in self.taken:
                    self.taken.add(assembly.name)
                    self.queue.append(assembly)
            self.more = not last
            self.changed.notify_all()

    def wait(self) -> None:
        """Until the thread has sent every load it was given; its error, if one failed."""
        with self.changed:
            while self.running and (self.queue or self.sending):
                self.changed.wait()
            if self.error is not None:
                raise self.error


class _Gate:
    """The jsii kernel's provider while a loading thread runs: see the module."""

    def __init__(self, loader: _Loader) -> None:
        self._loader = loader

    def load(self, request: Any) -> Any:
        with self._loader.changed:
            if request.name in self._loader.taken:
                return None  # the thread loads it (jsii's Kernel.load ignores the response)
            self._loader.taken.add(request.name)
        return self._send(self._loader.provider.load, request)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._loader.provider, name)
        return lambda *args, **kwargs: self._send(method, *args, **kwargs)

    def _send(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # One request and its answer at a time. A callback (Node calling an override in
        # Python) is an answer: the requests its Python code makes, and a load the thread
        # sends meanwhile, are served by Node while it waits for the callback's result
        # (@jsii/runtime 1.142.0, as embedded in jsii's Python package:
        # KernelHost.callbackHandler processes every other request until the `complete`).
        self._loader.wait()
        with self._loader.pipe:
            return method(*args, **kwargs)


_LOADER: _Loader | None = None


def start(*modules: str, last: bool = False) -> None:
    """Start the jsii Node process now and load ``modules``' assemblies (jsii libraries' top
    packages, each after its dependencies) on a thread of their own; unless ``last``,
    :func:`add` gives it more (until one with ``last=True``, or until this process's main
    thread ends). The CLI calls it first thing.

    The thread is not a daemon: an interpreter that exits early (``--help``, a configuration
    error) waits for the request under way. A daemon thread could still be writing jsii's
    runtime into its temporary directory while the exit removed that directory: a traceback
    ("Directory not empty") after the CLI's own output, in about half of such runs.

    A second call is :func:`add`: the default synth's second process runs app.py's own call
    first (multiprocessing's spawn imports the parent's main module), then its own."""
    global _LOADER
    if _LOADER is not None:
        _LOADER.add(modules, last)
        return
    if node_problem() is not None:  # the CLI says what is wrong
        return
    from jsii._kernel import Kernel

    kernel = Kernel()
    loader = _Loader(kernel.provider)
    loader.add(modules, last)
    kernel.provider = cast(Any, _Gate(loader))  # jsii's provider interface, by delegation
    _LOADER = loader
    loader.thread.start()


def add(*modules: str, last: bool = True) -> None:
    """Give the loading thread more libraries to load after those it has (see :func:`start`);
    with ``last``, none will follow: it ends once they are loaded. Does nothing without a
    loading thread (a library's caller, the test suite)."""
    if _LOADER is not None:
        _LOADER.add(modules, last)
