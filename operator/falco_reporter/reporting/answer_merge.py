"""The LLM's answer merged onto the built-in draft, which keeps its exact, curated parts.

The draft's MITRE mapping, Falco exception, curated mitigations, hints and references stay; the
model adds text, a verdict and a few extra mitigations, hints and allow-listed references.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from falco_reporter.models.report import ReferenceLink, ReportMitigation, Writer
from falco_reporter.reporting.context import ReportDraft
from falco_reporter.reporting.evidence.judge import rank
from falco_reporter.reporting.guard import LLMAnswer, unsafe_snippet, url_allowed

log = logging.getLogger(__name__)

MAX_EXTRA_MITIGATIONS = 3
#: unknown < likely-benign < suspicious < likely-malicious: how much concern a verdict expresses.
_VERDICT_RANK = {"unknown": 0, "likely-benign": 1, "suspicious": 2, "likely-malicious": 3}
MAX_HINTS = 8


def merge_answer(
    base: ReportDraft, answer: LLMAnswer, *, allowed_url: Callable[[str], bool], writer: Writer
) -> ReportDraft:
    """The model's text on top of the built-in draft's exact, curated parts."""
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
    hints = list(base.false_positive_hints)
    known = {h.casefold() for h in hints}
    for hint in answer.false_positive_hints:
        if hint.strip() and hint.strip().casefold() not in known and len(hints) < MAX_HINTS:
            hints.append(hint.strip())
            known.add(hint.strip().casefold())
    references = list(base.references)
    cited = {r.url for r in references}
    for ref in answer.references:
        url = url_allowed(ref.url, allowed_url)
        if url is not None and url not in cited:
            references.append(ReferenceLink(title=ref.title.strip() or url, url=url))
            cited.add(url)
    verdict, severity, reason = base.verdict, base.severity, base.verdict_reason
    # The model may raise the verdict or severity with its stated reason, never lower them below
    # what the evidence gives (a persuasive injection must not talk a report down).
    if _VERDICT_RANK[answer.verdict] > _VERDICT_RANK[base.verdict]:
        verdict, reason = answer.verdict, answer.verdict_reason.strip()
    elif answer.verdict != base.verdict:
        log.info("keeping verdict %s over the model's lower %s", base.verdict, answer.verdict)
    if rank(answer.severity) > rank(base.severity):
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
        false_positive_hints=hints,
        mitigations=[*base.mitigations, *extra],
        investigation=base.investigation,
        references=references,
    )
