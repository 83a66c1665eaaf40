"""The pipeline without a cluster: alert JSON + objects file -> AlertReport objects."""

from __future__ import annotations

import asyncio
from typing import Any

from falco_reporter.enrichment.service import enrich
from falco_reporter.enrichment.source import StaticObjects
from falco_reporter.knowledge.base import load as load_knowledge
from falco_reporter.models.falco import normalise, object_name, parse_alert_body
from falco_reporter.models.report import AlertReportSpec, Occurrences
from falco_reporter.reconciler.service import report_object
from falco_reporter.reporting.incidents import DEFAULT_WINDOW, correlate, subject_of, with_incident
from falco_reporter.reporting.service import ReportService


def render_alerts(
    bodies: list[bytes],
    objects: list[Any],
    *,
    default_namespace: str = "falco-reporter",
    window: int = DEFAULT_WINDOW,
) -> list[dict[str, Any]]:
    """The AlertReports the operator would write for these alerts, correlated into incidents, in
    time order; raises ValueError on bad input."""
    # Enrichment awaits its object source (the operator's is the API server): one loop for all.
    written = asyncio.run(_render(bodies, StaticObjects(objects), default_namespace))
    incidents = (
        correlate([(name, report, subject) for _, name, report, subject in written], window) if window else {}
    )
    written.sort(key=lambda w: (w[2].occurrences.first_seen, w[1]))
    return [
        report_object(namespace, name, "", with_incident(report, incidents.get(name)) if window else report)
        for namespace, name, report, _ in written
    ]


async def _render(
    bodies: list[bytes], source: StaticObjects, default_namespace: str
) -> list[tuple[str, str, AlertReportSpec, str]]:
    service = ReportService(load_knowledge())
    written: list[tuple[str, str, AlertReportSpec, str]] = []
    for body in bodies:
        spec = normalise(parse_alert_body(body))
        namespace = (
            spec.subject.namespace
            if spec.subject.namespace and await source.namespace_exists(spec.subject.namespace)
            else default_namespace
        )
        name = object_name(spec)
        enrichment = await enrich(spec, source)
        ctx = service.context(
            spec,
            enrichment,
            name=name,
            namespace=namespace,
            occurrences=Occurrences(count=1, first_seen=spec.time, last_seen=spec.time),
        )
        written.append((namespace, name, service.write_builtin(ctx), subject_of(spec, enrichment)))
    return written


def render_alert(
    body: bytes, objects: list[Any], *, default_namespace: str = "falco-reporter"
) -> dict[str, Any]:
    """The AlertReport the operator would write for this alert; raises ValueError on bad input."""
    return render_alerts([body], objects, default_namespace=default_namespace)[0]
