"""Synth-time input validation shared by every construct.

Constructs collect *all* problems of their props before raising, so a user fixes a config in
one pass instead of one error per run. Each problem names the field, the value given and
what would be valid; the error also names the construct path, as aws-cdk errors do.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def is_token(value: object) -> bool:
    """A cdktf or cdk8s token: a value only Terraform (or cdk8s) knows, e.g. Stack 1's NFS
    host read from remote state. It can't be checked at synth time, only passed through."""
    return isinstance(value, str) and ("${TfToken[" in value or "${Token[" in value)


@dataclass(frozen=True)
class Problem:
    """One invalid input: which field, what was given, what would be valid."""

    field: str
    value: object
    expected: str

    def __str__(self) -> str:
        return f"{self.field}: got {self.value!r}; {self.expected}"


class ValidationError(ValueError):
    """Raised when props are invalid; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem], where: str = "") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.where = where
        head = f"invalid configuration for {where}" if where else "invalid configuration"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{lines}")

    def __reduce__(self) -> tuple[type[ValidationError], tuple[tuple[Problem, ...], str]]:
        # Survive pickling (errors cross from the Kubernetes layer's process).
        return (type(self), (self.problems, self.where))


#: What problems are problems of: a string, or a function giving it, called only when there
#: is a problem to report (a construct's ``node.path`` is two jsii round trips to the Node
#: process, which a valid construct should not pay: ``lambda: self.node.path``).
Where: TypeAlias = str | Callable[[], str]


@dataclass
class Problems:
    """Collects problems; ``raise_if_any`` turns them into one ValidationError."""

    where: Where = ""
    items: list[Problem] = field(default_factory=list)

    def add(self, field_name: str, value: object, expected: str) -> None:
        self.items.append(Problem(field_name, value, expected))

    def check(self, ok: bool, field_name: str, value: object, expected: str) -> bool:
        if not ok:
            self.add(field_name, value, expected)
        return ok

    def extend(self, other: Iterable[Problem]) -> None:
        self.items.extend(other)

    def raise_if_any(self, where: Where | None = None) -> None:
        """Raise every problem at once, if any; ``where`` (e.g. a construct's path) names
        what they are problems of."""
        if where is not None:
            self.where = where
        if self.items:
            where = self.where
            raise ValidationError(self.items, where() if callable(where) else where)

    def __bool__(self) -> bool:
        return bool(self.items)


def check_dns_label(problems: Problems, field_name: str, value: str, max_len: int = 63) -> bool:
    """RFC 1123 label: what Kubernetes requires of Service, namespace and most names."""
    return problems.check(
        isinstance(value, str) and len(value) <= max_len and bool(_DNS1123_LABEL.match(value)),
        field_name,
        value,
        f"must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
        f"with a letter or digit, at most {max_len} characters",
    )


def check_dns_subdomain(problems: Problems, field_name: str, value: str) -> bool:
    """RFC 1123 subdomain: what Kubernetes requires of most object names."""
    return problems.check(
        isinstance(value, str) and len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value)),
        field_name,
        value,
        "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and "
        "ending with a letter or digit, at most 253 characters",
    )


def check_int_range(
    problems: Problems, field_name: str, value: object, low: int, high: int | None = None
) -> bool:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high  # type: ignore[operator]
    bound = f"between {low} and {high}" if high is not None else f"at least {low}"
    return problems.check(ok, field_name, value, f"must be a whole number {bound}")


def check_private_cidr(
    problems: Problems, field_name: str, value: str
) -> ipaddress.IPv4Network | None:
    """An IPv4 CIDR in a private range (RFC 1918); returns the network when valid."""
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError, TypeError):
        problems.add(
            field_name,
            value,
            "must be an IPv4 CIDR block with no host bits set, e.g. 10.200.0.0/22",
        )
        return None
    if not net.is_private or net.is_loopback or net.is_link_local:
        problems.add(
            field_name,
            value,
            "must be a private range (RFC 1918: 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)",
        )
        return None
    return net


def check_min_max(
    problems: Problems,
    min_field: str,
    min_value: object,
    max_field: str,
    max_value: object,
    floor: int,
) -> None:
    """An autoscaling range: both whole numbers, ``floor <= min <= max``."""
    ok_min = check_int_range(problems, min_field, min_value, floor)
    ok_max = check_int_range(problems, max_field, max_value, floor)
    if ok_min and ok_max and max_value < min_value:  # type: ignore[operator]
        problems.add(max_field, max_value, f"must be at least {min_field} ({min_value})")


def list_of_mappings(
    raw: object,
    where: str,
    problems: Problems,
    *,
    source: str,
    keys: Sequence[str],
    noun: str,
    list_example: str,
    entry_example: str,
) -> Iterator[tuple[str, dict[str, object]]]:
    """The entries of a configuration list of mappings (``models:``, ``adapters:``), each as
    ``(its path, its known keys)``, in order, so the caller's problems with an entry follow
    those found here; an empty or non-list value, an entry that is not a mapping and every
    unknown key are reported (an entry with unknown keys still counts, so the rest of it is
    checked too)."""
    if not isinstance(raw, list) or not raw:
        problems.add(where, raw, f"must be a non-empty list of {noun}s such as {list_example} "
                     f"(from {source})")  # fmt: skip
        return
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            problems.add(at, entry, f"must be a mapping such as {entry_example}")
            continue
        known: dict[str, object] = {}
        for key, value in entry.items():
            if key in keys:
                known[str(key)] = value
            else:
                problems.add(
                    f"{at}.{key}",
                    value,
                    f"is not a key of {'an' if noun[0] in 'aeiou' else 'a'} {noun} (from "
                    f"{source}); known: {', '.join(keys)}",
                )
        yield at, known
