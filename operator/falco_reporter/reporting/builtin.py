"""The built-in writer: a complete, grounded report from evidence and the knowledge base, no LLM.

The verdict and severity come from deterministic evidence checks (reporting/evidence/), the
mitigations from the verdict (reporting/plan.py); every sentence is assembled from the alert's own
fields, the enrichment and the curated entry, so nothing is invented.
"""

from __future__ import annotations

from falco_reporter.models.report import MitreMapping, ReferenceLink, Writer
from falco_reporter.reporting.context import ReportContext, ReportDraft
from falco_reporter.reporting.evidence.judge import Judgement, judge
from falco_reporter.reporting.plan import plan
from falco_reporter.reporting.values import fill_shell, placeholder_values

_GENERIC_REFERENCES = (
    ReferenceLink(title="Falco rules: exceptions", url="https://falco.org/docs/concepts/rules/exceptions/"),
    ReferenceLink(
        title="Falco supported fields for conditions and outputs",
        url="https://falco.org/docs/reference/rules/supported-fields/",
    ),
)
_RUNS_ORDER = {"cluster": 0, "audit-log": 1, "node": 2, "container": 3}


class BuiltinWriter:
    """Writes reports from evidence and the knowledge base; always available, deterministic."""

    @property
    def backend(self) -> str:
        return "builtin"

    async def write(self, ctx: ReportContext) -> ReportDraft:
        return self.write_sync(ctx)

    def write_sync(self, ctx: ReportContext, *, fallback_reason: str = "") -> ReportDraft:
        """The same, for callers without an event loop."""
        judgement = judge(ctx)
        steps = investigation(ctx)
        mitigations, no_exception = plan(ctx, judgement, has_steps=bool(steps))
        entry = ctx.entry
        return ReportDraft(
            summary=_summary(ctx, judgement),
            analysis=_analysis(ctx, judgement, no_exception),
            severity=judgement.severity,
            verdict=judgement.verdict,
            verdict_reason=judgement.verdict_reason,
            severity_reason=judgement.severity_reason,
            evidence=judgement.evidence,
            writer=Writer(
                backend="builtin", fallback_reason=fallback_reason, knowledge_version=ctx.knowledge_version
            ),
            mitre=[MitreMapping(tactic=m.tactic, technique=m.technique) for m in entry.mitre]
            if entry
            else _mitre_from_tags(ctx.alert.tags),
            false_positive_hints=[
                f"{b.cause} Recognise it: {b.how_to_recognise}" for b in entry.benign_causes
            ]
            if entry and judgement.verdict != "likely-malicious"
            else [],
            mitigations=mitigations,
            investigation=steps,
            references=[ReferenceLink(title=r.title, url=str(r.url)) for r in entry.references]
            if entry
            else list(_GENERIC_REFERENCES),
        )


def investigation(ctx: ReportContext) -> list[str]:
    """Read-only steps, from outside the container first; never one that repeats the flagged command."""
    if ctx.entry is None:
        return []
    values = placeholder_values(ctx)
    flagged = " ".join((ctx.alert.text("proc.cmdline") or "").split())
    steps = sorted(ctx.entry.investigation, key=lambda s: _RUNS_ORDER.get(_runs(s.runs, s.command), 9))
    out: list[str] = []
    for step in steps:
        cmd = fill_shell(step.command, values)
        if not cmd or (len(flagged) > 3 and flagged in " ".join(cmd.split())):
            continue
        runs = _runs(step.runs, step.command)
        where = {"node": " (on the node)", "audit-log": " (audit log)"}.get(runs, "")
        if runs == "node" and "node" in step.title.lower():
            where = ""
        if runs == "container":
            where = " (inside the suspect container, whose output an intruder can forge)"
        out.append(f"{step.title}{where}: {cmd}")
    if not out and "container_id" in values:
        # Without a pod, node or pid every curated step drops out; the runtime still knows the
        # container, and inspecting it from the host changes nothing in it.
        host = values.get("node") or values.get("falco_host")
        on = f"On host {host}" if host else "On the host that ran it"
        cid = fill_shell("{{container_id}}", values)
        out.append(
            f"{on}, the container's main process, mounts and privileges (docker inspect on a Docker "
            f"host): crictl inspect {cid}"
        )
    return out


def _runs(declared: str, command: str) -> str:
    # A command that enters the pod runs where the attacker is, whatever the entry says.
    return "container" if command.startswith(("kubectl exec", "kubectl cp")) else declared


def _summary(ctx: ReportContext, judgement: Judgement) -> str:
    alert, where = ctx.alert, _where(ctx)
    count = ctx.occurrences.count
    times = f" ({count} times)" if count > 1 else ""
    if judgement.health:
        return f"Falco health event {alert.rule!r} on {alert.hostname or 'a host'}{times}. {judgement.verdict_reason}"
    actor = alert.text("proc.name") or alert.text("ka.user.name")
    by = f" by {actor!r}" if actor else ""
    first = f"{alert.rule!r} ({alert.priority}) fired{by} {where}{times}."
    deciding = next((e for e in judgement.evidence if e.direction != "context"), None)
    if judgement.verdict == "likely-malicious" and deciding is not None:
        return f"{first} Likely malicious: {deciding.observation[0].lower()}{deciding.observation[1:]}"
    if judgement.verdict == "likely-benign" and deciding is not None:
        return f"{first} Likely benign: {deciding.observation[0].lower()}{deciding.observation[1:]}"
    if ctx.entry is not None:
        return f"{first} {_first_sentence(ctx.entry.detects)}"
    return first


def _analysis(ctx: ReportContext, judgement: Judgement, no_exception: str) -> str:
    """What the rule means and what is missing; the facts themselves are in the subject and evidence."""
    parts: list[str] = []
    entry = ctx.entry
    if judgement.health:
        parts.append(
            "Falco reports on itself: this is about what Falco could see, not about an attacker. "
            "While events are dropped, rules cannot fire for the activity in them."
        )
    elif entry is not None:
        # A suspicious report's summary already says what the rule detects.
        detects = "" if judgement.verdict == "suspicious" else _first_sentence(entry.detects) + " "
        parts.append(detects + _first_sentence(entry.why_it_matters))
    else:
        parts.append(
            f"{ctx.alert.rule!r} is not one of the Falco rules this knowledge base covers (a custom or newer "
            "rule); the verdict rests on the indicators alone."
        )
    audit = _audit_facts(ctx)
    if audit:
        parts.append("Audit event: " + "; ".join(f"{k} `{v}`" for k, v in audit) + ".")
    enr = ctx.enrichment
    gaps = [*enr.notes, *(f"Not found: {m}" for m in enr.missing)]
    if gaps:
        parts.append("Gaps: " + " ".join(g.rstrip(".") + "." for g in gaps))
    if no_exception and judgement.verdict == "suspicious":
        parts.append(f"No Falco exception is offered: {no_exception}.")
    return "\n\n".join(parts)


_AUDIT_FIELDS = (
    ("user", "ka.user.name"),
    ("verb", "ka.verb"),
    ("resource", "ka.target.resource"),
    ("subresource", "ka.target.subresource"),
    ("target", "ka.target.name"),
    ("namespace", "ka.target.namespace"),
    ("command", "ka.uri.param[command]"),
    ("uri", "ka.uri"),
    ("response", "ka.response.code"),
    ("reason", "ka.response.reason"),
)


def _audit_facts(ctx: ReportContext) -> list[tuple[str, str]]:
    return [
        (label, text.replace("`", "'")[:200])
        for label, name in _AUDIT_FIELDS
        if (text := ctx.alert.text(name))
    ]


def _where(ctx: ReportContext) -> str:
    enr, alert = ctx.enrichment, ctx.alert
    if alert.source == "k8s_audit":
        target = alert.text("ka.target.name")
        ns = alert.text("ka.target.namespace")
        return f"on {ns + '/' if ns else ''}{target}" if target else "in the Kubernetes API"
    if enr.pod:
        workload = (
            f" of {enr.workload.kind} {enr.workload.name}" if enr.workload.kind not in ("", "Pod") else ""
        )
        return f"in pod {enr.namespace}/{enr.pod}{workload}"
    if alert.subject.container_id and alert.subject.container_id != "host":
        name = alert.subject.container_name or alert.subject.container_id
        return f"in container {name!r} (not a Kubernetes pod)"
    if enr.node:
        return f"on node {enr.node}"
    if alert.hostname:
        return f"on Falco host {alert.hostname!r}"
    return "on an unidentified host"


def _first_sentence(text: str) -> str:
    head = " ".join(text.split()).split(". ")[0].rstrip(".")
    return head + "."


def _mitre_from_tags(tags: list[str]) -> list[MitreMapping]:
    tactics = [t.removeprefix("mitre_").replace("_", " ").title() for t in tags if t.startswith("mitre_")]
    techniques = [t for t in tags if t.startswith("T") and t[1:5].isdigit()]
    if not tactics:
        return []
    return [MitreMapping(tactic=tactics[0], technique=t) for t in techniques] or [
        MitreMapping(tactic=tactics[0])
    ]
