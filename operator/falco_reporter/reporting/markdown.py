"""Render an AlertReport spec as Markdown, deterministically (same spec, same bytes)."""

from __future__ import annotations

from falco_reporter.models.report import AlertReportSpec


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _fence(snippet: str) -> str:
    # A snippet containing ``` must not close our fence early.
    return "````" if "```" in snippet else "```"


def render(spec: AlertReportSpec) -> str:
    """The whole report for humans: Summary, Context, Analysis, Verdict, Mitigations, ..."""
    s, subj = spec, spec.subject
    out = [
        f"# {s.rule}",
        "",
        f"**Severity:** {s.severity} · **Verdict:** {s.verdict} · **Priority:** {s.priority}"
        f" · **Occurrences:** {s.occurrences.count}",
        "",
        "## Summary",
        "",
        s.summary,
        "",
        "## Context",
        "",
        "| | |",
        "|---|---|",
    ]
    rows = [
        ("Namespace", subj.namespace),
        ("Pod", subj.pod),
        ("Container", subj.container),
        ("Image", subj.image),
        ("Image digest", subj.image_digest),
        ("Workload", f"{subj.workload.kind}/{subj.workload.name}" if subj.workload.name else ""),
        ("Node", subj.node),
        ("Service account", subj.service_account),
        ("Process", subj.process.name),
        ("Executable", subj.process.exepath),
        ("Command line", subj.process.cmdline),
        ("Parent process", subj.process.parent),
        ("User", subj.process.user),
        ("First seen", s.occurrences.first_seen),
        ("Last seen", s.occurrences.last_seen),
        ("Source", s.source),
        ("Alert", f"{s.alert_ref.namespace}/{s.alert_ref.name}"),
    ]
    out += [f"| {label} | `{_cell(value)}` |" for label, value in rows if value]
    out += [
        "",
        "## Analysis",
        "",
        s.analysis,
        "",
        "## Verdict",
        "",
        f"**{s.verdict}**: {s.verdict_reason}",
        "",
    ]
    if s.mitigations:
        out += ["## Mitigations", ""]
        for i, m in enumerate(s.mitigations, 1):
            out += [f"### {i}. {m.title}", "", f"*{m.kind}*. {m.description}", ""]
            if m.snippet:
                fence = _fence(m.snippet)
                out += [f"{fence}{m.language}", m.snippet.rstrip("\n"), fence, ""]
            if m.validated:
                out += [f"Validated: {m.validated}", ""]
    if s.investigation:
        out += [
            "## Investigation",
            "",
            *[
                f"- `{_cell(step)}`"
                if ": " not in step
                else f"- {step.split(': ', 1)[0]}: `{_cell(step.split(': ', 1)[1])}`"
                for step in s.investigation
            ],
            "",
        ]
    if s.false_positive_hints:
        out += ["## Likely false-positive causes", "", *[f"- {h}" for h in s.false_positive_hints], ""]
    if s.mitre:
        out += [
            "## MITRE ATT&CK",
            "",
            *[f"- {m.tactic}" + (f": {m.technique}" if m.technique else "") for m in s.mitre],
            "",
        ]
    if s.references:
        out += ["## References", "", *[f"- [{r.title}]({r.url})" for r in s.references], ""]
    w = s.writer
    written = f"Written by the {w.backend} writer" + (f" (model {w.model})" if w.model else "")
    if w.fallback_reason:
        written += f"; fell back to it because: {w.fallback_reason}"
    if w.redactions:
        written += f"; redacted: {', '.join(w.redactions)}"
    out += ["---", "", written + "."]
    return "\n".join(out) + "\n"
