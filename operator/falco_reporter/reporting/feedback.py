"""Retry feedback that says what was wrong without handing over what the checks look for.

A problem such as "summary: names nothing from the alert (mention one of 'kthreadd', ...)" is
right for a human reading ``writer.fallbackReason``, but as feedback it gives a model the very
tokens the grounding check wants, and a small model copies the sentence back and passes. The
feedback therefore names the field and the kind of fault, never a quoted value, URL or name; and
:mod:`reporting.sense` rejects an answer that repeats the feedback or the problems it came from.
"""

from __future__ import annotations

import re

#: (what a problem says, what the feedback says instead) - first match wins.
_KINDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), text)
    for p, text in (
        (r"names nothing from the alert", "does not say which workload this is about (see <alert_data>)"),
        (r"placeholder|fewer than \d+|list of field names", "says nothing concrete; write full sentences"),
        (r"JSON fragments", "holds JSON syntax; the field is plain prose"),
        (r"repeats a sentence|the same text as", "repeats itself or another field"),
        (r"repeats the (?:prompt|retry)", "copies instructions instead of describing the alert"),
        (r"copies the knowledge entry", "copies <knowledge_entry> instead of describing this alert"),
        (r"cites none of the report's evidence", "cites no item of the baseline evidence (by id)"),
        (r"calls the activity benign", "contradicts the baseline evidence"),
        (r"which the alert does not contain", "names a value that is not in the data blocks"),
        (r"another rule|MITRE technique", "describes the rule differently from <knowledge_entry>"),
        (r"URL|host", "cites a link or host that is not allowed"),
        (r"instruction-like|injected", "repeats text planted in the alert data"),
        (r"cut off at max_tokens", "was too long and got cut off; write less"),
        (r"schema|not valid JSON|no JSON|no tool", "does not match the answer schema"),
        (r"characters, more than|longer than", "is too long"),
        (r"is not one of", "uses a value outside the allowed list"),
        (r"\bempty\b", "is empty"),
    )
)
_SCHEMA_LOC = re.compile(r"(?:schema: |; )([a-z_]+)(?:\.[\w.]+)?: ")
_FIELD = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)?):\s")


def feedback_lines(problems: list[str]) -> list[str]:
    """One generic line per distinct (field, kind of problem)."""
    lines: list[str] = []
    for problem in problems:
        m = _FIELD.match(problem)
        where = m.group(1) if m else "answer"
        kind = next((text for pattern, text in _KINDS if pattern.search(problem)), "was rejected by a check")
        if kind == "does not match the answer schema":  # field names are safe to repeat, values are not
            where = ", ".join(dict.fromkeys(_SCHEMA_LOC.findall(problem))) or where
        line = f"{where}: {kind}"
        if line not in lines:
            lines.append(line)
    return lines[:8]


def retry_feedback(problems: list[str]) -> str:
    listed = "\n".join(f"- {line}" for line in feedback_lines(problems))
    return (
        "Your previous answer was rejected:\n"
        f"{listed}\n"
        "Write the whole answer again about this alert, in your own words, following the schema."
    )
