"""Shared test helpers: schema validation of synthesized objects, offline."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

import vllm_doks  # noqa: F401  (wires Node 22 for jsii before any jsii library loads)

REPO = Path(__file__).resolve().parent.parent
CRD_DIR = Path(__file__).resolve().parent / "fixtures" / "crds"
K8S_VERSIONS = ("1.31.0", "1.32.0", "1.33.0", "1.34.0")


def _load_crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(glob.glob(str(CRD_DIR / "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
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


def validate_objects(objs: Iterable[dict[str, Any]]) -> list[str]:
    """Strict validation of every object: core kinds with kubernetes-validate for each
    supported Kubernetes version, custom resources against their CRD openAPIV3Schema.
    Returns a list of problems (empty when all are valid)."""
    problems: list[str] = []
    for obj in objs:
        key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        name = f"{key[1]}/{obj.get('metadata', {}).get('name')}"
        if key in CRD_SCHEMAS:
            schema = CRD_SCHEMAS[key]
            for err in jsonschema.Draft7Validator(schema).iter_errors(obj):
                problems.append(f"{name}: {err.json_path}: {err.message}")
            problems.extend(f"{name}: unknown field {p}" for p in _unknown_fields(obj, schema, ""))
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except (
                kubernetes_validate.ValidationError,
                kubernetes_validate.SchemaNotFoundError,
            ) as e:
                problems.append(f"{name} (k8s {version}): {e}")
    return problems


def load_yaml_dir(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            objs.extend(d for d in yaml.safe_load_all(f) if d)
    return objs


@pytest.fixture
def repo_root() -> Path:
    return REPO
