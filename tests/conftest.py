"""Shared test helpers: schema validation of synthesized objects, offline."""

from __future__ import annotations

import functools
import glob
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

import vllm_doks  # noqa: F401  (wires Node 22 for jsii before any jsii library loads)
from vllm_doks.rehearsal import ControlPlane, missing_assets
from vllm_doks.rehearsal.runner import Toolchain, find_toolchain

REPO = Path(__file__).resolve().parent.parent
#: Recorded inputs of the tests (CRDs, vLLM's options, start-up logs), shared by every folder.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CRD_DIR = FIXTURES / "crds"
K8S_VERSIONS = ("1.31.0", "1.32.0", "1.33.0", "1.34.0")


#: Tests that load the Terraform Kubernetes provider's Python bindings (about 5 s of CPU per
#: process), by node id prefix: with xdist they all run on one worker, so only that worker
#: pays for the import. A test that loads them without being listed here fails (see
#: ``_kubernetes_provider_tests_are_listed``), so the list cannot go stale unnoticed.
KUBERNETES_PROVIDER_TESTS = (
    "tests/cloud/test_kubernetes_stack.py::",
    "tests/app/test_app.py::test_stack2_via_terraform",
    "tests/app/test_app.py::test_no_secret_ever_reaches_an_output_file",
    "tests/app/test_coldstart.py::test_terraform_applies_the_smoke_test_last",
    "tests/app/test_snapshots.py::test_configuration_snapshot[stack-2-via-terraform]",
    "tests/app/test_spaces_source.py::test_stack_2_via_terraform_fills_the_secret_",
    "tests/app/test_smoke_every_model.py::test_terraform_waits_for_a_smoke_test_",
    "tests/app/test_smoke_every_model.py::test_a_promotion_gating_smoke_test_",
    "tests/k8s/test_canary_smoke.py::test_terraform_promotes_the_route_",
    "tests/core/test_props_ergonomics.py::test_signature_lists_every_field_with_its_default"
    "[VllmKubernetesStack-",
    "tests/core/test_props_ergonomics.py::test_help_shows_every_fields_documentation"
    "[KubernetesObjectsStackProps]",
)
KUBERNETES_PROVIDER_MODULE = "cdktf_cdktf_provider_kubernetes"


@pytest.fixture(autouse=True)
def _kubernetes_provider_tests_are_listed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a fast-tier test that loads the Kubernetes provider's bindings but is not listed in
    KUBERNETES_PROVIDER_TESTS (seen when it runs on a worker that had not loaded them yet).
    The real tier runs in one process, so it has nothing to list."""
    real_tier = request.node.get_closest_marker("real") is not None
    loaded_before = real_tier or KUBERNETES_PROVIDER_MODULE in sys.modules
    yield
    if not loaded_before and KUBERNETES_PROVIDER_MODULE in sys.modules:
        nodeid = request.node.nodeid
        assert nodeid.startswith(KUBERNETES_PROVIDER_TESTS), (
            f"{nodeid} loads {KUBERNETES_PROVIDER_MODULE}: add it to "
            "KUBERNETES_PROVIDER_TESTS in tests/conftest.py, so that only one xdist worker "
            "pays for that import"
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's own schedule (``--dist load``: any test on any worker; ``loadscope``: a test
    module's tests on one worker), except that the tests of KUBERNETES_PROVIDER_TESTS form one
    unit of work. (``--dist loadgroup`` with markers would say it, but xdist 3.8 tags the node
    ids through ``Item._nodeid``, which pytest 9.2 no longer reads.)"""
    dist = config.getvalue("dist")
    if dist not in ("load", "loadscope"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(KUBERNETES_PROVIDER_TESTS):
                return "kubernetes-provider"
            return nodeid if dist == "load" else str(super()._split_scope(nodeid))

    return Scheduling(config, log)


def _load_crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(glob.glob(str(CRD_DIR / "*.yaml"))):
        with open(path) as f:
            # libyaml's loader: the pure-Python one takes seconds for these CRDs, in every
            # xdist worker.
            for doc in yaml.load_all(f, Loader=yaml.CSafeLoader):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for ver in spec["versions"]:
                    key = (f"{spec['group']}/{ver['name']}", spec["names"]["kind"])
                    schemas[key] = ver["schema"]["openAPIV3Schema"]
    return schemas


CRD_SCHEMAS = _load_crd_schemas()


def _unknown_fields(obj: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    """Fields a structural schema does not declare (the API server would prune them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(obj, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        for key, val in obj.items():
            if props is not None and key in props:
                yield from _unknown_fields(val, props[key], f"{path}.{key}")
            elif isinstance(addl, dict):
                yield from _unknown_fields(val, addl, f"{path}.{key}")
            elif props is not None and path != "" and not path.endswith(".metadata"):
                yield f"{path}.{key}"
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            yield from _unknown_fields(item, schema["items"], f"{path}[{i}]")


# kubernetes-validate reads and parses its schema files (a 1 MB _definitions.json among them)
# on every call; they never change during a run. A test-only speed-up: read each once.
kubernetes_validate.utils.schema_contents = functools.cache(  # type: ignore[method-assign]
    kubernetes_validate.utils.schema_contents
)


def validate_objects(objs: Iterable[dict[str, Any]]) -> list[str]:
    """Strict validation of every object: core kinds with kubernetes-validate for each
    supported Kubernetes version, custom resources against their CRD openAPIV3Schema.
    Returns a list of problems (empty when all are valid)."""
    problems: list[str] = []
    for obj in objs:
        problems.extend(_validate_object(json.dumps(obj, sort_keys=True)))
    return problems


@functools.cache
def _validate_object(text: str) -> tuple[str, ...]:
    """One object's problems, once per distinct object per session (many tests validate the
    same objects of the same configurations)."""
    obj = json.loads(text)
    problems: list[str] = []
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    name = f"{key[1]}/{obj.get('metadata', {}).get('name')}"
    if key in CRD_SCHEMAS:
        schema = CRD_SCHEMAS[key]
        for err in jsonschema.Draft7Validator(schema).iter_errors(obj):
            problems.append(f"{name}: {err.json_path}: {err.message}")
        problems.extend(f"{name}: unknown field {p}" for p in _unknown_fields(obj, schema, ""))
        return tuple(problems)
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except (
            kubernetes_validate.ValidationError,
            kubernetes_validate.SchemaNotFoundError,
        ) as e:
            problems.append(f"{name} (k8s {version}): {e}")
    return tuple(problems)


def load_yaml_dir(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            objs.extend(d for d in yaml.safe_load_all(f) if d)
    return objs


@pytest.fixture
def repo_root() -> Path:
    return REPO


def envtest_crd_files() -> list[Path]:
    """The CRDs the output targets, as installed on the test control plane: the full upstream
    set in ``../shared/crds`` beside the clone when CI lays it there, else the test fixtures
    (whose Cilium CRD is an excerpt)."""
    shared = REPO.parent / "shared" / "crds"
    folder = shared if shared.is_dir() else CRD_DIR
    return sorted(folder.glob("*.yaml"))


#: Set by .ci/run: a missing control plane is then an error, not a skip, so CI never skips
#: the real tier silently.
REQUIRE_ENVTEST = os.environ.get("VLLM_DOKS_REQUIRE_ENVTEST") == "1"


def _no_control_plane(reason: str) -> None:
    if REQUIRE_ENVTEST:
        pytest.fail(f"VLLM_DOKS_REQUIRE_ENVTEST=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One real Kubernetes 1.34 control plane (etcd, kube-apiserver, controller-manager,
    scheduler) for the whole session, with the output's CRDs installed. Skips when
    ``KUBEBUILDER_ASSETS`` does not name a folder with the binaries."""
    value = os.environ.get("KUBEBUILDER_ASSETS", "")
    how = (
        "get them with `setup-envtest use 1.34.x -p path` (or ../shared/envtest/unpack) "
        "and export KUBEBUILDER_ASSETS=<that folder>"
    )
    if not value:
        _no_control_plane(f"KUBEBUILDER_ASSETS is unset: no control plane binaries; {how}")
    missing = missing_assets(Path(value))
    if missing:
        _no_control_plane(f"KUBEBUILDER_ASSETS={value} lacks {', '.join(missing)}; {how}")
    plane = ControlPlane(
        Path(value), tmp_path_factory.mktemp("envtest"), crd_files=envtest_crd_files()
    )
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    """The real cdktf CLI, Terraform and the DigitalOcean provider mirror, found once per
    session; skips with the reason when one is missing (fails under .ci/run)."""
    found = find_toolchain(REPO)
    if isinstance(found, str):
        # Set by .ci/run: CI must rehearse, never skip silently.
        if os.environ.get("VLLM_DOKS_REQUIRE_TERRAFORM") == "1":
            pytest.fail(f"VLLM_DOKS_REQUIRE_TERRAFORM=1 but {found}", pytrace=False)
        pytest.skip(found)
    return found


@pytest.fixture(scope="module")
def synths(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The real tier's synths, each configuration once per test module (realtier.SynthCache)."""
    from realtier import SynthCache

    return SynthCache(tmp_path_factory.mktemp("synths"))


@pytest.fixture
def namespaces(control_plane: ControlPlane) -> Iterator[list[str]]:
    """Namespaces a test creates on the control plane (each prepared as README step 4);
    deleted afterwards, with their PersistentVolumes."""
    from realtier import cleanup

    created: list[str] = []
    yield created
    cleanup(control_plane, *created, pvs=tuple(f"{ns}.vllm-models-pv" for ns in created))


@pytest.fixture
def openai() -> Iterator[Any]:
    """support.fake_openai() for the test."""
    from support import fake_openai

    with fake_openai() as state:
        yield state


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The smoke test's API key file (support.KEY), as the Secret volume would hold it."""
    from support import KEY

    path = tmp_path / "key"
    path.write_text(KEY)
    return path
