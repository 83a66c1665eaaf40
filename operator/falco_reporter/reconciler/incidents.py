"""Keep every report of an incident telling the same story, with bounded work under bursts.

A new report gets its incident block at creation from what this process knows of the incident
(read once per incident from the API by label after a restart). Other members are told only of
material changes (verdict, severity, the capped timeline, its narrative), at most once per incident
per ``settle`` seconds: a burst of alerts into one incident costs one listing and a bounded number
of patches, not one per alert per member. Deleting an alert re-tells its incident without it.
With a model configured, each coalesced change is told once by the model (``ReportService.narrate``)
and the story is shared by every member; a change arriving while one is being told is told next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from falco_reporter import metrics
from falco_reporter.kube.errors import KubeError, KubeNotFound
from falco_reporter.kube.resources import CustomResources
from falco_reporter.models.report import AlertReportSpec, Incident, Severity, TimelineEntry
from falco_reporter.models.resources import LABEL_INCIDENT
from falco_reporter.reporting.incidents import (
    entry_of,
    epoch,
    incident_key,
    judge_incident,
    material,
    with_incident,
)
from falco_reporter.reporting.service import ReportService

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, incident id)
Member = tuple[TimelineEntry, Severity]


class IncidentTracker:
    def __init__(
        self,
        reports: CustomResources,
        *,
        window: int,
        settle: float = 2.0,
        narrator: ReportService | None = None,
    ) -> None:
        self._reports = reports
        self._narrator = narrator
        self.window = window
        self._settle = settle
        self._members: dict[Key, dict[str, Member]] = {}
        self._meta: dict[Key, tuple[str, str]] = {}  # subject, window start
        self._gone: dict[Key, set[str]] = {}
        self._pending: dict[Key, asyncio.Task[None]] = {}
        self._dirty: set[Key] = set()
        self._locks: dict[Key, asyncio.Lock] = {}
        # Incidents whose window began before this process did may have members written by an
        # earlier process: only those are read back from the API (off the report's path), and
        # only when the namespace's reports from before the start carry the incident's id (one
        # metadata listing per namespace instead of one listing per new subject after a start).
        self._started = time.time()
        self._earlier: dict[str, set[str]] = {}
        self._earlier_locks: dict[str, asyncio.Lock] = {}
        self._cold: set[Key] = set()

    def key(self, namespace: str, subject: str, time: str) -> tuple[Key, str]:
        incident_id, start = incident_key(subject, time, self.window)
        self._meta.setdefault((namespace, incident_id), (subject, start))
        return (namespace, incident_id), start

    async def join(self, namespace: str, subject: str, name: str, report: AlertReportSpec) -> Incident:
        """The incident block for a new report; schedules telling the others when it changed."""
        key, start = self.key(namespace, subject, report.occurrences.first_seen)
        async with self._locks.setdefault(key, asyncio.Lock()):
            known = key in self._members
            members = self._members.setdefault(key, {})
            before = self._incident(key)
            members[name] = (entry_of(name, report), report.severity)
            after = self._incident(key)
        assert after is not None
        changed = before is not None and material(before) != material(after)
        if changed or (not known and epoch(start) < self._started):
            self._schedule(key, cold=not changed)
        # No model call on the report's path: the story told for this state already, else the built-in one.
        return self._narrator.told(namespace, after) if self._narrator is not None else after

    def forget(self, namespace: str, subject: str, time: str, name: str) -> None:
        """An alert was deleted: drop it from its incident and re-tell the others."""
        key, _ = self.key(namespace, subject, time)
        self._gone.setdefault(key, set()).add(name)
        members = self._members.get(key)
        if members is not None:
            members.pop(name, None)
        self._schedule(key)

    def _incident(self, key: Key) -> Incident | None:
        members = self._members.get(key) or {}
        if not members:
            return None
        subject, start = self._meta[key]
        return judge_incident(key[1], subject, start, members.values())

    async def _listed(self, key: Key) -> list[dict[str, Any]]:
        gone = self._gone.get(key, set())
        items = await self._reports.list(key[0], label_selector=f"{LABEL_INCIDENT}={key[1]}")
        return [r for r in items if (r.get("metadata") or {}).get("name") not in gone]

    def _schedule(self, key: Key, *, cold: bool = False) -> None:
        """Refresh after ``settle``; a cold-only refresh reads back only incidents with earlier members."""
        self._dirty.add(key)
        task = self._pending.get(key)
        if task is None or task.done():
            self._pending[key] = asyncio.create_task(self._refresh_later(key))
            if cold:
                self._cold.add(key)
        if not cold:
            self._cold.discard(key)

    async def _has_earlier_members(self, key: Key) -> bool:
        namespace = key[0]
        async with self._earlier_locks.setdefault(namespace, asyncio.Lock()):
            if namespace not in self._earlier:
                items = await self._reports.list(namespace, label_selector=LABEL_INCIDENT, metadata_only=True)
                self._earlier[namespace] = {
                    str(meta["labels"][LABEL_INCIDENT])
                    for meta in (item.get("metadata") or {} for item in items)
                    if epoch(str(meta.get("creationTimestamp") or "1970-01-01T00:00:00Z")) < self._started
                }
        return key[1] in self._earlier[namespace]

    async def flush(self) -> None:
        """At shutdown: tell every incident with a pending change now rather than lose it."""
        pending = [(key, task) for key, task in self._pending.items() if not task.done()]
        for _, task in pending:
            task.cancel()
        for key, _ in pending:
            try:
                await self.refresh(key, narrate=False)  # shutdown does not wait for a model
            except KubeError as exc:
                log.warning("refreshing incident %s/%s at shutdown failed: %s", key[0], key[1], exc)

    async def _refresh_later(self, key: Key) -> None:
        # Changes during a refresh (a narrative can take a minute) are told by the next round.
        while key in self._dirty:
            await asyncio.sleep(self._settle)
            self._dirty.discard(key)
            try:
                if key in self._cold:
                    self._cold.discard(key)
                    if not await self._has_earlier_members(key):
                        continue
                await self.refresh(key)
            except KubeError as exc:  # the next change retries; a stale timeline is not an alert lost
                log.warning("refreshing incident %s/%s failed: %s", key[0], key[1], exc)

    async def refresh(self, key: Key, *, narrate: bool = True) -> int:
        """Re-read the incident's reports and patch those whose block changed; returns the patch count."""
        metrics.INCIDENT_REFRESHES.inc()
        async with self._locks.setdefault(key, asyncio.Lock()):
            listed = await self._listed(key)
            gone = self._gone.pop(key, set())
            # Members joined here but not yet listed (their create is in flight) stay.
            known = {n: m for n, m in (self._members.get(key) or {}).items() if n not in gone}
            self._members[key] = known | dict(_members(listed))
            incident = self._incident(key)
        if incident is None:
            return 0
        if self._narrator is not None:
            if narrate:
                incident = await self._narrator.narrate(key[0], incident)
            else:
                incident = self._narrator.told(key[0], incident)
        patched = 0
        for item in listed:
            spec = _spec(item)
            if spec is None or material(spec.incident) == material(incident):
                continue
            updated = with_incident(spec, incident)
            name = item["metadata"]["name"]
            patch = {
                "spec": {
                    "incident": incident.model_dump(by_alias=True, mode="json"),
                    "markdown": updated.markdown,
                }
            }
            try:
                await self._reports.patch(key[0], name, patch)
            except KubeNotFound:
                continue
            patched += 1
            metrics.INCIDENT_UPDATES.inc()
        return patched


def _spec(item: dict[str, Any]) -> AlertReportSpec | None:
    try:
        return AlertReportSpec.model_validate(item.get("spec") or {})
    except ValidationError:
        return None


def _members(items: Iterable[dict[str, Any]]) -> Iterable[tuple[str, Member]]:
    for item in items:
        spec = _spec(item)
        if spec is not None:
            name = str((item.get("metadata") or {}).get("name", ""))
            yield name, (entry_of(name, spec), spec.severity)
