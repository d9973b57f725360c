"""Markdown tables of inputs and outputs, generated from the code so the README can't drift.

``python -m vllm_doks.docs [README.md]`` prints them, or rewrites the README's blocks
(``make docs``); a test checks the README holds exactly this text between its
``<!-- BEGIN generated:... -->`` markers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vllm_doks.config import STACK2_OUTPUT_DESCRIPTIONS, config_fields


def inputs_table() -> str:
    rows = ["| Name | Stack | Description | Type | Default |", "|---|---|---|---|---|"]
    for f in config_fields():
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        default = str(f.default).lower() if isinstance(f.default, bool) else repr(f.default)
        stack, help_text = f.metadata["stack"], f.metadata["help"]
        rows.append(f"| `{f.name}` | {stack} | {help_text} | `{kind}` | `{default}` |")
    return "\n".join(rows)


def outputs_table() -> str:
    from vllm_doks.cloud.infra_props import MODEL_BUCKET_OUTPUT_DESCRIPTIONS, OUTPUT_DESCRIPTIONS

    rows = ["| Name | Stack | Description |", "|---|---|---|"]
    rows += [f"| `{k}` | 1 | {v} |" for k, v in OUTPUT_DESCRIPTIONS.items()]
    rows += [
        f"| `{k}` | 1 | {v}; only with `create_model_source_bucket` |"
        for k, v in MODEL_BUCKET_OUTPUT_DESCRIPTIONS.items()
    ]
    rows += [f"| `{k}` | 2 | {v} |" for k, v in STACK2_OUTPUT_DESCRIPTIONS.items()]
    return "\n".join(rows)


def gpu_sizes_table() -> str:
    from vllm_doks.gpu_catalog import GPU_SIZES

    rows = [
        "| `gpu_size` | GPUs | GPU memory | vendor | resource | vLLM image |",
        "|---|---|---|---|---|---|",
    ]
    rows += [
        f"| `{g.slug}` | {g.gpu_count} x {g.gpu_model} | {g.gpu_count * g.gpu_memory_gb} GB "
        f"| {g.vendor} | `{g.resource_name}` | `{g.vllm_image}` |"
        for g in GPU_SIZES.values()
    ]
    return "\n".join(rows)


GENERATED = {"inputs": inputs_table, "outputs": outputs_table, "gpu-sizes": gpu_sizes_table}


def render_block(name: str) -> str:
    return f"<!-- BEGIN generated:{name} -->\n{GENERATED[name]()}\n<!-- END generated:{name} -->"


def update_readme(path: Path) -> bool:
    """Replace each generated block in ``path``; return whether the file changed."""
    text = original = path.read_text()
    for name in GENERATED:
        begin, end = f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"
        start, stop = text.index(begin), text.index(end) + len(end)
        text = text[:start] + render_block(name) + text[stop:]
    path.write_text(text)
    return text != original


if __name__ == "__main__":
    if len(sys.argv) > 1:
        update_readme(Path(sys.argv[1]))
    else:
        for block in GENERATED:
            print(render_block(block), end="\n\n")
