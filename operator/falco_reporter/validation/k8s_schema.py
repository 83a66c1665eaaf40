"""A tiny structural schema language for the Kubernetes objects reports produce.

Only shapes are modelled (field names, scalar types, enums, required keys) plus a few
cross-field rules; the operator's server-side dry run remains the authority.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


@dataclass
class Ctx:
    """Where errors go and which kind they are reported for."""

    kind: str
    errors: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        """Record ``<Kind> <path>: <message>``."""
        self.errors.append(f"{self.kind} {path}: {message}" if path else f"{self.kind}: {message}")


class Node:
    """A schema node: checks one value at ``path``."""

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        """Record problems with ``value`` in ``ctx``."""


class AnyValue(Node):
    """Anything (a part we do not model)."""


@dataclass
class Scalar(Node):
    """A string/int/bool value, optionally restricted to an enum or checked by a function."""

    types: tuple[type, ...]
    enum: tuple[Any, ...] = ()
    validator: Callable[[Any], str | None] | None = None

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        """Type, enum and validator check."""
        bad_bool = isinstance(value, bool) and bool not in self.types
        if bad_bool or not isinstance(value, self.types):
            names = " or ".join(
                "integer" if t is int else "boolean" if t is bool else "string" for t in self.types
            )
            ctx.error(
                path, f"must be a {names}, got {value!r}" + (" (quote it)" if str in self.types else "")
            )
        elif self.enum and value not in self.enum:
            ctx.error(path, f"{value!r} is not one of {', '.join(map(str, self.enum))}")
        elif self.validator is not None and (problem := self.validator(value)) is not None:
            ctx.error(path, problem)


@dataclass
class ListOf(Node):
    """A list whose items all match ``item``."""

    item: Node

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        """Each item at path[i]."""
        if not isinstance(value, list):
            ctx.error(path, f"must be a list, got {type(value).__name__}")
            return
        for i, entry in enumerate(value):
            self.item.check(entry, f"{path}[{i}]", ctx)


@dataclass
class MapOf(Node):
    """A mapping with string keys and values matching ``value``."""

    value: Node

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        """Keys must be strings; values are checked."""
        if not isinstance(value, dict):
            ctx.error(path, f"must be a mapping, got {type(value).__name__}")
            return
        for key, entry in value.items():
            if not isinstance(key, str):
                ctx.error(path, f"key {key!r} must be a string")
            self.value.check(entry, f"{path}.{key}", ctx)


@dataclass
class Obj(Node):
    """A mapping with a fixed set of fields."""

    fields: dict[str, Node]
    required: tuple[str, ...] = ()
    rule: Callable[[dict[str, Any], str, Ctx], None] | None = None
    # Why a field that belongs elsewhere is not accepted here (e.g. container-only fields).
    hints: dict[str, str] = field(default_factory=dict)

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        """Unknown fields, required fields, each field, then the cross-field rule."""
        if not isinstance(value, dict):
            ctx.error(path, f"must be a mapping with fields {', '.join(self.fields)}, got {value!r}")
            return
        for key, entry in value.items():
            sub = f"{path}.{key}" if path else str(key)
            node = self.fields.get(str(key))
            if node is None:
                hint = f"; {self.hints[key]}" if key in self.hints else ""
                ctx.error(sub, f"unknown field (expected {', '.join(self.fields)}){hint}")
            elif entry is not None:
                node.check(entry, sub, ctx)
        for key in self.required:
            if key not in value or value[key] is None:
                ctx.error(f"{path}.{key}" if path else key, "required field is missing")
        if self.rule is not None:
            self.rule(value, path, ctx)


def enum(*values: str) -> Scalar:
    """A string restricted to ``values``."""
    return Scalar((str,), values)


STR = Scalar((str,))
INT = Scalar((int,))
BOOL = Scalar((bool,))
INT_OR_STR = Scalar((int, str))
ANY = AnyValue()
STR_LIST = ListOf(STR)
STR_MAP = MapOf(STR)


def port_number(value: Any) -> str | None:
    """1..65535 for numbers; IANA_SVC_NAME-like for names."""
    if isinstance(value, int):
        return None if 1 <= value <= 65535 else f"port {value} is outside 1-65535"
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) or len(value) > 15:
        return f"port {value!r} is neither a number nor a valid port name"
    return None


PORT = Scalar((int, str), validator=port_number)


def cidr(value: Any) -> str | None:
    """A valid IPv4/IPv6 CIDR such as 10.0.0.0/8."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not a CIDR (e.g. 10.0.0.0/8)"
    return None if "/" in value else f"{value!r} needs a prefix length (e.g. {value}/32)"


def dns_name(value: str, *, label: bool = False) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (or label), or None."""
    pattern, limit, what = (DNS_LABEL, 63, "label") if label else (DNS_SUBDOMAIN, 253, "subdomain")
    if len(value) > limit or not pattern.fullmatch(value):
        return f"{value!r} is not a valid DNS-1123 {what} (lower-case alphanumerics and '-', max {limit})"
    return None


def label_key(key: str) -> str | None:
    """Kubernetes qualified-name rules for label and annotation keys."""
    prefix, _, name = key.rpartition("/")
    if prefix and dns_name(prefix):
        return f"key {key!r}: prefix {prefix!r} is not a DNS subdomain"
    if len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return f"key {key!r} is not a valid qualified name"
    return None


def label_map(values: Iterable[tuple[Any, Any]], path: str, ctx: Ctx, *, annotations: bool = False) -> None:
    """Label (or annotation) keys, and string values (label values: max 63, restricted chars)."""
    for key, value in values:
        problem = label_key(key) if isinstance(key, str) else f"key {key!r} must be a string"
        if problem:
            ctx.error(path, problem)
        if not isinstance(value, str):
            ctx.error(f"{path}.{key}", f"must be a string, got {value!r} (quote it)")
        elif not annotations and (len(value) > 63 or not _LABEL_VALUE.fullmatch(value)):
            ctx.error(f"{path}.{key}", f"{value!r} is not a valid label value")
