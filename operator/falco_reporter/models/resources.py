"""Names and shapes of the custom resources, shared by every layer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from falco_reporter import API_GROUP, API_VERSION
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.report import Occurrences

FALCOALERTS = "falcoalerts"
ALERTREPORTS = "alertreports"
API = f"{API_GROUP}/{API_VERSION}"
MANAGED_BY = "falco-reporter"

COND_ENRICHED = "Enriched"
COND_REPORTED = "Reported"
COND_FALSE_POSITIVE = "FalsePositiveAccepted"
COND_SUPPRESSED = "Suppressed"
LABEL_FALSE_POSITIVE = "falcoreporter.io/false-positive"
#: On every AlertReport of an incident: `kubectl get ar -l falcoreporter.io/incident=<id>`.
LABEL_INCIDENT = "falcoreporter.io/incident"
REVIEW_FALSE_POSITIVE = "false-positive"


def now_rfc3339() -> str:
    """The current UTC time as Kubernetes prints it (seconds precision)."""
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Condition(BaseModel):
    """A Kubernetes-style status condition."""

    model_config = ConfigDict(populate_by_name=True, use_attribute_docstrings=True)

    type: str
    """Condition type, e.g. Enriched or Reported."""
    status: str
    """True, False or Unknown."""
    reason: str
    """CamelCase reason for the last transition."""
    message: str = ""
    """Human-readable detail."""
    last_transition_time: str = Field(default_factory=now_rfc3339, alias="lastTransitionTime")
    """When the status last changed."""
    observed_generation: int = Field(default=0, alias="observedGeneration")
    """The object generation the condition was set for."""


def set_condition(conditions: list[dict[str, Any]], new: Condition) -> list[dict[str, Any]]:
    """Return conditions with ``new`` merged in; the transition time moves only on a status change."""
    out = [c for c in conditions if c.get("type") != new.type]
    old = next((c for c in conditions if c.get("type") == new.type), None)
    entry = new.model_dump(by_alias=True)
    if old and old.get("status") == new.status and old.get("lastTransitionTime"):
        entry["lastTransitionTime"] = old["lastTransitionTime"]
    out.append(entry)
    return sorted(out, key=lambda c: str(c["type"]))


class ReportRef(BaseModel):
    model_config = ConfigDict(populate_by_name=True, use_attribute_docstrings=True)

    name: str
    """Name of the AlertReport (equal to the FalcoAlert's name)."""
    occurrences: int = 0
    """The occurrence count last copied into the report (the operator syncs when it differs)."""


class JournalMark(BaseModel):
    """The newest entry of one receiver journal already counted in this object."""

    model_config = ConfigDict(populate_by_name=True, use_attribute_docstrings=True)

    journal: str
    """Id of the receiver's journal (kept in its directory)."""
    seq: int
    """Highest entry of that journal counted here; a replay after a crash skips entries up to it."""


class ValueSample(BaseModel):
    """One distinct value of a field that varies between merged occurrences, with its count."""

    model_config = ConfigDict(populate_by_name=True, use_attribute_docstrings=True)

    value: str
    """The value (truncated to 256 characters)."""
    count: int = 1
    """Occurrences with this value among those sampled."""


class FalcoAlertStatus(BaseModel):
    """Observed state of a FalcoAlert: occurrences, enrichment and report progress."""

    model_config = ConfigDict(populate_by_name=True, use_attribute_docstrings=True)

    occurrences: Occurrences | None = None
    """How often this alert fired; repeats are merged here instead of creating objects."""
    enrichment: Enrichment | None = None
    """Context looked up from the API server (pod, owners, images, security settings)."""
    conditions: list[Condition] = Field(default_factory=list)
    """Enriched and Reported conditions."""
    report_ref: ReportRef | None = Field(default=None, alias="reportRef")
    """The AlertReport written for this alert."""
    observed_generation: int = Field(default=0, alias="observedGeneration")
    """The generation last processed."""
    journal_marks: list[JournalMark] = Field(default_factory=list, alias="journalMarks")
    """Per receiver journal, the newest entry counted here (at most 16, newest first)."""
    samples: dict[str, list[ValueSample]] = Field(default_factory=dict)
    """Per output field that differs between merged occurrences, its last 10 distinct values."""


class Suppression(BaseModel):
    """A Falco exception for exactly this alert's pattern, produced when a reviewer marks it false-positive."""

    model_config = ConfigDict(populate_by_name=True, use_attribute_docstrings=True)

    rule: str
    """The rule the exception applies to."""
    exception: str
    """A Falco rules-file item appending the exception (load it after the upstream rules)."""
    validated: str = ""
    """What was checked on the exception and the outcome."""
    fingerprint: str = ""
    """Fingerprint of the alert pattern; later alerts with it are marked suppressed."""
    accepted_by: str = Field(default="", alias="acceptedBy")
    """Who set the review to false-positive."""
    accepted_at: str = Field(default="", alias="acceptedAt")
    """When the operator accepted the review."""


class AlertReportStatus(BaseModel):
    """Observed state of an AlertReport."""

    model_config = ConfigDict(populate_by_name=True, use_attribute_docstrings=True)

    conditions: list[Condition] = Field(default_factory=list)
    """FalsePositiveAccepted and other conditions."""
    suppression: Suppression | None = None
    """The accepted Falco exception, when the review state is false-positive."""
    suppressed_occurrences: int = Field(default=0, alias="suppressedOccurrences")
    """Occurrences seen after the false positive was accepted."""
    observed_generation: int = Field(default=0, alias="observedGeneration")
    """The generation last processed."""


def accepted_false_positive(report: dict[str, Any]) -> bool:
    """Whether a report is an accepted false positive: reviewed so now, and its exception produced.

    The reviewer's spec is the decision; the operator's status.suppression is the result. Both
    must agree, so a stale suppression (its review withdrawn) never suppresses or exports.
    """
    review = (report.get("spec") or {}).get("review") or {}
    return review.get("state") == REVIEW_FALSE_POSITIVE and accepted_suppression(report) is not None


def accepted_suppression(report: dict[str, Any]) -> Suppression | None:
    """The report's status.suppression, typed (None when there is none)."""
    return AlertReportStatus.model_validate(report.get("status") or {}).suppression
