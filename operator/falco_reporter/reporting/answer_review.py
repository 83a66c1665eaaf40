"""One report's model answers reviewed: the guard's form checks, then the sense checks.

The LLM writer asks a :class:`AnswerReview` about each answer; it remembers every attempt (the eval
reads them), counts outcomes in Prometheus per provider, and words the fallback reason so that it
names the fields that failed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from falco_reporter import metrics
from falco_reporter.knowledge.base import KnowledgeBase
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.reporting.answer_parsing import short
from falco_reporter.reporting.context import ReportContext, ReportDraft
from falco_reporter.reporting.guard import LLMAnswer, check_answer, grounding_anchors, untrusted_texts
from falco_reporter.reporting.prompt import NO_ENTRY_NOTE, retry_note
from falco_reporter.reporting.sense import Grounding, check_sense, grounding, narrative

# Quoted values in a problem are the alert's own names: repeating those is grounding, not an echo.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_FIELD = re.compile(r"^([a-z_]+)(?:\[\d+\])?[.:]")


@dataclass
class Attempt:
    """One model answer and what the checks said about it."""

    problems: list[str]
    flags: list[str] = field(default_factory=list)
    tokens: int = 0
    text: dict[str, str] = field(default_factory=dict)
    """The answer's narrative fields as written (the eval records them, so a reader can judge)."""

    @property
    def outcome(self) -> str:
        return "rejected" if self.problems else "flagged" if self.flags else "accepted"


@dataclass
class AnswerReview:
    """Checks a report's answers and keeps the record of its attempts."""

    provider: str
    kb: KnowledgeBase
    untrusted: list[str]
    anchors: list[str]
    ground: Grounding
    attempts: list[Attempt] = field(default_factory=list)

    @classmethod
    def for_report(
        cls,
        provider: str,
        kb: KnowledgeBase,
        ctx: ReportContext,
        alert: FalcoAlertSpec,
        base: ReportDraft,
        prompt: tuple[str, str],
    ) -> AnswerReview:
        """``alert`` is the (redacted) alert the model saw; ``prompt`` its (system, human) texts."""
        system, human = prompt
        # The task restated at the end of the human text, and the note for a rule without an entry,
        # are instructions too: copying them is an echo.
        instructions = "\n".join(
            (system, human.rsplit("\n\n", 1)[-1], NO_ENTRY_NOTE if ctx.entry is None else "")
        )
        return cls(
            provider=provider,
            kb=kb,
            untrusted=untrusted_texts(alert, ctx.enrichment),
            anchors=grounding_anchors(alert, ctx.enrichment),
            ground=grounding(ctx, base, instructions=instructions, rules=kb.entries, data_texts=[human]),
        )

    def review(self, answer: LLMAnswer | None, problems: Sequence[str], *, tokens: int = 0) -> list[str]:
        """Every reason to reject this answer (empty: use it); ``problems`` are the parsing ones."""
        found, flags = list(problems), []
        if answer is not None and not found:
            found = check_answer(
                answer, allowed_url=self.kb.allowed_url, untrusted=self.untrusted, anchors=self.anchors
            )
            # What the model was told last time, and the problems it was told from: copying either
            # back is an echo, not an answer.
            previous = self.attempts[-1].problems if self.attempts else []
            echo_of = [retry_note(previous), *(_QUOTED.sub(" ", p) for p in previous)] if previous else []
            sense = check_sense(answer, self.ground, echo_of=echo_of)
            found += sense.problems
            flags = sense.flags
        text = (
            {} if answer is None else {k: v for k, v in narrative(answer) if not k.startswith("mitigations")}
        )
        attempt = Attempt(problems=list(dict.fromkeys(found)), flags=flags, tokens=tokens, text=text)
        self.attempts.append(attempt)
        metrics.LLM_ANSWERS.labels(self.provider, attempt.outcome).inc()
        return attempt.problems

    @property
    def flags(self) -> list[str]:
        return self.attempts[-1].flags if self.attempts else []

    def failure(self) -> str:
        """The fallback reason: the attempts, the failing fields, then the problems."""
        metrics.LLM_FALLBACKS.labels(self.provider).inc()
        problems = self.attempts[-1].problems if self.attempts else []
        fields = list(dict.fromkeys(m.group(1) for p in problems if (m := _FIELD.match(p))))
        named = f" (fields: {', '.join(fields)})" if fields else ""
        return short(
            f"{self.provider} answer rejected {len(self.attempts)} times{named}: {'; '.join(problems)}", 1000
        )
