"""The LLM's answer merged onto the built-in draft, which keeps its exact, curated parts.

The draft's evidence, MITRE mapping, Falco exception, curated mitigations, hints and references
stay; the model adds the narrative, may raise the verdict or severity, and adds a few mitigations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from falco_reporter.models.report import ReportMitigation, Writer
from falco_reporter.reporting.context import ReportDraft
from falco_reporter.reporting.evidence.judge import VERDICT_RANK, rank
from falco_reporter.reporting.guard import LLMAnswer, unsafe_snippet

log = logging.getLogger(__name__)

MAX_EXTRA_MITIGATIONS = 3


def merge_answer(
    base: ReportDraft,
    answer: LLMAnswer,
    *,
    writer: Writer,
    allowed_url: Callable[[str], bool] | None = None,
) -> ReportDraft:
    """The model's text on top of the built-in draft's exact, curated parts.

    ``allowed_url`` is accepted for older callers: the model no longer cites references.
    """
    titles = {m.title.casefold() for m in base.mitigations}
    snippets = {m.snippet.strip() for m in base.mitigations if m.snippet.strip()}
    extra: list[ReportMitigation] = []
    for m in answer.mitigations:
        problem = unsafe_snippet(m)
        if (
            m.kind == "falco-exception"
            or m.title.casefold() in titles
            or m.snippet.strip() in snippets
            or problem
        ):
            if problem:
                log.info("dropping model mitigation %r: %s", m.title, problem)
            continue
        titles.add(m.title.casefold())
        extra.append(
            ReportMitigation(
                title=m.title.strip(),
                description=m.description.strip(),
                kind=m.kind,
                language=m.language,
                snippet=m.snippet.strip() + ("\n" if m.language == "yaml" and m.snippet.strip() else ""),
            )
        )
        if len(extra) == MAX_EXTRA_MITIGATIONS:
            break
    verdict, severity, reason = base.verdict, base.severity, base.verdict_reason
    # The model may raise the verdict or severity with its stated reason, never lower them below
    # what the evidence gives (a persuasive injection must not talk a report down). Its reason (checked
    # by reporting.sense to cite the evidence) replaces ours unless it argued for a lower verdict.
    proposed = answer.verdict or base.verdict
    if VERDICT_RANK[proposed] >= VERDICT_RANK[base.verdict]:
        verdict, reason = proposed, answer.verdict_reason.strip() or base.verdict_reason
    else:
        log.info("keeping verdict %s over the model's lower %s", base.verdict, proposed)
    if answer.severity is not None and rank(answer.severity) > rank(base.severity):
        severity = answer.severity
    return ReportDraft(
        summary=answer.summary.strip(),
        analysis=answer.analysis.strip(),
        severity=severity,
        verdict=verdict,
        verdict_reason=reason,
        severity_reason=base.severity_reason,
        evidence=base.evidence,
        writer=writer,
        mitre=base.mitre,
        false_positive_hints=base.false_positive_hints,
        mitigations=[*base.mitigations, *extra],
        investigation=base.investigation,
        references=base.references,
    )
