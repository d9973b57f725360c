"""Rehearsals against real components: a Kubernetes control plane on 127.0.0.1."""

from __future__ import annotations

from vllm_doks.rehearsal.control_plane import (
    ASSET_BINARIES,
    ControlPlane,
    ControlPlaneError,
    assets_from_env,
    missing_assets,
)

__all__ = [
    "ASSET_BINARIES",
    "ControlPlane",
    "ControlPlaneError",
    "assets_from_env",
    "missing_assets",
]
