"""Extract ``vllm serve``'s option names and a few choice lists from vLLM's source.

vLLM's own parser cannot be imported without torch and CUDA libraries (``vllm.engine.arg_utils``
imports torch), so the tests check our arguments against this extract instead. Re-generate it
for a new vLLM pin::

    pip download --no-deps vllm==0.18.0 -d /tmp/vllm-whl
    unzip -q /tmp/vllm-whl/vllm-0.18.0-*.whl 'vllm/*' -d /tmp/vllm-src
    python tests/tools/extract_vllm_options.py /tmp/vllm-src 0.18.0 \\
        > tests/fixtures/vllm-0.18.0-serve-options.json

Sources read (paths inside the wheel):

* ``vllm/engine/arg_utils.py``: every ``"--flag"`` string passed to ``add_argument`` by
  ``EngineArgs.add_cli_args`` (explicit names, the dataclass-derived ones are spelled out there);
* ``vllm/entrypoints/openai/cli_args.py``: the fields of ``BaseFrontendArgs`` and
  ``FrontendArgs``, which ``add_cli_args`` turns into ``--<field-with-dashes>``;
* ``vllm/config/cache.py`` ``CacheDType`` (choices of ``--kv-cache-dtype``) and
  ``vllm/model_executor/layers/quantization/__init__.py`` ``QuantizationMethods`` (choices of
  ``--quantization``).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path


def _flags_in_add_argument(tree: ast.AST) -> set[str]:
    flags: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            for arg in node.args:
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and arg.value.startswith("--")
                ):
                    flags.add(arg.value)
    return flags


def _dataclass_fields(tree: ast.AST, classes: set[str]) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in classes:
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    names.add(stmt.target.id)
    return names


def _literal(tree: ast.AST, name: str) -> list[str]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
            and isinstance(node.value, ast.Subscript)
        ):
            elts = node.value.slice.elts if isinstance(node.value.slice, ast.Tuple) else []
            return [e.value for e in elts if isinstance(e, ast.Constant)]
    raise SystemExit(f"{name} not found")


def main(root: str, version: str) -> None:
    src = Path(root) / "vllm"

    def parse(rel: str) -> ast.AST:
        return ast.parse((src / rel).read_text(encoding="utf-8"))

    engine = parse("engine/arg_utils.py")
    frontend = parse("entrypoints/openai/cli_args.py")
    options = _flags_in_add_argument(engine) | _flags_in_add_argument(frontend)
    fields = _dataclass_fields(frontend, {"BaseFrontendArgs", "FrontendArgs"})
    options |= {"--" + f.replace("_", "-") for f in fields}
    out = {
        "vllm_version": version,
        "sources": [
            f"vllm=={version} wheel: vllm/engine/arg_utils.py (add_argument names)",
            f"vllm=={version} wheel: vllm/entrypoints/openai/cli_args.py "
            "(BaseFrontendArgs/FrontendArgs fields)",
            f"vllm=={version} wheel: vllm/config/cache.py (CacheDType)",
            f"vllm=={version} wheel: vllm/model_executor/layers/quantization/__init__.py "
            "(QuantizationMethods)",
        ],
        "options": sorted(options),
        "choices": {
            "--kv-cache-dtype": _literal(parse("config/cache.py"), "CacheDType"),
            "--quantization": _literal(
                parse("model_executor/layers/quantization/__init__.py"), "QuantizationMethods"
            ),
        },
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
