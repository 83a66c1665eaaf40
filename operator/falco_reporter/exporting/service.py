"""Read AlertReports from the API and export them (once, or continuously from the operator)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from falco_reporter.exporting.files import ExportResult, render_files, write_tree
from falco_reporter.kube.errors import KubeError
from falco_reporter.kube.resources import CustomResources

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """'90m', '24h', '7d' -> timedelta; raise ValueError with the accepted forms otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and one of s, m, h, d, w (e.g. 24h, 7d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _last_activity(obj: dict[str, Any]) -> str:
    occurrences = (obj.get("spec") or {}).get("occurrences") or {}
    return str(occurrences.get("lastSeen") or obj.get("metadata", {}).get("creationTimestamp") or "")


def select(
    reports: list[dict[str, Any]], since: timedelta | None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Reports whose last occurrence (or creation) is within ``since``."""
    if since is None:
        return reports
    cutoff = ((now or datetime.now(tz=UTC)) - since).strftime("%Y-%m-%dT%H:%M:%S")
    return [r for r in reports if _last_activity(r)[:19] >= cutoff]


async def export(
    reports_api: CustomResources,
    directory: Path,
    *,
    namespace: str | None,
    since: timedelta | None = None,
    formats: frozenset[str] = frozenset({"markdown", "yaml"}),
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export the reports of one namespace (or all) into ``directory``."""
    reports = select(await reports_api.list(namespace), since)
    # Rendering and writing thousands of files is long blocking work: off the event loop.
    result = await asyncio.to_thread(lambda: write_tree(directory, render_files(reports, formats)))
    if progress is not None:
        for rel in result.written:
            progress(f"wrote {rel}")
        for rel in result.removed:
            progress(f"removed {rel}")
        progress(
            f"{len(reports)} reports: {len(result.written)} files written, {len(result.unchanged)} unchanged, "
            f"{len(result.removed)} removed"
        )
    return result


async def run_continuous(
    reports_api: CustomResources,
    directory: Path,
    *,
    namespace: str | None,
    interval: float,
    stop: asyncio.Event,
    formats: frozenset[str] = frozenset({"markdown", "yaml"}),
) -> None:
    """Keep ``directory`` in sync until ``stop``: a full deterministic export every ``interval`` seconds.

    A full export (not incremental patches) keeps the tree byte-identical to a one-off export,
    and unchanged files are never rewritten, so a sidecar committing the directory sees only
    real changes. API outages are logged and retried at the next interval.
    """
    while not stop.is_set():
        try:
            await export(reports_api, directory, namespace=namespace, formats=formats)
        except KubeError as exc:
            log.warning("continuous export skipped this round: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
