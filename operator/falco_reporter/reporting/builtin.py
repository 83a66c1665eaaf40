"""The built-in writer: a complete, grounded report from the knowledge base, no LLM.

Every sentence is assembled from the alert's own fields, the enrichment and the curated
entry, so nothing is invented. Unknown or custom rules get a generic report that says so.
"""

from __future__ import annotations

from falco_reporter.models.report import (
    MitreMapping,
    ReferenceLink,
    ReportMitigation,
    Severity,
    Verdict,
    Writer,
)
from falco_reporter.reporting.benign import KnownActor, recognise
from falco_reporter.reporting.context import ReportContext, ReportDraft
from falco_reporter.reporting.exceptions import exception_snippet
from falco_reporter.reporting.values import fill_shell, fill_yaml, placeholder_values

_PRIORITY_SEVERITY: dict[str, Severity] = {
    "Emergency": "critical",
    "Alert": "critical",
    "Critical": "critical",
    "Error": "high",
    "Warning": "medium",
    "Notice": "low",
    "Informational": "info",
    "Debug": "info",
}
_GENERIC_REFERENCES = (
    ReferenceLink(title="Falco rules: exceptions", url="https://falco.org/docs/concepts/rules/exceptions/"),
    ReferenceLink(
        title="Falco supported fields for conditions and outputs",
        url="https://falco.org/docs/reference/rules/supported-fields/",
    ),
)


class BuiltinWriter:
    """Writes reports from the knowledge base; always available, deterministic."""

    @property
    def backend(self) -> str:
        return "builtin"

    async def write(self, ctx: ReportContext) -> ReportDraft:
        return self.write_sync(ctx)

    def write_sync(self, ctx: ReportContext, *, fallback_reason: str = "") -> ReportDraft:
        """The same, for callers without an event loop."""
        actor = recognise(ctx.alert, ctx.enrichment)
        severity = self._severity(ctx, actor)
        verdict, reason = self._verdict(ctx, actor)
        return ReportDraft(
            summary=self._summary(ctx, actor),
            analysis=self._analysis(ctx),
            severity=severity,
            verdict=verdict,
            verdict_reason=reason,
            writer=Writer(
                backend="builtin", fallback_reason=fallback_reason, knowledge_version=ctx.knowledge_version
            ),
            mitre=[MitreMapping(tactic=m.tactic, technique=m.technique) for m in ctx.entry.mitre]
            if ctx.entry
            else _mitre_from_tags(ctx.alert.tags),
            false_positive_hints=[
                f"{b.cause} Recognise it: {b.how_to_recognise}" for b in ctx.entry.benign_causes
            ]
            if ctx.entry
            else [],
            mitigations=self._mitigations(ctx),
            investigation=self._investigation(ctx),
            references=[ReferenceLink(title=r.title, url=str(r.url)) for r in ctx.entry.references]
            if ctx.entry
            else list(_GENERIC_REFERENCES),
        )

    # --- parts ---------------------------------------------------------------------------

    def _severity(self, ctx: ReportContext, actor: KnownActor | None) -> Severity:
        if actor is not None or _internal(ctx):
            return "info"
        if ctx.entry is not None:
            return ctx.entry.severity
        return _PRIORITY_SEVERITY.get(ctx.alert.priority, "medium")

    def _verdict(self, ctx: ReportContext, actor: KnownActor | None) -> tuple[Verdict, str]:
        if actor is not None:
            return "likely-benign", f"Known benign actor: {actor.reason}."
        if _internal(ctx):
            return (
                "likely-benign",
                "A Falco internal health event (drops, timeouts, metrics), not a detection.",
            )
        if ctx.entry is None:
            return "unknown", (
                f"Rule {ctx.alert.rule!r} is not in the knowledge base (a custom or newer rule); "
                "the built-in writer does not guess its meaning."
            )
        risky = _risky_settings(ctx)
        detail = f" The workload also runs with {', '.join(risky)}." if risky else ""
        return "suspicious", (
            f"The activity matches {ctx.alert.rule!r}; the built-in writer cannot judge intent, so rule out the "
            f"listed benign causes before treating it as an intrusion.{detail}"
        )

    def _summary(self, ctx: ReportContext, actor: KnownActor | None) -> str:
        alert, where = ctx.alert, _where(ctx)
        count = ctx.occurrences.count
        times = f" ({count} occurrences)" if count > 1 else ""
        proc = alert.text("proc.name")
        cmd = f" by process {proc!r}" if proc else ""
        first = f"Falco rule {alert.rule!r} ({alert.priority}) fired{cmd} {where}{times}."
        if actor is not None:
            return f"{first} It comes from {actor.name}, which is expected to trigger it."
        if ctx.entry is not None:
            return f"{first} {_first_sentence(ctx.entry.detects)}"
        return first

    def _analysis(self, ctx: ReportContext) -> str:
        alert, enr, entry = ctx.alert, ctx.enrichment, ctx.entry
        parts: list[str] = []
        if entry is not None:
            parts += [
                "**What the rule detects.** " + entry.detects,
                "**Why it matters.** " + entry.why_it_matters,
            ]
        else:
            parts.append(
                f"**Rule.** {alert.rule!r} is not one of the upstream Falco rules this knowledge base covers; "
                "read its definition in your rules files to judge it."
            )
        facts = [f"- {label}: `{value}`" for label, value in _alert_facts(ctx)]
        if facts:
            parts.append("**What happened.**\n" + "\n".join(facts))
        context = [f"- {line}" for line in _context_lines(ctx)]
        if context:
            parts.append("**Context.**\n" + "\n".join(context))
        if enr.missing or enr.notes:
            parts.append(
                "**Gaps.**\n"
                + "\n".join(f"- {n}" for n in [*enr.notes, *(f"Not found: {m}" for m in enr.missing)])
            )
        return "\n\n".join(parts)

    def _mitigations(self, ctx: ReportContext) -> list[ReportMitigation]:
        out: list[ReportMitigation] = []
        values = placeholder_values(ctx)
        if ctx.entry is not None:
            snippet = exception_snippet(ctx.alert.rule, ctx.entry.exception, ctx.alert)
            if snippet:
                out.append(
                    ReportMitigation(
                        title="Except exactly this pattern in Falco (only if it is confirmed benign)",
                        description="Appends an exception to the rule for this alert's values; load it after the "
                        "upstream rules file, for example through the Falco chart's customRules.",
                        kind="falco-exception",
                        language="yaml",
                        snippet=snippet,
                    )
                )
            for m in ctx.entry.mitigations:
                filled = m.snippet
                if m.snippet and m.language == "shell":
                    filled = fill_shell(m.snippet, values) or ""
                elif m.snippet and m.language == "yaml":
                    filled = fill_yaml(m.snippet, values) or ""
                if m.snippet and not filled:
                    continue
                out.append(
                    ReportMitigation(
                        title=m.title,
                        description=m.description,
                        kind=m.kind,
                        language=m.language,
                        snippet=filled,
                    )
                )
        else:
            out.append(
                ReportMitigation(
                    title="Review the rule definition",
                    description="Find the rule in your Falco rules files, confirm what its condition matches, and decide "
                    "whether this activity is expected for this workload.",
                    kind="process",
                    language="text",
                )
            )
        return out

    def _investigation(self, ctx: ReportContext) -> list[str]:
        if ctx.entry is None:
            return []
        values = placeholder_values(ctx)
        return [
            f"{step.title}: {cmd}"
            for step in ctx.entry.investigation
            if (cmd := fill_shell(step.command, values))
        ]


def _internal(ctx: ReportContext) -> bool:
    """Falco's own health events: source ``internal``, or (relayed without a source) their rule prefix."""
    return ctx.alert.source == "internal" or ctx.alert.rule.startswith("Falco internal:")


def _where(ctx: ReportContext) -> str:
    enr, alert = ctx.enrichment, ctx.alert
    if enr.pod:
        workload = (
            f" of {enr.workload.kind} {enr.workload.name}" if enr.workload.kind not in ("", "Pod") else ""
        )
        return f"in pod {enr.namespace}/{enr.pod}{workload}"
    if alert.subject.container_id and alert.subject.container_id != "host":
        name = alert.subject.container_name or alert.subject.container_id
        return f"in container {name!r} (not a Kubernetes pod)"
    if alert.hostname:
        return f"on host {alert.hostname!r}"
    return "on an unidentified host"


def _first_sentence(text: str) -> str:
    head = text.strip().split(". ")[0].rstrip(".")
    return head + "."


_FACT_FIELDS = (
    ("Process", "proc.name"),
    ("Executable", "proc.exepath"),
    ("Command line", "proc.cmdline"),
    ("Parent", "proc.pname"),
    ("User", "user.name"),
    ("File", "fd.name"),
    ("Connection", "fd.name"),
    ("Container image", "container.image.repository"),
    ("Kubernetes user", "ka.user.name"),
    ("Target", "ka.target.name"),
    ("Event type", "evt.type"),
)


def _alert_facts(ctx: ReportContext) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for label, field_name in _FACT_FIELDS:
        value = ctx.alert.text(field_name)
        if value is not None and field_name not in seen:
            seen.add(field_name)
            out.append(
                (
                    label if field_name != "fd.name" or ctx.alert.text("fd.sip") is None else "Connection",
                    value.replace("`", "'")[:300],
                )
            )
    return out


def _context_lines(ctx: ReportContext) -> list[str]:
    enr = ctx.enrichment
    lines: list[str] = []
    if enr.pod_found:
        chain = " -> ".join(["Pod/" + enr.pod, *(f"{o.kind}/{o.name}" for o in enr.owner_chain)])
        lines += [
            f"Workload: {enr.workload.kind}/{enr.workload.name} (owner chain: {chain})",
            f"Node: {enr.node or 'unscheduled'}",
        ]
        if enr.container.image:
            digest = f" ({enr.container.image_digest})" if enr.container.image_digest else ""
            lines.append(f"Image: {enr.container.image}{digest}")
        token = "mounted" if enr.automount_token else "not mounted"
        lines.append(f"Service account: {enr.service_account} (API token {token})")
    lines += [f"Risky setting: {s}" for s in _risky_settings(ctx)]
    if enr.scope == "container":
        lines.append(
            "Scope: a container that no Kubernetes pod owns (plain Docker/containerd, or already gone)"
        )
    elif enr.scope == "host":
        lines.append("Scope: the host itself, outside any container")
    return lines


def _risky_settings(ctx: ReportContext) -> list[str]:
    sec = ctx.enrichment.security
    risky = [
        name
        for name, on in (
            ("privileged: true", sec.privileged),
            ("hostPID", sec.host_pid),
            ("hostNetwork", sec.host_network),
            ("hostIPC", sec.host_ipc),
        )
        if on
    ]
    if sec.host_path_volumes:
        risky.append("hostPath volumes " + ", ".join(sec.host_path_volumes))
    if sec.capabilities_added:
        risky.append("added capabilities " + ", ".join(sec.capabilities_added))
    return risky


def _mitre_from_tags(tags: list[str]) -> list[MitreMapping]:
    tactics = [t.removeprefix("mitre_").replace("_", " ").title() for t in tags if t.startswith("mitre_")]
    techniques = [t for t in tags if t.startswith("T") and t[1:5].isdigit()]
    if not tactics:
        return []
    return [MitreMapping(tactic=tactics[0], technique=t) for t in techniques] or [
        MitreMapping(tactic=tactics[0])
    ]
