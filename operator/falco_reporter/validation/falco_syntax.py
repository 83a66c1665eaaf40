"""Falco filter syntax pieces: field names, operators, conditions, outputs, exceptions."""

from __future__ import annotations

import re
from typing import Any

from falco_reporter.validation.result import names

# libsinsp's comparison operators (filter/parser.cpp): unary, numeric, string and list ones.
OPERATORS = frozenset(
    names(
        "= == != < <= > >= contains icontains bcontains startswith bstartswith endswith glob iglob regex "
        "pmatch exists in intersects"
    )
)
LIST_OPERATORS = frozenset({"in", "intersects", "pmatch"})

# Field classes: those the upstream rules files use (evt, proc, thread, user, group, fd,
# container, k8s, ka, jevt) plus the other libsinsp classes and common plugin ones.
FIELD_CLASSES = frozenset(
    names(
        "evt evtin proc thread user group fd fdlist fs syscall span container k8s k8smeta mesos ka jevt "
        "json ct s3 ec2 okta github gcp"
    )
)

# libsinsp's RGX_FIELDNAME plus the optional [argument] (e.g. proc.aname[2], proc.env[HOME]).
FIELD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+(?:\[[^\]\[\"'\s]+\])?")
_OP_AFTER_FIELD = re.compile(
    r"\s*(?:==|=|!=|<=|>=|<|>)|\s+(?:in|intersects|pmatch|contains|icontains|bcontains|startswith"
    r"|bstartswith|endswith|glob|iglob|regex|exists)\b"
)
# libsinsp's RGX_IDENTIFIER (macro names) and RGX_BARESTR (list names).
MACRO_NAME_RE = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
LIST_NAME_RE = re.compile(r"[^()\"'\s=,]+")
_OUTPUT_FIELD_RE = re.compile(r"%([A-Za-z][A-Za-z0-9_]*)\.")


def field_error(name: object) -> str | None:
    """Why ``name`` is not a plausible Falco field name, or None."""
    if not isinstance(name, str) or not FIELD_RE.fullmatch(name):
        return f"{name!r} is not a Falco field name (class.field or class.field[arg])"
    cls = name.split(".", 1)[0]
    if cls not in FIELD_CLASSES:
        return f"field {name!r}: unknown field class {cls!r} (known: {', '.join(sorted(FIELD_CLASSES))})"
    return None


def _unquoted(text: str) -> tuple[str, list[str]]:
    """The text with quoted strings blanked out, plus quoting errors."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and i + 1 < len(text):
                out.append("  ")
                i += 2
                continue
            if ch == quote:
                quote = ""
            out.append(" ")
        elif ch in "\"'":
            quote = ch
            out.append(" ")
        else:
            out.append(ch)
        i += 1
    errors = [f"unterminated {quote} quote"] if quote else []
    return "".join(out), errors


def condition_errors(condition: object, *, fragment: bool = False) -> list[str]:
    """Syntax errors in a condition: empty, unbalanced quotes or parentheses, odd field names.

    ``fragment`` is for appended conditions, which must start with ``and``/``or`` because
    Falco concatenates them to the original text.
    """
    if not isinstance(condition, str) or not condition.strip():
        return ["condition must be a non-empty string"]
    bare, errors = _unquoted(condition)
    depth = 0
    for ch in bare:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            errors.append("unbalanced parentheses: ')' without '('")
            break
    if depth > 0:
        errors.append(f"unbalanced parentheses: {depth} '(' not closed")
    starts_with_operator = re.match(r"\s*(and|or)\b", bare) is not None
    if fragment and not starts_with_operator:
        errors.append("an appended condition must start with 'and' or 'or' (it is concatenated as text)")
    elif not fragment and starts_with_operator:
        errors.append("condition starts with 'and'/'or': only an appended condition (override append) may")
    for match in FIELD_RE.finditer(bare):
        start = match.start()
        if start and (bare[start - 1].isalnum() or bare[start - 1] in "._-/%"):
            continue  # part of a bare value such as /etc/x.conf
        if _OP_AFTER_FIELD.match(bare, match.end()):
            err = field_error(match.group(0))
            if err:
                errors.append(f"condition: {err}")
    return errors


def output_errors(output: object) -> list[str]:
    """Errors in a rule output: empty, or %fields of unknown classes."""
    if not isinstance(output, str) or not output.strip():
        return ["output must be a non-empty string"]
    return [
        f"output: unknown field class {m.group(1)!r} in %{m.group(1)}..."
        for m in _OUTPUT_FIELD_RE.finditer(output)
        if m.group(1) not in FIELD_CLASSES
    ]


def _scalar_error(value: object, where: str) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return f"{where}: {value!r} must be a non-empty string or number"
    if isinstance(value, str) and not value.strip():
        return f"{where}: empty value (Falco rejects empty exception values)"
    return None


def exception_errors(exc: Any, where: str, *, needs_fields: bool, needs_values: bool) -> list[str]:
    """Errors in one ``exceptions`` entry (name, fields, comps, values alignment)."""
    if not isinstance(exc, dict):
        return [f"{where}: must be a mapping with name, fields, comps, values"]
    errors = [
        f"{where}.{k}: unknown key (expected name, fields, comps, values)"
        for k in exc
        if k not in ("name", "fields", "comps", "values")
    ]
    name = exc.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append(f"{where}: name is required")
    fields, comps, values = exc.get("fields"), exc.get("comps"), exc.get("values")
    if fields is None:
        if needs_fields:
            errors.append(
                f"{where} ({name}): fields are required: values can only be appended to an exception "
                "the base rule already defines, and no upstream Falco rule defines exceptions"
            )
        if comps is not None:
            errors.append(
                f"{where}: comps without fields (comps cannot be appended to an existing exception)"
            )
        single = True
        field_list: list[Any] = []
    else:
        single = isinstance(fields, str)
        field_list = [fields] if single else fields if isinstance(fields, list) else []
        if not field_list:
            errors.append(f"{where}: fields must be a field name or a non-empty list of field names")
        errors += [f"{where}: {e}" for f in field_list if (e := field_error(f))]
    comp_list = _comps(comps, single, len(field_list), where, errors)
    if values is None or values == []:
        if needs_values:
            errors.append(f"{where}: values are required (a new exception needs at least one value tuple)")
        return errors
    if not isinstance(values, list):
        return [*errors, f"{where}: values must be a list"]
    for i, tup in enumerate(values):
        vwhere = f"{where}.values[{i}]"
        if fields is None:  # appending to an existing exception: its fields are not known here
            slots = tup if isinstance(tup, list) else [tup]
            errors += [e for v in slots if not isinstance(v, list) and (e := _scalar_error(v, vwhere))]
            continue
        if single:
            if e := _scalar_error(tup, vwhere):
                errors.append(e + " (a single-field exception takes a plain list of values)")
            continue
        if not isinstance(tup, list):
            errors.append(f"{vwhere}: must be a list aligned with fields {field_list}")
            continue
        if field_list and len(tup) != len(field_list):
            errors.append(f"{vwhere}: {len(tup)} values for {len(field_list)} fields {field_list}")
        for j, slot in enumerate(tup):
            op = comp_list[j] if j < len(comp_list) else "="
            if isinstance(slot, list):
                if op not in LIST_OPERATORS:
                    errors.append(f"{vwhere}[{j}]: a list needs comp in/pmatch/intersects, not {op!r}")
                errors += [e for v in slot if (e := _scalar_error(v, f"{vwhere}[{j}]"))]
            elif e := _scalar_error(slot, f"{vwhere}[{j}]"):
                errors.append(e)
    return errors


def _comps(comps: Any, single: bool, n_fields: int, where: str, errors: list[str]) -> list[str]:
    """Check comps against fields; return the effective operator list."""
    if comps is None:
        return ["in"] if single else ["="] * n_fields
    comp_list = [comps] if isinstance(comps, str) else comps if isinstance(comps, list) else []
    if not comp_list:
        errors.append(f"{where}: comps must be an operator or a list of operators")
    bad = [c for c in comp_list if c not in OPERATORS]
    if bad:
        errors.append(f"{where}: unknown comparison operators {bad} (Falco: {', '.join(sorted(OPERATORS))})")
    if single and n_fields:
        if not isinstance(comps, str):
            errors.append(f"{where}: with a single field (a string), comps must be a single operator too")
        elif comps not in LIST_OPERATORS:
            errors.append(
                f"{where}: with a single field, comps must be in, pmatch or intersects, not {comps!r}"
            )
    elif n_fields and isinstance(comps, str):
        errors.append(f"{where}: fields is a list, so comps must be a list of the same length")
    elif n_fields and len(comp_list) != n_fields:
        errors.append(f"{where}: {len(comp_list)} comps for {n_fields} fields (must be equal length)")
    return [str(c) for c in comp_list]
