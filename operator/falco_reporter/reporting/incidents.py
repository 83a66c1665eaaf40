"""Incidents: one story per subject, told across alerts (pure and deterministic).

Alerts belong to one incident when they concern the same subject within one time window. The
subject is the pod (namespace/name, also the target pod of an audit exec/attach, so the
``kubectl exec`` joins the syscall alerts of the shell it started), else the container id, else
the workload, else the host. Windows are fixed buckets of ``window`` seconds from the epoch, so
an incident's id depends only on its subject and its window start: the same under restarts,
re-delivery and any arrival order. (A sequence crossing a bucket boundary becomes two incidents.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.report import (
    TIMELINE_MAX,
    AlertReportSpec,
    Incident,
    Severity,
    TimelineEntry,
    Verdict,
)
from falco_reporter.reporting import markdown
from falco_reporter.reporting.evidence.judge import SEVERITIES, VERDICT_RANK, rank
from falco_reporter.settings import DEFAULTS

DEFAULT_WINDOW = DEFAULTS.incident_window
#: Tactic stages of an intrusion after the first foothold; spanning them raises the incident.
_EXECUTION = {"Execution"}
_LATER = {
    "Credential Access",
    "Persistence",
    "Command and Control",
    "Privilege Escalation",
    "Exfiltration",
    "Impact",
    "Lateral Movement",
}
_AUDIT_POD_ACTIONS = ("exec", "attach", "portforward")


def subject_of(alert: FalcoAlertSpec, enrichment: Enrichment) -> str:
    """What the incident is about: pod, else container, else workload, else host ('' when nothing)."""
    if alert.source == "k8s_audit":
        if (
            alert.text("ka.target.resource") == "pods"
            and alert.text("ka.target.subresource") in _AUDIT_POD_ACTIONS
        ):
            ns, pod = alert.text("ka.target.namespace"), alert.text("ka.target.name")
            return f"pod/{ns}/{pod}" if ns and pod else ""
        return ""
    namespace = enrichment.namespace or alert.subject.namespace
    pod = enrichment.pod or alert.subject.pod
    if namespace and pod:
        return f"pod/{namespace}/{pod}"
    container = alert.subject.container_id
    if container and container != "host":
        return f"container/{container[:12]}"
    if enrichment.workload.name and namespace:
        return f"workload/{namespace}/{enrichment.workload.kind}/{enrichment.workload.name}"
    host = enrichment.node or alert.hostname
    return f"host/{host}" if host else ""


def epoch(time: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds allowed)."""
    text = time.strip().replace("Z", "+00:00")
    if "." in text:  # Python parses at most microseconds
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        tail = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tail}"
    return datetime.fromisoformat(text).timestamp()


def incident_key(subject: str, time: str, window: int) -> tuple[str, str]:
    """The deterministic incident id and window start (RFC 3339) for a subject at a time."""
    start = int(epoch(time) // window) * window
    start_text = datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hashlib.sha256(f"{subject}\0{start}\0{window}".encode()).hexdigest()[:16]
    return f"inc-{digest}", start_text


def entry_of(name: str, spec: AlertReportSpec) -> TimelineEntry:
    """One timeline line for a report."""
    tactic = spec.mitre[0].tactic if spec.mitre else ""
    process = spec.subject.process
    what = process.cmdline or process.exepath or process.name or spec.subject.process.user
    line = f"{spec.rule}: {what}" if what else spec.rule
    return TimelineEntry(
        time=spec.occurrences.first_seen or "",
        rule=spec.rule,
        priority=spec.priority,
        tactic=tactic,
        alert=name,
        line=line[:200],
        verdict=spec.verdict,
    )


def _tactics(members: Sequence[tuple[TimelineEntry, Severity]]) -> set[str]:
    return {e.tactic for e, _ in members if e.tactic}


def judge_incident(
    incident_id: str, subject: str, window_start: str, members: Iterable[tuple[TimelineEntry, Severity]]
) -> Incident:
    """The incident's verdict and severity from all its alerts; a progression across tactics raises it."""
    ordered = sorted(members, key=lambda m: (m[0].time, m[0].alert))
    if not ordered:
        raise ValueError("an incident has at least one alert")
    verdicts = [e.verdict for e, _ in ordered]
    worst: Verdict = max(verdicts, key=lambda v: VERDICT_RANK[v])
    severity: Severity = max((s for _, s in ordered), key=rank)
    tactics = _tactics(ordered)
    progression = bool(tactics & _EXECUTION) and len(tactics & _LATER) >= 1 and len(tactics) >= 2
    verdict, reason = worst, f"The most serious of its {len(ordered)} alerts."
    if all(v == "likely-benign" for v in verdicts):
        verdict, reason = "likely-benign", "Every alert of it is likely benign."
    elif progression and len(ordered) >= 2:
        steps = " -> ".join(dict.fromkeys(e.tactic for e, _ in ordered if e.tactic))
        verdict = "likely-malicious" if len(tactics) >= 3 or worst == "likely-malicious" else "suspicious"
        verdict = max(verdict, worst, key=lambda v: VERDICT_RANK[v])
        severity = SEVERITIES[min(rank(severity) + 1, len(SEVERITIES) - 1)]
        reason = f"A progression across tactics ({steps}) in one subject within the window."
    incident = Incident(
        id=incident_id,
        subject=subject,
        window_start=window_start,
        alerts=len(ordered),
        verdict=verdict,
        severity=severity,
        reason=reason,
        timeline=[e for e, _ in ordered[:TIMELINE_MAX]],
    )
    return incident.model_copy(update={"narrative": tell(incident), "narrative_by": "builtin"})


def tell(incident: Incident) -> str:
    """The built-in narrative: the timeline as one deterministic paragraph (no model)."""
    entries = incident.timeline
    if not entries:
        return ""
    first, last = entries[0].time, entries[-1].time
    span = f"at {first}" if first == last else f"between {first} and {last}"
    # Told from the capped timeline, not the count: a burst past the cap changes no story.
    count = f"{'The first ' if len(entries) == TIMELINE_MAX else ''}{len(entries)} alert{'s' * (len(entries) != 1)}"
    steps = [f"{e.rule}" + (f" ({e.tactic})" if e.tactic else "") for e in entries]
    why = "" if f"{incident.alerts} alerts" in incident.reason else f" {incident.reason}"
    return (
        f"{count} on {incident.subject} {span}: {', then '.join(steps)}.{why} "
        f"Taken together: {incident.verdict}, severity {incident.severity}."
    )


def timeline_digest(incident: Incident) -> str:
    """What an incident's narrative depends on: its judgement and its (capped) timeline."""
    told = incident.model_dump(mode="json", include={"subject", "verdict", "severity", "timeline"})
    return hashlib.sha256(json.dumps(told, sort_keys=True).encode()).hexdigest()[:24]


def incident_anchors(namespace: str, incident: Incident) -> list[str]:
    """Names a grounded narrative mentions: a rule of its timeline, the subject's name or the namespace."""
    names = [e.rule for e in incident.timeline] + incident.subject.split("/")[1:] + [namespace]
    return [n for n in dict.fromkeys(names) if len(n) >= 3]


def material(incident: Incident | None) -> tuple[object, ...]:
    """What other members must be told about: verdict, severity, the (capped) timeline and its story."""
    if incident is None:
        return ()
    timeline = tuple(e.alert for e in incident.timeline)
    return (incident.verdict, incident.severity, timeline, incident.narrative)


def with_incident(spec: AlertReportSpec, incident: Incident | None) -> AlertReportSpec:
    """The report with its incident block set and its Markdown rendered again."""
    updated = spec.model_copy(update={"incident": incident})
    updated.markdown = markdown.render(updated)
    return updated


def correlate(
    reports: Sequence[tuple[str, AlertReportSpec, str]], window: int = DEFAULT_WINDOW
) -> dict[str, Incident]:
    """Incidents for a batch of (name, report, subject): report name -> its incident."""
    groups: dict[tuple[str, str, str], list[tuple[str, AlertReportSpec]]] = {}
    for name, spec, subject in reports:
        if not subject or not spec.occurrences.first_seen:
            continue
        incident_id, start = incident_key(subject, spec.occurrences.first_seen, window)
        groups.setdefault((incident_id, subject, start), []).append((name, spec))
    out: dict[str, Incident] = {}
    for (incident_id, subject, start), members in groups.items():
        incident = judge_incident(
            incident_id, subject, start, [(entry_of(n, s), s.severity) for n, s in members]
        )
        for name, _ in members:
            out[name] = incident
    return out
