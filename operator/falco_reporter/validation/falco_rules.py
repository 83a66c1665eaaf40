"""Our model of Falco's rules-file format (loader semantics of Falco 0.37+, incl. ``override``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from falco_reporter.validation.falco_parts import (
    State,
    check_engine_version,
    check_exceptions,
    check_list_items,
    check_plugin_versions,
    check_target,
)
from falco_reporter.validation.falco_syntax import (
    LIST_NAME_RE,
    MACRO_NAME_RE,
    condition_errors,
    output_errors,
)
from falco_reporter.validation.result import ValidationResult, ini_hint, mask_placeholders, names, unmask
from falco_reporter.validation.yamlload import YamlError, load_all

SUBJECT = "falco-rules-file"
KINDS = ("rule", "macro", "list", "required_engine_version", "required_plugin_versions")
ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "rule": frozenset(
        names(
            "rule desc condition output priority exceptions enabled tags source warn_evttypes "
            "skip-if-unknown-filter append override capture capture_duration"
        )
    ),
    "macro": frozenset({"macro", "condition", "append", "override"}),
    "list": frozenset({"list", "items", "append", "override"}),
    "required_engine_version": frozenset({"required_engine_version"}),
    "required_plugin_versions": frozenset({"required_plugin_versions"}),
}
# What `override:` may do per item kind (rule_loader_reader.cpp, Falco 0.44).
OVERRIDABLE: dict[str, dict[str, frozenset[str]]] = {
    "rule": {
        "append": frozenset({"condition", "output", "desc", "tags", "exceptions"}),
        "replace": frozenset(
            names(
                "condition output desc priority tags exceptions enabled warn_evttypes skip-if-unknown-filter "
                "capture capture_duration"
            )
        ),
    },
    "macro": {"append": frozenset({"condition"}), "replace": frozenset({"condition"})},
    "list": {"append": frozenset({"items"}), "replace": frozenset({"items"})},
}
PRIORITIES = frozenset(
    {"emergency", "alert", "critical", "error", "warning", "notice", "informational", "info", "debug"}
)
NEW_RULE_KEYS = ("condition", "desc", "output", "priority")
_TYPES: dict[str, tuple[type, ...]] = {
    "desc": (str,),
    "condition": (str,),
    "output": (str,),
    "priority": (str,),
    "source": (str,),
    "enabled": (bool,),
    "warn_evttypes": (bool,),
    "skip-if-unknown-filter": (bool,),
    "capture": (bool,),
    "capture_duration": (int,),
    "append": (bool,),
    "tags": (list,),
    "exceptions": (list,),
    "items": (list,),
}


def validate_rules_file(
    text: str,
    known_rules: frozenset[str] | None = None,
    known_macros: frozenset[str] | None = None,
    known_lists: frozenset[str] | None = None,
) -> ValidationResult:
    """Validate a Falco rules file (a YAML list of rule/macro/list items).

    ``known_*`` are the names an override may target (e.g. the upstream ones); None skips
    that check. Names defined earlier in the same text are always valid targets.
    """
    masked, mapping = mask_placeholders(text)
    try:
        docs = load_all(masked, yaml12=True)
    except YamlError as exc:
        return ValidationResult.failure(
            SUBJECT, f"{exc} (a Falco rules file is a YAML list of items){ini_hint(text)}"
        )
    state = State(known={"rule": known_rules, "macro": known_macros, "list": known_lists})
    items: list[Any] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, list):
            state.errors.append(_not_a_list(doc))
            continue
        items.extend(doc)
    if not items and not state.errors:
        state.errors.append("no rules-file items (expected a YAML list of rule/macro/list items)")
    if items:
        state.checks.append(f"yaml parses to a list of {len(items)} item(s)")
    for index, item in enumerate(items, start=1):
        _item(item, index, state)
    if state.descs:
        state.checks.insert(1, "falco rules-file items: " + _detail(state))
    return ValidationResult.build(
        SUBJECT,
        [unmask(c, mapping) for c in state.checks],
        [unmask(e, mapping) for e in state.errors],
        unmask(_detail(state), mapping),
    )


def _detail(state: State) -> str:
    """'1 override of X, exceptions append', or a count per kind of item for longer files."""
    descs = state.descs
    if len(descs) == 1:
        return f"1 {descs[0]}"
    if len(descs) <= 3:
        return f"{len(descs)} items: " + "; ".join(descs)
    counts = Counter(state.categories).most_common()
    return f"{len(descs)} items: " + ", ".join(f"{n} x {kind}" for kind, n in counts)


def _not_a_list(doc: object) -> str:
    if isinstance(doc, str):
        return "not a Falco rules file: the text parses as a plain string, not a YAML list of items" + (
            ini_hint(doc) or " (prose is not valid here)"
        )
    if isinstance(doc, dict):
        keys = ", ".join(map(str, list(doc)[:5]))
        return (
            f"not a Falco rules file: the YAML is a mapping ({keys}), not a list of items; "
            "each item must start with '- rule:', '- macro:' or '- list:'"
        )
    return f"not a Falco rules file: the YAML is a {type(doc).__name__}, not a list of items"


def _item(item: Any, index: int, st: State) -> None:
    where = f"item {index}"
    if not isinstance(item, dict):
        st.errors.append(f"{where}: must be a mapping such as '- rule: ...', got {item!r}")
        return
    kinds = [k for k in KINDS if k in item]
    if len(kinds) != 1:
        found = ", ".join(map(str, item))
        reason = "has none of" if not kinds else f"has several of ({', '.join(kinds)}); exactly one of"
        st.errors.append(
            f"{where}: not a Falco rules-file item: {reason} {', '.join(KINDS)} (found keys: {found}). "
            "Falco has no '- alert:' items; tuning is done with '- rule:' + override."
        )
        return
    kind = kinds[0]
    name = item[kind]
    where = f"{where} ({kind} {name!r})" if kind in ("rule", "macro", "list") else f"{where} ({kind})"
    bad = [k for k in item if k not in ALLOWED_KEYS[kind]]
    if bad:
        allowed = ", ".join(sorted(ALLOWED_KEYS[kind]))
        st.errors.append(f"{where}: unknown key(s) {bad} for a {kind} item (allowed: {allowed})")
    for key, value in item.items():
        types = _TYPES.get(str(key))
        if types and not (isinstance(value, types) and not (int in types and isinstance(value, bool))):
            st.errors.append(f"{where}: {key} must be a {' or '.join(t.__name__ for t in types)}")
    if kind == "required_engine_version":
        check_engine_version(item[kind], where, st)
    elif kind == "required_plugin_versions":
        check_plugin_versions(item[kind], where, st)
    elif _name_ok(kind, name, where, st):
        _definition(kind, str(name), item, where, st)


def _name_ok(kind: str, name: object, where: str, st: State) -> bool:
    if not isinstance(name, str) or not name.strip():
        st.errors.append(f"{where}: the {kind} name must be a non-empty string")
        return False
    pattern = {"macro": MACRO_NAME_RE, "list": LIST_NAME_RE}.get(kind)
    if pattern and not pattern.fullmatch(name):
        st.errors.append(f"{where}: invalid {kind} name (must match {pattern.pattern})")
    return True


def _definition(kind: str, name: str, item: dict[str, Any], where: str, st: State) -> None:
    override = item.get("override")
    legacy_append = item.get("append") is True
    ops: dict[str, str] = {}
    if "override" in item:
        ops = _override(kind, item, where, st)
    if legacy_append and "override" in item:
        st.errors.append(f"{where}: 'append: true' and 'override' cannot be used together")
    enable_only = (
        kind == "rule"
        and override is None
        and not legacy_append
        and "enabled" in item
        and not any(k in item for k in NEW_RULE_KEYS)
    )
    updates = override is not None or legacy_append or enable_only
    if updates:
        check_target(kind, name, where, st)
    if kind == "list":
        check_list_items(item, where, st)
    if "condition" in item:
        appended = ops.get("condition") == "append" or legacy_append
        st.errors += [f"{where}: {e}" for e in condition_errors(item["condition"], fragment=appended)]
    elif kind == "macro":
        st.errors.append(f"{where}: a macro needs a condition")
    if enable_only and (ignored := [k for k in item if k not in ("rule", "enabled")]):
        st.errors.append(
            f"{where}: without override, a rule item with only 'enabled' is an enable/disable "
            f"switch; {ignored} would be ignored (use override)"
        )
    if kind == "rule":
        _rule(name, item, where, st, ops, legacy_append, updates)
    if override is not None:
        summary = ", ".join(f"{k} {v}" for k, v in ops.items())
        prefix = "override of" if kind == "rule" else f"{kind} override of"
        st.describe(f"{kind} override", f"{prefix} {name!r}, {summary}" if summary else f"{prefix} {name!r}")
    elif legacy_append:
        st.describe(
            f"{kind} append", f"append to {kind} {name!r} (deprecated 'append: true'; prefer override)"
        )
    elif enable_only:
        st.describe(
            "enable switch", f"enabled={item['enabled']} for rule {name!r} (deprecated form; prefer override)"
        )
    else:
        st.describe(f"new {kind}", f"new {kind} {name!r}")
        st.defined[kind].add(name)


def _rule(
    name: str, item: dict[str, Any], where: str, st: State, ops: dict[str, str], legacy: bool, updates: bool
) -> None:
    if not updates:
        missing = [k for k in NEW_RULE_KEYS if k not in item]
        if missing:
            st.errors.append(
                f"{where}: a new rule needs {', '.join(NEW_RULE_KEYS)}; missing {', '.join(missing)} "
                "(to change an existing rule, add override: {key: append|replace})"
            )
    if legacy and (extra := [k for k in item if k not in ("rule", "append", "condition", "exceptions")]):
        st.errors.append(
            f"{where}: with 'append: true' Falco only applies condition and exceptions; {extra} "
            "would be ignored (use override instead)"
        )
    if "output" in item and ops.get("output") != "append":
        st.errors += [f"{where}: {e}" for e in output_errors(item["output"])]
    priority = item.get("priority")
    if "priority" in item and (not isinstance(priority, str) or priority.lower() not in PRIORITIES):
        st.errors.append(f"{where}: invalid priority {priority!r} (one of {', '.join(sorted(PRIORITIES))})")
    tags = item.get("tags")
    if isinstance(tags, list) and not all(isinstance(t, str) for t in tags):
        st.errors.append(f"{where}: tags must be a list of strings")
    if "exceptions" in item:
        check_exceptions(
            name, item["exceptions"], where, st, appending=legacy or ops.get("exceptions") == "append"
        )


def _override(kind: str, item: dict[str, Any], where: str, st: State) -> dict[str, str]:
    override = item.get("override")
    if not isinstance(override, dict) or not override:
        st.errors.append(f"{where}: override must be a non-empty mapping of key -> append|replace")
        return {}
    rules = OVERRIDABLE[kind]
    ops: dict[str, str] = {}
    for key, op in override.items():
        if op not in ("append", "replace"):
            st.errors.append(f"{where}: override.{key}: {op!r} is not append or replace")
        elif key not in rules[op]:
            other = "replace" if op == "append" else "append"
            hint = f", use '{other}' instead" if key in rules[other] else ""
            verb = "appended to" if op == "append" else "replaced"
            st.errors.append(
                f"{where}: override.{key}: key {key!r} cannot be {verb} for a {kind}{hint} "
                f"({op}able: {', '.join(sorted(rules[op]))})"
            )
        else:
            ops[str(key)] = op
        if key not in item:
            st.errors.append(f"{where}: override names {key!r} but the item has no {key!r} key")
    for key in item:
        if key not in (kind, "override", "append") and key not in override:
            st.errors.append(
                f"{where}: key {key!r} is not named under override (Falco rejects it: "
                "every key besides the name must be listed in override)"
            )
    return ops
