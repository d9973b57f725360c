"""Prop checks specific to the Kubernetes layer (the generic ones are in vllm_doks.validation)."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal

from vllm_doks.validation import Problems, check_dns_label, check_dns_subdomain, is_token

# A Kubernetes quantity as people write them for memory and CPU: 16Gi, 500m, 2, 1.5.
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX_FACTORS = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_POSIX_PATH = re.compile(r"^(/[A-Za-z0-9._@+-]+)+/?$")


def check_quantity(problems: Problems, field_name: str, value: object) -> bool:
    return problems.check(
        isinstance(value, str) and bool(_QUANTITY.match(value)),
        field_name,
        value,
        "must be a Kubernetes quantity such as '16Gi', '512Mi', '2' or '500m'",
    )


def quantity_value(quantity: str) -> Decimal:
    """The amount a quantity accepted by :func:`check_quantity` stands for ("1Gi" -> 1073741824)."""
    match = re.match(r"^([0-9.]+)([A-Za-z]*)$", quantity)
    if match is None or match.group(2) not in _SUFFIX_FACTORS:
        raise ValueError(f"not a quantity: {quantity!r}")
    return Decimal(match.group(1)) * _SUFFIX_FACTORS[match.group(2)]


def check_request_within_limit(
    problems: Problems, request_field: str, request: str, limit_field: str, limit: str
) -> bool:
    """Kubernetes refuses a pod whose request exceeds its limit; say so at synth time."""
    return problems.check(
        quantity_value(request) <= quantity_value(limit),
        request_field,
        request,
        f"must not exceed {limit_field} ({limit})",
    )


def check_image(problems: Problems, field_name: str, value: object) -> bool:
    """A pinned image reference: a tag other than ``latest``, or a digest.

    An unpinned image changes under a running Deployment on the next pull; with
    ``imagePullPolicy: IfNotPresent`` it would also differ from node to node.
    """
    ok = isinstance(value, str) and bool(value) and not any(c.isspace() for c in value)
    if ok:
        assert isinstance(value, str)
        if "@" not in value:
            last = value.rsplit("/", 1)[-1]
            ok = ":" in last and last.rsplit(":", 1)[1] not in ("", "latest")
    return problems.check(
        ok,
        field_name,
        value,
        "must be a pinned image reference: 'repository:tag' with a tag other than 'latest', "
        "or 'repository@sha256:...'",
    )


def check_absolute_path(problems: Problems, field_name: str, value: object) -> bool:
    return problems.check(
        is_token(value) or (isinstance(value, str) and bool(_POSIX_PATH.match(value))),
        field_name,
        value,
        "must be an absolute path such as '/models' (letters, digits, '.', '_', '-', '@', '+')",
    )


def check_host(problems: Problems, field_name: str, value: object) -> bool:
    """An IP address or a DNS name (what an NFS PersistentVolume accepts as ``server``)."""
    ok = is_token(value)
    if not ok and isinstance(value, str) and value:
        try:
            ipaddress.ip_address(value)
            ok = True
        except ValueError:
            ok = check_dns_subdomain(Problems(), field_name, value)
    return problems.check(
        ok, field_name, value, "must be the NFS server's IP address or DNS name, e.g. 10.200.0.5"
    )


def check_secret_key(problems: Problems, field_name: str, value: object) -> bool:
    return problems.check(
        isinstance(value, str) and bool(_SECRET_KEY.match(value)),
        field_name,
        value,
        "must be a Secret key: letters, digits, '-', '_' and '.'",
    )


_DNS1035_START = re.compile(r"^[a-z]")


def check_service_name(problems: Problems, field_name: str, value: str, *, max_len: int) -> bool:
    """A name for a Service and the objects named after it: a DNS label of at most
    ``max_len`` characters (room for the suffixes of the names derived from it) that starts
    with a letter (DNS-1035, as a Service name must)."""
    return check_dns_label(problems, field_name, value, max_len=max_len) and problems.check(
        bool(_DNS1035_START.match(value)),
        field_name,
        value,
        "must start with a letter (it names a Service)",
    )


def check_namespace_names(problems: Problems, field_name: str, value: tuple[str, ...]) -> bool:
    """A tuple of namespace names (each a DNS label)."""
    if not problems.check(
        isinstance(value, tuple),
        field_name,
        value,
        "must be a tuple of namespace names, e.g. ('monitoring',)",
    ):
        return False
    return all([check_dns_label(problems, field_name, ns) for ns in value])


def check_word(problems: Problems, field_name: str, value: object, hint: str) -> bool:
    """A non-empty string without whitespace (a model name, a header name); ``hint`` says
    what is expected."""
    return problems.check(
        isinstance(value, str) and bool(value) and not any(c.isspace() for c in value),
        field_name,
        value,
        hint,
    )
