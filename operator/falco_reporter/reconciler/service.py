"""Reconcile one FalcoAlert: enrich it, write its AlertReport, keep occurrences in sync.

Every step is idempotent: the report's name is the alert's name, a 409 on create means it
is already done, and the report is owned by the alert (garbage-collected with it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from falco_reporter import metrics
from falco_reporter.enrichment.service import enrich
from falco_reporter.kube.errors import KubeConflict, KubeNotFound
from falco_reporter.kube.objects import KubeObjects
from falco_reporter.kube.resources import CustomResources
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.report import AlertReportSpec, Occurrences
from falco_reporter.models.resources import (
    API,
    COND_ENRICHED,
    COND_REPORTED,
    COND_SUPPRESSED,
    LABEL_INCIDENT,
    MANAGED_BY,
    Condition,
    accepted_false_positive,
)
from falco_reporter.reconciler.errors import InvalidFalcoAlert, RetryLater, retry_on_api_errors
from falco_reporter.reconciler.incidents import IncidentTracker
from falco_reporter.reporting.incidents import subject_of, with_incident
from falco_reporter.reporting.service import ReportService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the handler writes into the FalcoAlert's status."""

    enrichment: Enrichment | None
    report_name: str
    conditions: list[Condition]
    created: bool
    count: int = 0


class AlertReconciler:
    def __init__(
        self,
        alerts: CustomResources,
        reports: CustomResources,
        objects: KubeObjects,
        writer: ReportService,
        incidents: IncidentTracker | None = None,
    ) -> None:
        self._alerts = alerts
        self._reports = reports
        self._objects = objects
        self._writer = writer
        self.incidents = incidents

    async def reconcile(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        generation: int,
        spec: dict[str, Any],
        status: dict[str, Any],
    ) -> Outcome:
        """Enrich the alert and create its report (or find it already created)."""
        try:
            alert = FalcoAlertSpec.model_validate(spec)
        except ValidationError as exc:
            raise InvalidFalcoAlert(
                f"spec does not match FalcoAlert v1alpha1: {exc.error_count()} errors: "
                f"{exc.errors()[0]['msg']}"
            ) from exc
        with retry_on_api_errors():
            existing = await self._reports.find(namespace, name)
            if existing is not None:
                return self._existing(existing, generation, name, uid)
            started = time.perf_counter()
            enrichment = await enrich(alert, self._objects)
            occurrences = _occurrences(alert, status)
            ctx = self._writer.context(
                alert, enrichment, name=name, namespace=namespace, occurrences=occurrences, uid=uid
            )
            report = await self._writer.write(ctx)
            subject = subject_of(alert, enrichment)
            if self.incidents is not None and subject:
                incident = await self.incidents.join(namespace, subject, name, report)
                report = with_incident(report, incident)
            created = await self._create_report(namespace, name, uid, report)
        metrics.REPORT_LATENCY.observe(time.perf_counter() - started)
        if created:
            metrics.REPORTS.labels(report.writer.backend, report.verdict).inc()
        for missing in enrichment.missing:
            metrics.ENRICHMENT_GAPS.labels(missing.split(" ", 1)[0]).inc()
        enriched = Condition(
            type=COND_ENRICHED,
            status="True",
            reason="PodFound" if enrichment.pod_found else ("PodMissing" if enrichment.missing else "NoPod"),
            message="; ".join(enrichment.notes + [f"missing {m}" for m in enrichment.missing])[:1000],
            observed_generation=generation,
        )
        reason = "ReportWritten" if not report.writer.fallback_reason else "ReportWrittenByFallback"
        message = f"written by {report.writer.backend}" + (
            f" ({report.writer.fallback_reason})" if report.writer.fallback_reason else ""
        )
        return Outcome(
            enrichment,
            name,
            [enriched, self._reported(generation, reason, message)],
            created,
            occurrences.count,
        )

    def _existing(self, report: dict[str, Any], generation: int, name: str, uid: str) -> Outcome:
        """The report exists (a restart, or a recurring alert): never rewrite it, maybe mark it suppressed."""
        count = int(((report.get("spec") or {}).get("occurrences") or {}).get("count", 0))
        suppressed = accepted_false_positive(report)
        owners = [o.get("uid") for o in (report.get("metadata") or {}).get("ownerReferences") or []]
        if not suppressed and owners and uid not in owners:
            # The report belongs to an earlier FalcoAlert of this name that was deleted; the
            # garbage collector is about to delete it. Write ours once it is gone.
            raise RetryLater(
                "the existing report belongs to a deleted FalcoAlert; waiting for its removal", 3
            )
        conditions = [self._reported(generation, "AlreadyReported", "report exists")]
        if suppressed:
            conditions.append(
                Condition(
                    type=COND_SUPPRESSED,
                    status="True",
                    reason="MatchesAcceptedFalsePositive",
                    message="a reviewer accepted this pattern as a false positive; no new report was written",
                    observed_generation=generation,
                )
            )
        return Outcome(None, name, conditions, False, count)

    @staticmethod
    def _reported(generation: int, reason: str, message: str) -> Condition:
        return Condition(
            type=COND_REPORTED,
            status="True",
            reason=reason,
            message=message[:1000],
            observed_generation=generation,
        )

    async def _create_report(self, namespace: str, name: str, uid: str, report: AlertReportSpec) -> bool:
        body = report_object(namespace, name, uid, report)
        try:
            await self._reports.create(namespace, body, answer=False)
        except KubeConflict:
            return False
        return True

    def forget(self, namespace: str, name: str, spec: dict[str, Any], status: dict[str, Any]) -> None:
        """A FalcoAlert was deleted: take it out of its incident."""
        if self.incidents is None:
            return
        try:
            alert = FalcoAlertSpec.model_validate(spec)
            enrichment = Enrichment.model_validate((status or {}).get("enrichment") or {})
        except ValidationError:
            return
        subject = subject_of(alert, enrichment)
        if subject:
            self.incidents.forget(namespace, subject, _occurrences(alert, status).first_seen, name)

    async def sync_occurrences(
        self, namespace: str, name: str, occurrences: dict[str, Any], *, uid: str = ""
    ) -> bool:
        """Copy the alert's occurrences into its report without regenerating it.

        A durable false-positive report outlives its first FalcoAlert: occurrences of a later
        FalcoAlert (another uid) are counted as ``status.suppressedOccurrences`` instead of
        overwriting the reviewed report's own history.
        """
        try:
            occ = Occurrences.model_validate(occurrences)
        except ValidationError:
            return False
        with retry_on_api_errors():
            try:
                report = await self._reports.find(namespace, name)
                if report is None:
                    return False
                alert_uid = ((report.get("spec") or {}).get("alertRef") or {}).get("uid")
                if uid and alert_uid not in ("", None, uid):
                    if not accepted_false_positive(report):
                        return False  # a stale report about to be garbage-collected
                    await self._reports.patch_status(
                        namespace, name, {"status": {"suppressedOccurrences": occ.count}}
                    )
                    return True
                patch = {"spec": {"occurrences": occ.model_dump(by_alias=True)}}
                await self._reports.patch(namespace, name, patch)
            except KubeNotFound:
                return False
        return True


def _occurrences(alert: FalcoAlertSpec, status: dict[str, Any]) -> Occurrences:
    occ = (status or {}).get("occurrences") or {}
    return Occurrences(
        count=max(1, int(occ.get("count", 1))),
        first_seen=occ.get("firstSeen") or alert.time,
        last_seen=occ.get("lastSeen") or alert.time,
    )


def report_object(namespace: str, name: str, alert_uid: str, report: AlertReportSpec) -> dict[str, Any]:
    """The AlertReport manifest, owned by its FalcoAlert."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "falcoreporter.io/severity": report.severity,
            "falcoreporter.io/verdict": report.verdict,
            "falcoreporter.io/writer": report.writer.backend,
        },
    }
    if report.incident is not None:
        meta["labels"][LABEL_INCIDENT] = report.incident.id
    if alert_uid:
        meta["ownerReferences"] = [
            {
                "apiVersion": API,
                "kind": "FalcoAlert",
                "name": name,
                "uid": alert_uid,
                "controller": True,
                "blockOwnerDeletion": False,
            }
        ]
    return {"apiVersion": API, "kind": "AlertReport", "metadata": meta, "spec": report.to_k8s()}
