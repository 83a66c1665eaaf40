"""Verdict and severity from the evidence, with reasons that name the evidence that decided.

Rules, in order (README, "How reports are grounded"):
1. Malicious evidence that is strong, or two moderate pieces: likely-malicious, unless the actor
   is identified exactly as a test tool that simulates attacks (then likely-benign).
2. A benign identity or a strong benign fact (e.g. the peer is loopback) and nothing malicious:
   likely-benign. An identity with malicious evidence stays suspicious (an image name can be spoofed).
3. Otherwise suspicious; unknown only when there is neither knowledge of the rule nor evidence.
Severity starts from Falco's priority and moves with the verdict and the context.
"""

from __future__ import annotations

from dataclasses import dataclass

from falco_reporter.models.report import Evidence, Severity, Verdict
from falco_reporter.reporting.context import ReportContext
from falco_reporter.reporting.evidence.actors import Identity, identify
from falco_reporter.reporting.evidence.cluster import ESCAPE_PATHS, cluster_context
from falco_reporter.reporting.evidence.fields import FieldView
from falco_reporter.reporting.evidence.health import health_judgement, is_health_event
from falco_reporter.reporting.evidence.indicators import indicators
from falco_reporter.reporting.evidence.signals import benign_causes

SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
PRIORITY_SEVERITY: dict[str, Severity] = {
    "Emergency": "critical",
    "Alert": "critical",
    "Critical": "critical",
    "Error": "high",
    "Warning": "medium",
    "Notice": "low",
    "Informational": "info",
    "Debug": "info",
}
#: unknown < likely-benign < suspicious < likely-malicious: how much concern a verdict expresses.
VERDICT_RANK: dict[Verdict, int] = {"unknown": 0, "likely-benign": 1, "suspicious": 2, "likely-malicious": 3}
_ORDER = {
    ("malicious", "strong"): 0,
    ("malicious", "moderate"): 1,
    ("benign", "strong"): 2,
    ("benign", "moderate"): 3,
    ("malicious", "weak"): 4,
    ("benign", "weak"): 5,
}


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    verdict_reason: str
    severity: Severity
    severity_reason: str
    evidence: list[Evidence]
    identity: Identity | None = None
    health: bool = False


def rank(severity: Severity) -> int:
    return SEVERITIES.index(severity)


def _cite(items: list[Evidence]) -> str:
    return "; ".join(
        f"{e.observation.rstrip('.')} ({e.id}: {e.value})"
        if e.value
        else f"{e.observation.rstrip('.')} ({e.id})"
        for e in items[:3]
    )


def gather(ctx: ReportContext) -> tuple[list[Evidence], Identity | None]:
    view = FieldView(ctx.alert, ctx.enrichment)
    identity = identify(view)
    found = indicators(view) + benign_causes(ctx.entry, view) + cluster_context(view)
    if identity is not None:
        # A curated cause that tests only the fields the identity already matched is the same fact.
        same = set(identity.evidence.source.split(", "))
        found = [
            e for e in found if not (e.id.startswith("known-cause-") and set(e.source.split(", ")) <= same)
        ]
        found.insert(0, identity.evidence)
    found.sort(key=lambda e: _ORDER.get((e.direction, e.strength), 6))
    return found, identity


def judge(ctx: ReportContext) -> Judgement:
    """The verdict and severity a senior responder would give from this evidence."""
    if is_health_event(ctx.alert):
        return health_judgement(ctx.alert)
    evidence, identity = gather(ctx)
    malicious = [e for e in evidence if e.direction == "malicious"]
    strong_bad = [e for e in malicious if e.strength == "strong"]
    moderate_bad = [e for e in malicious if e.strength == "moderate"]
    benign = [e for e in evidence if e.direction == "benign"]
    strong_good = [e for e in benign if e.strength == "strong"]
    escape = [e for e in evidence if e.id in ESCAPE_PATHS]
    verdict: Verdict
    if strong_bad or len(moderate_bad) >= 2:
        deciding = strong_bad or moderate_bad
        if identity is not None and identity.actor.simulates_attacks:
            verdict, reason = (
                "likely-benign",
                (
                    f"{identity.evidence.observation} The malicious-looking indicators are what it simulates: "
                    f"{_cite(deciding)}."
                ),
            )
        else:
            verdict, reason = "likely-malicious", f"Decided by: {_cite(deciding)}."
            if identity is not None:
                reason += f" The image claims to be {identity.actor.name}, but that does not explain these."
    elif strong_good and not malicious:
        verdict, reason = "likely-benign", f"Decided by: {_cite(strong_good)}; nothing malicious was found."
    elif identity is not None:
        verdict, reason = (
            "suspicious",
            (
                f"{identity.evidence.observation} But {_cite(moderate_bad)} does not fit it: confirm the image."
            ),
        )
    elif ctx.entry is None and not malicious and not benign:
        return Judgement(
            "unknown",
            f"Rule {ctx.alert.rule!r} is not in the knowledge base and no indicator "
            "applies either way; read the rule's condition to judge it.",
            PRIORITY_SEVERITY.get(ctx.alert.priority, "medium"),
            "",
            evidence,
        )
    elif moderate_bad:
        verdict, reason = (
            "suspicious",
            f"One indicator points to an attack: {_cite(moderate_bad)}; confirm it.",
        )
    elif benign:
        verdict, reason = (
            "suspicious",
            (
                "Undecided: "
                + ", ".join(f"{e.id} ({e.value})" if e.value else e.id for e in benign[:3])
                + " fits a known benign cause without proving it; confirm the cause before excepting "
                "the pattern."
            ),
        )
    else:
        verdict, reason = (
            "suspicious",
            (
                "The activity matches the rule and no indicator points either way; rule out the known "
                "benign causes before treating it as an intrusion."
            ),
        )
    severity, severity_reason = _severity(ctx.alert.priority, verdict, escape, identity)
    return Judgement(verdict, reason, severity, severity_reason, evidence, identity)


def _severity(
    priority: str, verdict: Verdict, escape: list[Evidence], identity: Identity | None
) -> tuple[Severity, str]:
    base = PRIORITY_SEVERITY.get(priority, "medium")
    severity, why = base, ""
    paths = ", ".join(e.id.removeprefix("cluster-") for e in escape)
    if verdict == "likely-malicious":
        if escape:
            severity, why = "critical", f"likely malicious with a path off the container ({paths})"
        elif rank(base) < rank("high"):
            severity, why = "high", "likely malicious"
    elif verdict == "likely-benign":
        target: Severity = "info" if identity is not None and identity.actor.simulates_attacks else "low"
        if rank(base) > rank(target):
            severity, why = target, "likely benign"
    elif verdict == "suspicious" and escape and rank(base) < rank("high"):
        severity, why = SEVERITIES[rank(base) + 1], f"the container can reach the node ({paths})"
    if severity == base:
        return severity, ""
    return severity, f"{severity}, not {base} as Falco's priority {priority} gives: {why}."
