"""The AlertReport spec: the single Python view of what a report holds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "high", "medium", "low", "info"]
Verdict = Literal["likely-malicious", "suspicious", "likely-benign", "unknown"]
MitigationKind = Literal["falco-exception", "kubernetes-manifest", "command", "configuration", "process"]
ReviewState = Literal["new", "acknowledged", "false-positive", "mitigated", "escalated"]
Direction = Literal["malicious", "benign", "context"]
Strength = Literal["strong", "moderate", "weak"]

SUMMARY_MAX = 600
ANALYSIS_MAX = 8000
SNIPPET_MAX = 6000


class _Camel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", use_attribute_docstrings=True)


class AlertRef(_Camel):
    name: str
    namespace: str
    uid: str = ""


class Occurrences(_Camel):
    count: int = Field(default=1, ge=1)
    first_seen: str = Field(default="", alias="firstSeen")
    last_seen: str = Field(default="", alias="lastSeen")


class ProcessInfo(_Camel):
    name: str = ""
    exepath: str = ""
    cmdline: str = ""
    parent: str = ""
    user: str = ""


class Workload(_Camel):
    kind: str = ""
    name: str = ""


class Subject(_Camel):
    namespace: str = ""
    pod: str = ""
    container: str = ""
    image: str = ""
    image_digest: str = Field(default="", alias="imageDigest")
    workload: Workload = Field(default_factory=Workload)
    node: str = ""
    """The node the pod runs on (spec.nodeName), or a Node named by Falco's hostname that exists."""
    falco_host: str = Field(default="", alias="falcoHost")
    """Falco's own hostname field as sent; not necessarily a node (it can be a container id)."""
    service_account: str = Field(default="", alias="serviceAccount")
    process: ProcessInfo = Field(default_factory=ProcessInfo)


class Evidence(_Camel):
    """One observation the verdict was decided from, made by a deterministic check."""

    id: str
    """Stable identifier of the check, e.g. mining-pool-url or cluster-privileged."""
    observation: str
    """What was seen, in one sentence."""
    source: str
    """The alert field or cluster fact it came from, e.g. proc.cmdline or pod.securityContext."""
    value: str = ""
    """The observed value (redacted and truncated)."""
    direction: Direction
    """malicious, benign or context."""
    strength: Strength = "moderate"
    """How much it weighs: strong, moderate or weak."""


class MitreMapping(_Camel):
    tactic: str
    technique: str = ""


class ReportMitigation(_Camel):
    """One concrete, validated mitigation. Nothing is ever applied automatically."""

    title: str
    """Short imperative title."""
    description: str
    """Why and how, in one or two sentences."""
    kind: MitigationKind
    """falco-exception, kubernetes-manifest, command, configuration or process."""
    language: Literal["yaml", "shell", "text"] = "text"
    """Language of the snippet."""
    snippet: str = Field(default="", max_length=SNIPPET_MAX)
    """Ready-to-use snippet: a Falco rules-file item, a Kubernetes manifest or one shell command."""
    validated: str = ""
    """What was checked on the snippet and the outcome."""


class ReferenceLink(_Camel):
    title: str
    url: str


class Writer(_Camel):
    """Provenance of the report text."""

    backend: str
    """builtin, or the LLM provider (llamacpp, ollama, openai, ...)."""
    model: str = ""
    fallback_reason: str = Field(default="", alias="fallbackReason")
    prompt_version: str = Field(default="", alias="promptVersion")
    knowledge_version: str = Field(default="", alias="knowledgeVersion")
    tokens: int = 0
    latency_ms: int = Field(default=0, alias="latencyMs")
    cache_hit: bool = Field(default=False, alias="cacheHit")
    redactions: list[str] = Field(default_factory=list)
    structured_output: str = Field(default="", alias="structuredOutput")
    """How the model was asked for the answer: json_schema, function_calling, json_mode or text."""


class TimelineEntry(_Camel):
    """One alert of an incident, in time order."""

    time: str
    rule: str
    priority: str
    tactic: str = ""
    alert: str
    """The FalcoAlert's (and its report's) name."""
    line: str = ""
    """One line of what happened."""
    verdict: Verdict = "unknown"


class Incident(_Camel):
    """The story this alert belongs to: the same subject's alerts within one time window."""

    id: str
    """Deterministic: from the subject and the window start."""
    subject: str
    """What the alerts share: a pod, a container, a workload or a host."""
    window_start: str = Field(alias="windowStart")
    alerts: int = 1
    """How many alerts (distinct FalcoAlerts) the incident has."""
    verdict: Verdict
    """Decided from all its alerts' evidence and the progression across tactics."""
    severity: Severity
    reason: str = ""
    timeline: list[TimelineEntry] = Field(default_factory=list)
    """The first alerts in time order (at most TIMELINE_MAX)."""
    narrative: str = Field(default="", max_length=ANALYSIS_MAX)
    """The incident told as one story, written once per incident change and shared by its reports."""
    narrative_by: str = Field(default="", alias="narrativeBy")
    """Who wrote the narrative: builtin, or the LLM provider."""


TIMELINE_MAX = 25


class Review(_Camel):
    state: ReviewState = "new"
    by: str = ""
    note: str = ""
    time: str = ""


class AlertReportSpec(_Camel):
    """A reviewed, actionable report about one FalcoAlert."""

    alert_ref: AlertRef = Field(alias="alertRef")
    """The FalcoAlert this report explains."""
    rule: str
    """Falco rule that fired."""
    priority: str
    """Falco priority of the alert."""
    source: str
    """Falco event source."""
    occurrences: Occurrences
    """How often the alert fired (kept in sync with the FalcoAlert)."""
    subject: Subject
    """Who and what: pod, workload, image, node, service account and process."""
    summary: str = Field(max_length=SUMMARY_MAX)
    """One to three sentences for a responder."""
    analysis: str = Field(max_length=ANALYSIS_MAX)
    """What happened and why it matters, in Markdown, grounded on the alert and the cluster."""
    severity: Severity
    """critical, high, medium, low or info."""
    verdict: Verdict
    """likely-malicious, suspicious, likely-benign or unknown."""
    verdict_reason: str = Field(alias="verdictReason")
    """Why the verdict was reached, naming the evidence that decided it."""
    severity_reason: str = Field(default="", alias="severityReason")
    """Why the severity differs from the Falco priority, when it does."""
    evidence: list[Evidence] = Field(default_factory=list)
    """Observations from deterministic checks over the alert and the cluster."""
    mitre: list[MitreMapping] = Field(default_factory=list)
    """MITRE ATT&CK tactics and techniques, from the rule's tags."""
    false_positive_hints: list[str] = Field(default_factory=list, alias="falsePositiveHints")
    """Common benign causes and how to recognise them."""
    mitigations: list[ReportMitigation] = Field(default_factory=list)
    """Concrete mitigations whose snippets were validated."""
    investigation: list[str] = Field(default_factory=list)
    """Read-only commands to investigate, filled in with this alert's values."""
    references: list[ReferenceLink] = Field(default_factory=list)
    """Curated documentation links."""
    writer: Writer
    """Which writer produced the report, and why a fallback happened."""
    markdown: str = ""
    """The whole report rendered as Markdown."""
    review: Review | None = None
    """Human review state; the operator never overwrites it."""
    incident: Incident | None = None
    """The incident this alert is part of, when correlation is on."""

    def to_k8s(self) -> dict[str, object]:
        """The spec as the API expects it (camelCase keys, no nulls)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
