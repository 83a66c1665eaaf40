"""Everything a report writer may use, and the draft it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from falco_reporter.knowledge.model import KnowledgeEntry
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.report import (
    Evidence,
    Incident,
    MitreMapping,
    Occurrences,
    ReferenceLink,
    ReportMitigation,
    Severity,
    Verdict,
    Writer,
)


@dataclass(frozen=True)
class ReportContext:
    """The grounding of a report: the alert, the cluster's view of it, and the curated entry."""

    alert: FalcoAlertSpec
    enrichment: Enrichment
    entry: KnowledgeEntry | None
    alert_name: str
    alert_namespace: str
    occurrences: Occurrences
    alert_uid: str = ""
    knowledge_version: str = ""
    #: Kinds of secrets replaced in ``alert`` before any writer saw it.
    redactions: tuple[str, ...] = ()


@dataclass
class ReportDraft:
    """What a writer produces; the service adds identity, subject and Markdown."""

    summary: str
    analysis: str
    severity: Severity
    verdict: Verdict
    verdict_reason: str
    writer: Writer
    mitre: list[MitreMapping] = field(default_factory=list)
    false_positive_hints: list[str] = field(default_factory=list)
    mitigations: list[ReportMitigation] = field(default_factory=list)
    investigation: list[str] = field(default_factory=list)
    references: list[ReferenceLink] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    severity_reason: str = ""


class ReportWriter(Protocol):
    """A way of writing reports: the built-in writer, or the LLM chain."""

    @property
    def backend(self) -> str: ...

    async def write(self, ctx: ReportContext) -> ReportDraft: ...


@runtime_checkable
class IncidentNarrator(Protocol):
    """A writer that also tells incidents (the LLM chain); the built-in story is ``incidents.tell``."""

    def cached_narrative(self, namespace: str, incident: Incident) -> str | None: ...

    async def narrate(self, namespace: str, incident: Incident) -> str: ...


class WriterFailed(Exception):
    """A writer could not produce a valid draft; the reason goes into writer.fallbackReason."""
