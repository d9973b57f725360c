"""app.py loads the jsii Node process and ``constructs`` on a background thread while the CLI
imports and checks the configuration (vllm_doks._node.load_jsii_in_background). That is safe
only because every jsii library the layers load imports ``constructs``' assembly before it
talks to the jsii process itself: a thread importing one of them meanwhile waits on Python's
import lock of ``constructs._jsii``, so two threads never use the jsii process at once."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

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


def test_app_exits_cleanly_when_it_stops_before_any_jsii_use() -> None:
    """``--help`` returns while the thread may still be loading: no traceback, no hang."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "usage: app.py" in proc.stdout


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
