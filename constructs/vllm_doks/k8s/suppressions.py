"""Scanner findings a construct accepts on purpose, written into the manifest with the reason.

``checkov`` (``--framework kubernetes``) reads ``checkov.io/skip<N>`` annotations on an
object's ``metadata.annotations``, each ``<check id>=<reason>``, and reports those checks as
skipped with the reason instead of failed. Keeping them on the object, not in a scanner
config, means anyone reading the YAML sees what was waived and why.

Every waiver here is either required for vLLM on GPUs or a deliberate choice, and is added only
when it applies: a digest-pinned image, a memory limit or no Secret in the environment leave
the corresponding check to pass on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Prefix of checkov's per-object skip annotations (``checkov.io/skip1``, ``skip2``, ...).
CHECKOV_SKIP_PREFIX = "checkov.io/skip"

#: The containers run as uid/gid 1000 (see ``names.NON_ROOT_ID``).
HIGH_UID_REASON = (
    "uid and gid 1000 own the model files on the NFS share (the seed's user), so another uid "
    "could not resume or update existing downloads. The pod runs as non-root with every "
    "capability dropped and no privilege escalation"
)
#: ``imagePullPolicy: IfNotPresent`` with a pinned tag.
PULL_POLICY_REASON = (
    "IfNotPresent with a pinned tag checked at synth time (never latest): the multi-GB vLLM "
    "image is pulled once per node instead of on every restart, and a restart does not "
    "depend on the registry. A digest-pinned image passes this check"
)
#: A pinned tag rather than a digest.
IMAGE_DIGEST_REASON = (
    "the image is a pinned release tag checked at synth time (never latest); pass "
    "repository@sha256:<digest> as the image to pin a digest, which passes this check"
)


def checkov_skip_annotations(skips: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``{"checkov.io/skip1": "CKV_K8S_11=<reason>", ...}`` for ``(check id, reason)`` pairs.

    checkov splits the value at ``=``, so a reason must not contain one.
    """
    annotations: dict[str, str] = {}
    for i, (check_id, reason) in enumerate(skips, start=1):
        if "=" in reason or "=" in check_id or not reason.strip():
            raise ValueError(f"checkov skip {check_id!r} needs a reason without '=': {reason!r}")
        annotations[f"{CHECKOV_SKIP_PREFIX}{i}"] = f"{check_id}={reason}"
    return annotations


def image_skips(image: str) -> list[tuple[str, str]]:
    """Waivers for a tag-pinned image; none for a digest-pinned one."""
    if "@" in image:
        return []
    return [("CKV_K8S_43", IMAGE_DIGEST_REASON), ("CKV_K8S_15", PULL_POLICY_REASON)]
