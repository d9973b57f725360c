"""The shell scripts the pods run, shipped as package data in ``vllm_doks/scripts``.

They live in real ``.sh`` files (not Python strings) so they can be linted and tested with a
real ``sh``; the constructs inline them into ``/bin/sh -c`` commands, so the rendered YAML is
self-contained and needs no ConfigMap.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

PRESTOP_DRAIN = "prestop-drain.sh"
WAIT_FOR_MODEL = "wait-for-model.sh"
DOWNLOAD_MODEL = "download-model.sh"
CHECK_GPU_DEVICES = "check-gpu-devices.sh"
#: Python, run by download-model.sh with ``python3 -c``: fetch a revision, verify its hashes.
FETCH_MODEL = "fetch_model.py"
SMOKE_TEST = "smoke-test.sh"
COMPILE_CACHE = "compile-cache.sh"


@cache
def script_text(name: str) -> str:
    """The text of one of the packaged scripts, e.g. ``script_text(PRESTOP_DRAIN)``."""
    return resources.files("vllm_doks").joinpath("scripts", name).read_text(encoding="utf-8")


def sh_command(name: str, *args: str) -> list[str]:
    """``/bin/sh -c <script> <name> <args...>``: the script sees ``args`` as ``$1``, ``$2``...

    Passing values as positional parameters rather than formatting them into the script text
    means no value ever needs shell quoting.
    """
    return ["/bin/sh", "-c", script_text(name), name.removesuffix(".sh"), *args]
