"""The pipeline without a cluster: alert JSON + objects file -> AlertReport object."""

from __future__ import annotations

from typing import Any

from falco_reporter.enrichment.service import enrich
from falco_reporter.enrichment.source import StaticObjects
from falco_reporter.knowledge.base import load as load_knowledge
from falco_reporter.models.falco import normalise, object_name, parse_alert_body
from falco_reporter.models.report import Occurrences
from falco_reporter.reconciler.service import report_object
from falco_reporter.reporting.service import ReportService


def render_alert(
    body: bytes, objects: list[Any], *, default_namespace: str = "falco-reporter"
) -> dict[str, Any]:
    """The AlertReport the operator would write for this alert; raises ValueError on bad input."""
    spec = normalise(parse_alert_body(body))
    source = StaticObjects(objects)
    namespace = (
        spec.subject.namespace
        if spec.subject.namespace and source.namespace_exists(spec.subject.namespace)
        else default_namespace
    )
    name = object_name(spec)
    service = ReportService(load_knowledge())
    ctx = service.context(
        spec,
        enrich(spec, source),
        name=name,
        namespace=namespace,
        occurrences=Occurrences(count=1, first_seen=spec.time, last_seen=spec.time),
    )
    return report_object(namespace, name, "", service.write_builtin(ctx))
