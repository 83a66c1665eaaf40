"""Remove secrets from alert text before it leaves the operator (for an LLM provider).

Command lines and Falco output lines carry secrets surprisingly often: ``mysql -pS3cret``,
``curl -H 'Authorization: Bearer ...'``, ``git clone https://user:token@host/...``,
``AWS_SECRET_ACCESS_KEY=... aws s3 cp``. Each secret is replaced by a placeholder that is
stable within one :class:`Redactor` (one report): the same secret always becomes the same
``[REDACTED-n]``, so the model can still tell "the same password was used twice".

The forms themselves live in :mod:`falco_reporter.reporting.secret_rules`; this module applies
them. Redaction runs at ingest (before a FalcoAlert is stored) and again for every report and
prompt, so its cost matters: a rule runs only when one of its hint substrings is in the text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.reporting.secret_rules import RULES, SEGMENT_RULES, Rule, SegmentRule

PLACEHOLDER_RE = re.compile(r"\[REDACTED-\d+\]")


#: No secret form fits in fewer characters (``-pX`` needs a tool name before it).
_SHORTEST = 6
_ALL: tuple[Rule | SegmentRule, ...] = (*RULES, *SEGMENT_RULES)
# Which rules each hint wakes up: one substring test per distinct hint, then only those rules run.
_BY_HINT: dict[str, frozenset[int]] = {
    hint: frozenset(i for i, rule in enumerate(_ALL) if hint in rule.hints)
    for hint in dict.fromkeys(h for rule in _ALL for h in rule.hints)
}
# Hints as a two-level tree: a hint that contains another can only occur where that one does, so
# it is tested only then (about 90 tests of a whole alert instead of 150).
_TOP_HINTS: dict[str, tuple[str, ...]] = {
    top: tuple(h for h in _BY_HINT if h != top and top in h)
    for top in _BY_HINT
    if not any(other != top and other in top for other in _BY_HINT)
}


def _hints_in(lowered: str) -> list[str]:
    """The hints that occur in a lower-cased text."""
    found: list[str] = []
    for top, children in _TOP_HINTS.items():
        if top in lowered:
            found.append(top)
            found += [c for c in children if c in lowered]
    return list(dict.fromkeys(found))


@dataclass
class Redactor:
    """Redacts secrets with placeholders that stay stable across calls (use one per report)."""

    _placeholders: dict[str, str] = field(default_factory=dict)
    _kinds: list[str] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        """The kinds of secret found so far, sorted."""
        return sorted(self._kinds)

    @property
    def count(self) -> int:
        """How many distinct secrets were replaced."""
        return len(self._placeholders)

    def placeholder(self, secret: str, kind: str) -> str:
        """The stable placeholder for one secret value."""
        if kind not in self._kinds:
            self._kinds.append(kind)
        existing = self._placeholders.get(secret)
        if existing is None:
            existing = f"[REDACTED-{len(self._placeholders) + 1}]"
            self._placeholders[secret] = existing
        return existing

    def redact(self, text: str, hints: Iterable[str] | None = None) -> str:
        """The text with every recognised secret replaced (``hints``: a superset of those in it)."""
        if len(text) < _SHORTEST:
            return text
        lowered = text.lower()
        candidates = _hints_in(lowered) if hints is None else [h for h in hints if h in lowered]
        woken = [_BY_HINT[hint] for hint in candidates]
        if not woken:
            return text
        for i in sorted(frozenset().union(*woken)):
            rule = _ALL[i]
            if isinstance(rule, Rule):
                text = self._apply(rule, text)
            else:
                text = rule.segment.sub(functools.partial(self._in_segment, rule=rule), text)
        return text

    def redact_data(self, value: Any) -> Any:
        """Redact every string inside nested dicts/lists (keys are kept)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_data(v) for v in value]
        return value

    def _apply(self, rule: Rule, text: str) -> str:
        def replace(m: re.Match[str]) -> str:
            if rule.accept is not None and not rule.accept(m):
                return m.group(0)
            return self._replace_group(m, rule.group, rule.kind)

        return rule.pattern.sub(replace, text)

    def _in_segment(self, seg: re.Match[str], *, rule: SegmentRule) -> str:
        def replace(m: re.Match[str]) -> str:
            return self._replace_group(m, "secret", rule.kind)

        return rule.flag.sub(replace, seg.group(0), count=1)

    def _replace_group(self, m: re.Match[str], group: str, kind: str) -> str:
        """The match with one group replaced by its placeholder (quotes around it are kept)."""
        secret = m.group(group)
        if PLACEHOLDER_RE.search(secret):
            return m.group(0)
        quote = secret[0] if len(secret) >= 2 and secret[0] in "\"'" and secret[-1] == secret[0] else ""
        core = secret[1:-1] if quote else secret
        start, end = (i - m.start(0) for i in m.span(group))
        whole = m.group(0)
        return whole[:start] + quote + self.placeholder(core, kind) + quote + whole[end:]


def redact(text: str) -> tuple[str, list[str]]:
    """Redact one text on its own: the redacted text and the kinds of secret found."""
    redactor = Redactor()
    return redactor.redact(text), redactor.kinds


def redact_alert(alert: FalcoAlertSpec, redactor: Redactor | None = None) -> tuple[FalcoAlertSpec, list[str]]:
    """The alert with its output line and every string output field redacted, and the kinds found.

    Pass a ``redactor`` to share placeholders with other text of the same report. When nothing
    was found the alert itself is returned (no copy: ingest calls this for every alert).
    """
    redactor = redactor if redactor is not None else Redactor()
    before = redactor.count
    # One pass of every hint over all the alert's text, then each string tries only the hints seen:
    # most fields are short, and a hundred substring tests per field would cost more than the rules.
    strings = [alert.output, *(v for v in alert.output_fields.values() if isinstance(v, str))]
    joined = "\n".join(strings).lower()
    hints = _hints_in(joined)
    if not hints and not any(isinstance(v, dict | list) for v in alert.output_fields.values()):
        return alert, redactor.kinds
    fields = {
        k: redactor.redact(v, hints)
        if isinstance(v, str)
        else redactor.redact_data(v)
        if isinstance(v, dict | list)
        else v
        for k, v in alert.output_fields.items()
    }
    output = redactor.redact(alert.output, hints)
    if redactor.count == before and output == alert.output and fields == alert.output_fields:
        return alert, redactor.kinds
    return alert.model_copy(update={"output": output, "output_fields": fields}, deep=True), redactor.kinds


def redacted_fields(original: FalcoAlertSpec, redacted: FalcoAlertSpec) -> list[str]:
    """The names of the output fields redaction changed (``output`` for the output line), sorted."""
    names = [k for k, v in original.output_fields.items() if redacted.output_fields.get(k) != v]
    return sorted(names + (["output"] if original.output != redacted.output else []))
