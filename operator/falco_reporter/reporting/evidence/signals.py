"""Evaluate the knowledge base's machine-checkable benign-cause signals against one alert."""

from __future__ import annotations

import fnmatch
import re
from functools import cache

from falco_reporter.knowledge.model import BenignCause, KnowledgeEntry, Signal
from falco_reporter.models.report import Evidence
from falco_reporter.reporting.evidence.fields import FieldView


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _one(op: str, value: str, wanted: str) -> bool:
    if op in ("equals", "in"):
        return value == wanted
    if op == "startswith":
        return value.startswith(wanted)
    if op == "endswith":
        return value.endswith(wanted)
    if op == "contains":
        return wanted in value
    if op == "glob":
        return fnmatch.fnmatchcase(value, wanted)
    return _regex(wanted).fullmatch(value) is not None


def holds(signal: Signal, view: FieldView) -> bool:
    """True when any of the field's values satisfies the signal."""
    values = view.values(signal.field)
    if signal.op == "exists":
        return bool(values)
    return any(_one(signal.op, v, w) for v in values for w in signal.values)


def matched(cause: BenignCause, view: FieldView) -> bool:
    """A cause counts only when it has signals and all of them hold."""
    return bool(cause.signals) and all(holds(s, view) for s in cause.signals)


def benign_causes(entry: KnowledgeEntry | None, view: FieldView) -> list[Evidence]:
    """Benign evidence for each curated cause whose signals all hold."""
    if entry is None:
        return []
    out: list[Evidence] = []
    for i, cause in enumerate(entry.benign_causes):
        if not matched(cause, view):
            continue
        shown = "; ".join(f"{s.field}={view.get(s.field)}" for s in cause.signals if view.get(s.field))
        out.append(
            Evidence(
                id=f"known-cause-{i + 1}",
                # Only an identity match proves the cause; other signals are consistent with it.
                observation=(
                    f"Matches a known benign cause: {_first_sentence(cause.cause)}"
                    if cause.identity
                    else f"Consistent with a known benign cause (not proof of it): {_first_sentence(cause.cause)}"
                ),
                source=", ".join(dict.fromkeys(s.field for s in cause.signals)),
                value=shown[:300],
                direction="benign",
                strength="strong" if cause.identity else "moderate",
            )
        )
    return out


def _first_sentence(text: str) -> str:
    head = " ".join(text.split()).split(". ")[0].rstrip(".")
    return head + "."
