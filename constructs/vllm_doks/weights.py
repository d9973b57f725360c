"""Weights you can trust: the pinned revision of a model and how its files are checked.

Pure Python, shared by the config checks and the Kubernetes constructs. The download itself
(``scripts/fetch_model.py``) verifies every file against the hashes the Hugging Face Hub lists
for the pinned commit before the completion marker is written.
"""

from __future__ import annotations

import re

from vllm_doks.validation import Problems

#: A git commit id as the Hugging Face Hub reports it (``ModelInfo.sha``): 40 lowercase hex.
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def check_revision(problems: Problems, field_name: str, value: object) -> bool:
    """Record a problem unless ``value`` is a full commit id (a branch or tag can move, so
    it would not pin anything)."""
    return problems.check(
        isinstance(value, str) and bool(_COMMIT.match(value)),
        field_name,
        value,
        "must be a full 40-hex-digit commit id of the model repository (e.g. from the hub's "
        "'Files and versions' page or `huggingface-cli download --revision`); branch and tag "
        "names move and pin nothing",
    )
