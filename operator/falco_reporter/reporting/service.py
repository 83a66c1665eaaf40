"""Assemble a validated AlertReport from a writer's draft, falling back to the built-in writer."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from falco_reporter.knowledge.base import KnowledgeBase
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.report import (
    ANALYSIS_MAX,
    AlertRef,
    AlertReportSpec,
    Incident,
    Occurrences,
    ProcessInfo,
    ReportMitigation,
    Subject,
    Workload,
)
from falco_reporter.reporting import markdown
from falco_reporter.reporting.builtin import BuiltinWriter
from falco_reporter.reporting.context import (
    IncidentNarrator,
    ReportContext,
    ReportDraft,
    ReportWriter,
    WriterFailed,
)
from falco_reporter.reporting.redaction import redact_alert
from falco_reporter.validation import ValidationResult, validate_snippet
from falco_reporter.validation.safety import check_mitigation

log = logging.getLogger(__name__)

#: Extra check for Kubernetes manifests (a server-side dry run when the operator runs).
ManifestCheck = Callable[[str], Awaitable[ValidationResult]]


class ReportService:
    """Writes one report per alert: the configured writer first, the built-in writer on failure."""

    def __init__(
        self,
        kb: KnowledgeBase,
        writer: ReportWriter | None = None,
        *,
        timeout: float = 120.0,
        manifest_check: ManifestCheck | None = None,
        redact: bool = True,
    ) -> None:
        self._kb = kb
        self._writer = writer
        self._builtin = BuiltinWriter()
        self._timeout = timeout
        self._manifest_check = manifest_check
        self._redact = redact

    def context(
        self,
        alert: FalcoAlertSpec,
        enrichment: Enrichment,
        *,
        name: str,
        namespace: str,
        occurrences: Occurrences,
        uid: str = "",
    ) -> ReportContext:
        # Reports go to git and to people: secrets in the alert never reach one (the FalcoAlert
        # keeps the raw alert, under namespace RBAC).
        kinds: list[str] = []
        if self._redact:
            alert, kinds = redact_alert(alert)
        return ReportContext(
            redactions=tuple(kinds),
            alert=alert,
            enrichment=enrichment,
            entry=self._kb.get(alert.rule),
            alert_name=name,
            alert_namespace=namespace,
            occurrences=occurrences,
            alert_uid=uid,
            knowledge_version=self._kb.version,
        )

    async def write(self, ctx: ReportContext) -> AlertReportSpec:
        """A complete report; never raises for writer problems (the reason is recorded instead)."""
        draft: ReportDraft | None = None
        reason = ""
        if self._writer is not None:
            started = time.monotonic()
            try:
                draft = await asyncio.wait_for(self._writer.write(ctx), timeout=self._timeout)
                draft.writer.latency_ms = draft.writer.latency_ms or int((time.monotonic() - started) * 1000)
            except TimeoutError:
                reason = f"{self._writer.backend} writer timed out after {self._timeout:g}s"
            except WriterFailed as exc:
                reason = str(exc)
            except Exception as exc:  # a writer bug must not cost the report
                log.exception("report writer %s failed", self._writer.backend)
                reason = f"{self._writer.backend} writer failed: {type(exc).__name__}: {exc}"
        if draft is None:
            draft = self._builtin.write_sync(ctx, fallback_reason=reason)
        return await self.assemble(ctx, draft)

    def told(self, namespace: str, incident: Incident) -> Incident:
        """The incident with the best narrative known without a model call (cached, else built-in)."""
        writer = self._writer
        if incident.alerts < 2 or not isinstance(writer, IncidentNarrator):
            return incident
        text = writer.cached_narrative(namespace, incident)
        return incident if text is None else _narrated(incident, text, writer.backend)

    async def narrate(self, namespace: str, incident: Incident) -> Incident:
        """The incident told once per change by the model (a one-alert incident is its report); built-in on failure."""
        writer = self._writer
        if incident.alerts < 2 or not isinstance(writer, IncidentNarrator):
            return incident
        try:
            text = await asyncio.wait_for(writer.narrate(namespace, incident), timeout=self._timeout)
        except TimeoutError:
            log.info("incident %s: narrative timed out after %gs", incident.id, self._timeout)
            return incident
        except WriterFailed as exc:
            log.info("incident %s: built-in narrative (%s)", incident.id, exc)
            return incident
        return _narrated(incident, text, writer.backend)

    def write_builtin(self, ctx: ReportContext) -> AlertReportSpec:
        """The built-in report, synchronously and without the manifest check (offline ``render``)."""
        draft = self._builtin.write_sync(ctx)
        checked = [self._kept(m, self._offline_check(m)) for m in draft.mitigations]
        return self._spec(ctx, draft, [m for m in checked if m is not None])

    async def assemble(self, ctx: ReportContext, draft: ReportDraft) -> AlertReportSpec:
        """Add identity and subject, validate every snippet, and render Markdown."""
        checked = [await self._validated(m) for m in draft.mitigations]
        return self._spec(ctx, draft, [m for m in checked if m is not None])

    def _spec(
        self, ctx: ReportContext, draft: ReportDraft, mitigations: list[ReportMitigation]
    ) -> AlertReportSpec:
        spec = AlertReportSpec(
            alert_ref=AlertRef(name=ctx.alert_name, namespace=ctx.alert_namespace, uid=ctx.alert_uid),
            rule=ctx.alert.rule,
            priority=ctx.alert.priority,
            source=ctx.alert.source,
            occurrences=ctx.occurrences,
            subject=subject_of(ctx.alert, ctx.enrichment),
            summary=draft.summary,
            analysis=draft.analysis,
            severity=draft.severity,
            verdict=draft.verdict,
            verdict_reason=draft.verdict_reason,
            severity_reason=draft.severity_reason,
            evidence=draft.evidence,
            mitre=draft.mitre,
            false_positive_hints=draft.false_positive_hints,
            mitigations=mitigations,
            investigation=draft.investigation,
            references=[r for r in draft.references if self._kb.allowed_url(r.url)],
            writer=draft.writer.model_copy(
                update={"redactions": sorted(set(draft.writer.redactions) | set(ctx.redactions))}
            ),
        )
        spec.markdown = markdown.render(spec)
        return spec

    @staticmethod
    def _offline_check(m: ReportMitigation) -> ValidationResult:
        return offline_check(m.kind, m.language, m.snippet, m.title, m.description)

    async def _validated(self, mitigation: ReportMitigation) -> ReportMitigation | None:
        result = self._offline_check(mitigation)
        if result.ok and mitigation.kind == "kubernetes-manifest" and self._manifest_check is not None:
            # A dry run that was forbidden or could not reach the server says "not validated" (unverified).
            result = await self._manifest_check(mitigation.snippet)
        return self._kept(mitigation, result)

    @staticmethod
    def _kept(mitigation: ReportMitigation, result: ValidationResult) -> ReportMitigation | None:
        if not result.ok:
            log.warning("dropping mitigation %r: %s", mitigation.title, "; ".join(result.errors))
            return None
        return mitigation.model_copy(update={"validated": result.summary()})


@functools.lru_cache(maxsize=1024)
def offline_check(kind: str, language: str, snippet: str, title: str, description: str) -> ValidationResult:
    """The safety policy, then the snippet's own validator: pure, so cached (alerts of one rule and
    workload get the same mitigations; this was an eighth of the operator's CPU per report)."""
    # The safety policy first, for every writer: a well-formed snippet can still widen privilege.
    result = check_mitigation(kind, language, snippet, title=title, description=description)
    return validate_snippet(kind, language, snippet) if result.ok else result


def _narrated(incident: Incident, text: str, backend: str) -> Incident:
    return incident.model_copy(update={"narrative": text[:ANALYSIS_MAX], "narrative_by": backend})


def subject_of(alert: FalcoAlertSpec, enrichment: Enrichment) -> Subject:
    """The report's subject: the enrichment where it found things, else what the alert says."""
    return Subject(
        namespace=enrichment.namespace or alert.subject.namespace,
        pod=enrichment.pod or alert.subject.pod,
        container=enrichment.container.name or alert.subject.container_name,
        image=enrichment.container.image or alert.subject.image,
        image_digest=enrichment.container.image_digest,
        workload=Workload(kind=enrichment.workload.kind, name=enrichment.workload.name),
        node=enrichment.node,
        falco_host=alert.hostname,
        service_account=enrichment.service_account,
        process=ProcessInfo(
            name=alert.text("proc.name") or "",
            exepath=alert.text("proc.exepath") or alert.text("proc.exe") or "",
            cmdline=alert.text("proc.cmdline") or "",
            parent=alert.text("proc.pname") or "",
            user=alert.text("user.name") or alert.text("ka.user.name") or "",
        ),
    )
