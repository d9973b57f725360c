"""Regions where the architecture can run: both H100 GPU Droplets and Managed NFS."""

from __future__ import annotations

#: Regions that offer H100 GPU Droplets *and* Managed NFS (the seed: "currently NYC2 or ATL1").
#: DigitalOcean adds regions over time; ``allow_unlisted_region=True`` on the props is the
#: escape hatch until this list catches up.
SUPPORTED_REGIONS: tuple[str, ...] = ("atl1", "nyc2")
