"""Render an AlertReport spec as Markdown an on-call engineer reads in a minute.

Order: verdict and the evidence that decided it, then the context, then what to do. Each fact
appears once; the full lists stay in the spec fields. Every alert-derived or model-written string
is escaped, so a rule name or a field cannot inject links, images, HTML or headings. The output is
deterministic: the same spec gives the same bytes.
"""

from __future__ import annotations

import re

from falco_reporter.models.report import AlertReportSpec, Evidence, ReportMitigation

SHOWN_MITIGATIONS = 3
SHOWN_STEPS = 4
SHOWN_HINTS = 2
_SPECIAL = re.compile(r"([\\`\[\]<>|!])")
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\b[\w-]+(?:\.[\w-]+)+/\S*", re.IGNORECASE)


def text(value: str) -> str:
    """Untrusted text for prose, headings and tables: one line, Markdown specials escaped."""
    return _SPECIAL.sub(r"\\\1", " ".join(value.split()))


def prose(value: str) -> str:
    """Writer prose: paragraphs kept, but no links, images, HTML or headings can be formed."""
    lines = [re.sub(r"^\s*#+", "", line) for line in value.splitlines()]
    joined = "\n".join(lines)
    return re.sub(r"[\[\]<>]|!(?=\[)", lambda m: "\\" + m.group(0), joined)


def code(value: str) -> str:
    """An inline code span that cannot be closed early."""
    return "`" + " ".join(value.split()).replace("`", "'") + "`"


def _first_sentence(value: str) -> str:
    head = " ".join(value.split()).split(". ")[0].rstrip(".")
    return head + "."


def _fence(snippet: str) -> str:
    # A snippet containing ``` must not close our fence early.
    return "````" if "```" in snippet else "```"


def _evidence_line(e: Evidence) -> str:
    value = f": {code(e.value[:160])}" if e.value else ""
    return f"- **{e.direction}, {e.strength}**: {text(e.observation.rstrip('.'))}{value} ({text(e.source)})"


def _context(s: AlertReportSpec) -> list[str]:
    subj, p = s.subject, s.subject.process
    rows: list[tuple[str, str]] = []
    if subj.image:
        rows.append(("Image", subj.image + (f"@{subj.image_digest}" if subj.image_digest else "")))
    if subj.container:
        rows.append(("Container", subj.container))
    if p.exepath or p.name:
        rows.append(("Process", p.exepath or p.name))
    if p.cmdline:
        rows.append(("Command line", p.cmdline[:300]))
    if p.parent:
        rows.append(("Parent", p.parent))
    if p.user:
        rows.append(("User", p.user))
    if subj.service_account:
        rows.append(("Service account", subj.service_account))
    if subj.node:
        rows.append(("Node", subj.node))
    if subj.falco_host and subj.falco_host != subj.node:
        rows.append(("Falco host", subj.falco_host))
    seen = s.occurrences.first_seen
    if s.occurrences.count > 1 and s.occurrences.last_seen != seen:
        seen = f"{seen} .. {s.occurrences.last_seen}"
    if seen:
        rows.append(("Seen", seen))
    out = [f"- {label}: {code(value)}" for label, value in rows]
    out += [
        f"- {text(e.observation)}" for e in s.evidence if e.direction == "context" and e.id != "cluster-owner"
    ]
    return out


def _incident(s: AlertReportSpec) -> list[str]:
    inc = s.incident
    assert inc is not None
    out = [
        "## Part of an incident",
        "",
        f"{code(inc.id)} ({text(inc.subject)}, window from {inc.window_start}): **{inc.verdict}, {inc.severity}**, "
        f"{inc.alerts} alerts. {prose(inc.reason)}",
        "",
    ]
    if inc.narrative and inc.narrative_by not in ("", "builtin"):  # the built-in story is the timeline below
        out += [prose(inc.narrative), ""]
    for e in inc.timeline:
        mark = " (this alert)" if e.alert == s.alert_ref.name else ""
        tactic = f" [{text(e.tactic)}]" if e.tactic else ""
        out.append(f"- {text(e.time[11:23] or e.time)} {text(e.rule)}{tactic}: {code(e.line)}{mark}")
    if inc.alerts > len(inc.timeline):
        out.append(f"- ... {inc.alerts - len(inc.timeline)} more")
    return [*out, ""]


def _mitigation(i: int, m: ReportMitigation) -> list[str]:
    out = [f"{i}. **{text(m.title)}**: {prose(m.description)}"]
    if m.snippet:
        fence = _fence(m.snippet)
        out += ["", f"{fence}{m.language}", m.snippet.rstrip("\n"), fence]
    return [*out, ""]


def render(spec: AlertReportSpec) -> str:
    """The whole report for humans; see the module docstring for the order."""
    s = spec
    count = s.occurrences.count
    head = f"**{s.verdict}, {s.severity}** (Falco priority {text(s.priority)}) · {count} occurrence{'s' * (count != 1)}"
    out = [f"# {text(s.rule)}", "", head, "", prose(s.summary), "", "## Why this verdict", ""]
    deciding = [e for e in s.evidence if e.direction != "context"]
    # The reason usually cites the evidence listed below by id; show it only when it adds to them,
    # which an undecided verdict always does (the items alone would not say why it is undecided).
    undecided = s.verdict in ("suspicious", "unknown")
    if undecided or not deciding or not any(e.id in s.verdict_reason for e in deciding):
        out += [prose(s.verdict_reason)] + ([""] if deciding else [])
    out += [_evidence_line(e) for e in deciding]
    if s.severity_reason:
        out += ["", f"Severity {prose(s.severity_reason)}"]
    out += ["", "## Context", "", *_context(s), ""]
    if s.analysis.strip():
        out += [prose(s.analysis), ""]
    if s.incident is not None and s.incident.alerts > 1:
        out += _incident(s)
    if s.mitigations:
        out += ["## What to do", ""]
        # A likely-benign report needs one decision (the exception); hardening is listed, not shown.
        shown = 1 if s.verdict == "likely-benign" else SHOWN_MITIGATIONS
        for i, m in enumerate(s.mitigations[:shown], 1):
            out += _mitigation(i, m)
        rest = s.mitigations[shown:]
        if rest:
            out += [
                "Also: " + "; ".join(text(m.title) for m in rest) + " (snippets in spec.mitigations).",
                "",
            ]
    if s.investigation:
        out += ["## Investigate (read-only)", ""]
        for step in s.investigation[:SHOWN_STEPS]:
            title, _, cmd = step.partition(": ")
            out.append(f"- {text(title)}: {code(cmd)}" if cmd else f"- {code(title)}")
        out.append("")
    if s.false_positive_hints and s.verdict in ("suspicious", "unknown"):
        out += ["## Could be benign if", ""]
        out += [
            f"- {text(_first_sentence(h.split(' Recognise it: ')[0]))}"
            for h in s.false_positive_hints[:SHOWN_HINTS]
        ]
        out.append("")
    tail: list[str] = []
    if s.mitre:
        tail.append(
            "MITRE ATT&CK: "
            + "; ".join(text(m.tactic) + (f" {m.technique}" if m.technique else "") for m in s.mitre)
        )
    if s.references:
        tail.append("References: " + ", ".join(f"[{text(r.title)}]({r.url})" for r in s.references[:2]))
    w = s.writer
    written = f"Written by the {text(w.backend)} writer" + (f" (model {text(w.model)})" if w.model else "")
    if w.fallback_reason:
        written += f"; fell back to it because: {text(_URL.sub('(link removed)', w.fallback_reason))}"
    if w.redactions:
        written += f"; redacted: {text(', '.join(w.redactions))}"
    out += [
        "---",
        "",
        *(f"{line}  " for line in tail),
        written + ".",
        f"Alert: {text(s.alert_ref.namespace)}/{text(s.alert_ref.name)}",
    ]
    return "\n".join(out) + "\n"
