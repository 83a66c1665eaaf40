"""Checks of rules-file item parts: exceptions, override targets, list items, version requirements."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from falco_reporter.validation.falco_syntax import exception_errors


@dataclass
class State:
    """What earlier items of the same text defined, and what we found."""

    known: dict[str, frozenset[str] | None]
    defined: dict[str, set[str]] = field(
        default_factory=lambda: {"rule": set(), "macro": set(), "list": set()}
    )
    rule_exceptions: dict[str, set[str]] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    descs: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    def describe(self, category: str, text: str) -> None:
        """Record what one item is (for checks and the summary)."""
        self.categories.append(category)
        self.descs.append(text)


def check_exceptions(rule: str, exceptions: Any, where: str, st: State, *, appending: bool) -> None:
    """Check a rule's ``exceptions``; appended ones may omit fields only for names defined earlier here."""
    if not isinstance(exceptions, list):
        return  # type error already reported
    existing = st.rule_exceptions.setdefault(rule, set())
    names: set[str] = set()
    for i, exc in enumerate(exceptions):
        ewhere = f"{where}: exceptions[{i}]"
        exc_name = exc.get("name") if isinstance(exc, dict) else None
        if isinstance(exc_name, str):
            if exc_name in names:
                st.errors.append(f"{ewhere}: duplicate exception name {exc_name!r} in one item")
            names.add(exc_name)
        extends = appending and exc_name in existing
        if extends and isinstance(exc, dict) and ("fields" in exc or "comps" in exc):
            st.errors.append(
                f"{ewhere}: exception {exc_name!r} already exists; append only values, not fields or comps"
            )
        errs = exception_errors(exc, ewhere, needs_fields=not extends, needs_values=appending)
        st.errors += errs
        if not errs and isinstance(exc, dict):
            fields = exc.get("fields")
            n_fields = 1 if isinstance(fields, str) else len(fields) if isinstance(fields, list) else 0
            n_values = len(exc.get("values") or [])
            shape = f"{n_fields} field(s), comps aligned" if fields is not None else "values only"
            st.checks.append(f"exception {exc_name!r} on {rule!r}: {shape}, {n_values} value tuple(s)")
    existing.update(names)


def check_target(kind: str, name: str, where: str, st: State) -> None:
    """An override/append must target something that exists (earlier in this file or known)."""
    known = st.known[kind]
    if name in st.defined[kind]:
        st.checks.append(f"override target {kind} {name!r} is defined earlier in this file")
    elif known is None:
        st.checks.append(f"override target {kind} {name!r} not checked (no known names given)")
    elif name in known:
        st.checks.append(f"override target {kind} {name!r} exists upstream")
    else:
        st.errors.append(f"{where}: there is no {kind} named {name!r} to override (not a known {kind})")


def check_list_items(item: dict[str, Any], where: str, st: State) -> None:
    """A list's items: required, and scalars (strings or integers) only."""
    items = item.get("items")
    if "items" not in item:
        st.errors.append(f"{where}: a list needs items")
    elif isinstance(items, list):
        bad = [v for v in items if isinstance(v, bool) or not isinstance(v, str | int) or v == ""]
        if bad:
            st.errors.append(f"{where}: items must be non-empty strings or integers, not {bad[:3]}")


def check_engine_version(value: Any, where: str, st: State) -> None:
    """The loader takes an integer (legacy engine version) or an "x.y.z" semver string."""
    ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, str) and re.fullmatch(r"\d+\.\d+\.\d+", value) is not None
    )
    if not ok:
        st.errors.append(f"{where}: {value!r} is not a semver 'x.y.z' string (or a legacy integer)")
    st.describe("required_engine_version", f"required_engine_version {value}")


def check_plugin_versions(value: Any, where: str, st: State) -> None:
    """A non-empty list of {name, version[, alternatives: [{name, version}]]}."""
    if not isinstance(value, list) or not value:
        st.errors.append(f"{where}: must be a non-empty list of {{name, version[, alternatives]}}")
        return
    names: list[str] = []
    for i, plugin in enumerate(value):
        for j, entry in enumerate(
            [plugin, *(plugin.get("alternatives") or [] if isinstance(plugin, dict) else [])]
        ):
            pwhere = f"{where}[{i}]" + (f".alternatives[{j - 1}]" if j else "")
            allowed = {"name", "version", "alternatives"} if j == 0 else {"name", "version"}
            if (
                not isinstance(entry, dict)
                or set(entry) - allowed
                or not all(isinstance(entry.get(k), str) and entry.get(k) for k in ("name", "version"))
            ):
                st.errors.append(
                    f"{pwhere}: must be a mapping with string name and version only "
                    f"(allowed keys: {', '.join(sorted(allowed))})"
                )
            elif j == 0:
                names.append(entry["name"])
    st.describe("required_plugin_versions", f"required_plugin_versions ({', '.join(names)})")
