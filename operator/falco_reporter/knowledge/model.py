"""Schema of a knowledge-base entry (one YAML file per Falco rule).

Command snippets may use placeholders that the report writer fills with the alert's
values, shell-quoted: {{namespace}}, {{pod}}, {{container}}, {{container_id}}, {{node}},
{{image}}, {{proc_name}}, {{proc_exepath}}, {{workload_kind}}, {{workload_name}},
{{service_account}}. Nothing else in an entry is templated.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

Maturity = Literal["stable", "incubating", "sandbox", "deprecated", "k8saudit"]
Severity = Literal["critical", "high", "medium", "low", "info"]
MitigationKind = Literal["falco-exception", "kubernetes-manifest", "command", "configuration", "process"]
Language = Literal["yaml", "shell", "text"]

PLACEHOLDERS = frozenset(
    {
        "pid",
        "falco_host",
        "audit_user",
        "namespace",
        "pod",
        "container",
        "container_id",
        "node",
        "image",
        "proc_name",
        "proc_exepath",
        "workload_kind",
        "workload_name",
        "service_account",
    }
)
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def placeholders_in(text: str) -> set[str]:
    """The placeholder names used in a snippet."""
    return set(_PLACEHOLDER_RE.findall(text))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MitreRef(_Strict):
    tactic: str = Field(description="MITRE ATT&CK tactic name, e.g. 'Execution'")
    technique: str = Field(description="Technique id, e.g. 'T1059' or 'T1059.004'; empty when only a tactic")
    name: str = Field(default="", description="Technique name")

    @field_validator("technique")
    @classmethod
    def _technique_id(cls, value: str) -> str:
        if value and not re.fullmatch(r"T\d{4}(\.\d{3})?", value):
            raise ValueError(f"not a MITRE technique id: {value!r}")
        return value


SignalOp = Literal["equals", "in", "startswith", "endswith", "contains", "glob", "regex", "exists"]

#: Names a signal may test besides the alert's own Falco output fields. They are derived by the
#: report writer from the alert and the enrichment (see reporting/evidence/fields.py).
DERIVED_FIELDS = frozenset(
    {
        "image.repository",  # the container's image repository, lower case, no tag or digest
        "k8s.ns.name",  # the pod's namespace (the enrichment's, else the alert's)
        "workload.kind",  # top of the owner chain: Deployment, StatefulSet, DaemonSet, CronJob, Job, Pod
        "workload.name",
        "proc.ancestors",  # proc.pname and every proc.aname[N] the alert carries (any may match)
        "proc.exe.dir",  # directory of proc.exepath (or proc.exe)
        "fd.sport",  # the server port of the connection (derived from fd.rport/fd.lport and the direction)
        "peer.scope",  # loopback, cluster, private or public: where the remote address is
        "container.privileged",  # "true" when the pod spec makes the container privileged
    }
)
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+(\[[^\]]+\])?$")


class Signal(_Strict):
    """One machine-checkable condition; a benign cause is recognised when all its signals hold."""

    field: str = Field(description="A Falco output field (proc.pname) or a derived name (DERIVED_FIELDS)")
    op: SignalOp
    values: list[str] = Field(default_factory=list, description="Empty only for op 'exists'")

    @field_validator("field")
    @classmethod
    def _field(cls, value: str) -> str:
        if value not in DERIVED_FIELDS and not _FIELD_NAME.match(value):
            raise ValueError(f"not a Falco field or derived name: {value!r}")
        return value

    @model_validator(mode="after")
    def _values(self) -> Signal:
        if (self.op == "exists") != (not self.values) or any(not v for v in self.values):
            raise ValueError("a signal needs non-empty values, except op 'exists' which takes none")
        if self.op == "regex":
            for v in self.values:
                re.compile(v)
        return self


class BenignCause(_Strict):
    cause: str
    how_to_recognise: str
    signals: list[Signal] = Field(
        default_factory=list,
        description="All must hold for the cause to count as evidence; empty when not checkable from the alert",
    )
    identity: bool = Field(
        default=False,
        description="True when the signals pin who acts (image repository, namespace and owner), "
        "so a match is strong benign evidence; otherwise a match is moderate",
    )


InvestigationScope = Literal["cluster", "node", "audit-log", "container"]


class InvestigationStep(_Strict):
    title: str
    command: str = Field(description="One shell command (kubectl, crictl, ...); placeholders allowed")
    runs: InvestigationScope = Field(
        default="cluster",
        description="Where it runs: the API (cluster), the node (crictl, kubectl debug node), the audit "
        "log, or inside the suspect container (last resort: an attacker controls what it shows)",
    )

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = placeholders_in(value) - PLACEHOLDERS
        if unknown:
            raise ValueError(f"unknown placeholders: {sorted(unknown)}")
        return value


class Mitigation(_Strict):
    title: str
    description: str
    kind: MitigationKind
    language: Language
    snippet: str = ""

    @field_validator("snippet")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = placeholders_in(value) - PLACEHOLDERS
        if unknown:
            raise ValueError(f"unknown placeholders: {sorted(unknown)}")
        return value


class ExceptionTemplate(_Strict):
    """How to except one precise pattern from the rule with a Falco ``exceptions`` entry.

    The report writer fills ``values`` from the alert's output fields, so every field named
    here must be one the rule's output carries (or container/k8s metadata Falco appends).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    fields: list[str] = Field(min_length=1)
    comps: list[str] = Field(min_length=1)

    @field_validator("comps")
    @classmethod
    def _comps(cls, value: list[str]) -> list[str]:
        allowed = {"=", "!=", "in", "pmatch", "startswith", "endswith", "contains", "glob", "intersects"}
        bad = [c for c in value if c not in allowed]
        if bad:
            raise ValueError(f"unsupported comparison operators: {bad}")
        return value


class TuningHook(_Strict):
    """A list or macro the upstream rule consults and that users may extend."""

    kind: Literal["list", "macro"]
    name: str
    snippet: str = Field(
        description="A complete rules-file item that extends it with override: append/replace"
    )


class Reference(_Strict):
    title: str
    url: HttpUrl


class KnowledgeEntry(_Strict):
    rule: str
    maturity: Maturity
    priority: str = Field(description="Upstream priority, upper case as in the rules file")
    source: str = "syscall"
    severity: Severity = Field(description="Our default severity for a report of this rule")
    detects: str = Field(min_length=40, description="What the rule detects, in our own words")
    why_it_matters: str = Field(min_length=40)
    mitre: list[MitreRef] = Field(default_factory=list)
    benign_causes: list[BenignCause] = Field(default_factory=list)
    investigation: list[InvestigationStep] = Field(min_length=1)
    mitigations: list[Mitigation] = Field(min_length=1)
    exception: ExceptionTemplate
    tuning_hooks: list[TuningHook] = Field(default_factory=list)
    references: list[Reference] = Field(min_length=1)

    @field_validator("exception")
    @classmethod
    def _aligned(cls, value: ExceptionTemplate) -> ExceptionTemplate:
        if len(value.fields) != len(value.comps):
            raise ValueError("exception.fields and exception.comps must have the same length")
        return value
