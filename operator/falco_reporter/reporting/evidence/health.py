"""Falco's own health events (source ``internal``): a blind spot to fix, not an intrusion.

A syscall drop event says how many events the kernel side dropped out of how many: that share
of activity went unseen, so the report's severity follows it (>= 10 % medium, >= 30 % high).
Metrics snapshots are routine and never page anyone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.report import Evidence, Severity

if TYPE_CHECKING:
    from falco_reporter.reporting.evidence.judge import Judgement

DROP_MEDIUM, DROP_HIGH = 10.0, 30.0


def is_health_event(alert: FalcoAlertSpec) -> bool:
    """Source ``internal``, or (relayed without a source) the internal rule prefix."""
    return alert.source == "internal" or alert.rule.startswith("Falco internal:")


def _number(alert: FalcoAlertSpec, name: str) -> float | None:
    try:
        return float(str(alert.field(name)))
    except (TypeError, ValueError):
        return None


def drop_percentage(alert: FalcoAlertSpec) -> float | None:
    """Dropped syscall events as a percentage of all events in the interval, when the alert says."""
    direct = _number(alert, "scap.n_drops_perc")
    drops, total = _number(alert, "n_drops"), _number(alert, "n_evts")
    if drops is not None and total:
        return 100.0 * drops / total
    return direct


def health_judgement(alert: FalcoAlertSpec) -> Judgement:
    from falco_reporter.reporting.evidence.judge import Judgement

    rule = alert.rule.lower()
    evidence: list[Evidence] = []
    severity: Severity = "info"
    if "metrics snapshot" in rule:
        reason = "A periodic Falco metrics snapshot: routine telemetry, nothing to act on."
        pct = drop_percentage(alert)
        if pct is not None:
            evidence.append(
                _health(
                    "drop-percentage",
                    f"{pct:.1f}% of syscall events were dropped.",
                    "scap.n_drops_perc",
                    f"{pct:.1f}%",
                )
            )
        return Judgement("likely-benign", reason, severity, "", evidence, health=True)
    if "drop" in rule:
        pct = drop_percentage(alert)
        if pct is None:
            return Judgement(
                "likely-benign",
                "Falco reports dropped syscall events but not how many; check its metrics.",
                "low",
                "low: a Falco health event with an unknown drop rate.",
                evidence,
                health=True,
            )
        drops, total = alert.text("n_drops") or "?", alert.text("n_evts") or "?"
        evidence.append(
            _health(
                "drop-percentage",
                f"{pct:.1f}% of syscall events went unseen ({drops} of {total}).",
                "n_drops / n_evts",
                f"{pct:.1f}%",
            )
        )
        severity = "high" if pct >= DROP_HIGH else "medium" if pct >= DROP_MEDIUM else "low"
        reason = (
            f"Not an intrusion but a blind spot: Falco did not see {pct:.1f}% of system calls on "
            f"{alert.hostname or 'this host'}, so rules could not fire for that activity."
        )
        why = f"{severity}: {pct:.1f}% dropped (>= {DROP_HIGH:g}% high, >= {DROP_MEDIUM:g}% medium)."
        return Judgement("likely-benign", reason, severity, why, evidence, health=True)
    if "timeout" in rule:
        return Judgement(
            "likely-benign",
            "Falco's event source went quiet (consecutive timeouts): usually an idle "
            "host or a stalled driver; if it persists, Falco may be blind.",
            "low",
            "low: a Falco health event.",
            evidence,
            health=True,
        )
    return Judgement(
        "likely-benign", "A Falco internal health event, not a detection.", "info", "", evidence, health=True
    )


def _health(id_: str, observation: str, source: str, value: str) -> Evidence:
    return Evidence(
        id=id_, observation=observation, source=source, value=value, direction="context", strength="strong"
    )
