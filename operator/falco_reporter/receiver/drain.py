"""Drain the journal into FalcoAlerts: in order, with bounded concurrency, exactly once.

The drainer reads the oldest entries, groups them by object, and writes each group through
:meth:`IngestService.store` (a create and/or one repeat patch that records the newest entry it
counted). Groups that are stored are deleted from the journal; while the API server is away
nothing is deleted and the drainer retries with a capped back-off, so the backlog drains in
order once it is back. A group the API server refuses (not an outage) is retried a bounded
number of times, then dropped with a metric and a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from pydantic import ValidationError

from falco_reporter import metrics
from falco_reporter.kube.errors import KubeError, KubeUnavailable
from falco_reporter.models.falco import FalcoAlertSpec, object_name
from falco_reporter.receiver.ingest import IngestService
from falco_reporter.receiver.journal import Entry, Journal

log = logging.getLogger(__name__)
Group = tuple[str, str]


@dataclass(frozen=True)
class DrainConfig:
    batch: int = 2000
    concurrency: int = 8
    max_attempts: int = 10
    #: On shutdown, keep draining this long (an emptyDir journal is lost with its pod).
    shutdown_drain: float = 20.0
    backoff_max: float = 5.0


class Drainer:
    def __init__(self, journal: Journal, service: IngestService, config: DrainConfig | None = None) -> None:
        self.journal = journal
        self.service = service
        self.config = config or DrainConfig()
        self._attempts: dict[Group, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set, then until empty or ``shutdown_drain`` seconds have passed."""
        assert self.journal.appended is not None
        backoff = 0.25
        deadline: float | None = None
        while True:
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.config.shutdown_drain
            if deadline is not None and time.monotonic() > deadline:
                if self.journal.depth:
                    log.warning("stopping with %d journal entries not yet stored", self.journal.depth)
                return
            self.journal.appended.clear()
            entries = await self.journal.read(self.config.batch)
            if not entries:
                if stop.is_set():
                    return
                await _first(self.journal.appended.wait(), stop.wait(), timeout=1.0)
                continue
            try:
                ok = await self.drain(entries)
            except Exception:  # a bug must not stop draining for good; the entries stay
                log.exception("draining the journal failed; will retry")
                ok = False
            if ok:
                backoff = 0.25
            else:
                await _first(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, self.config.backoff_max)

    async def drain(self, entries: list[Entry]) -> bool:
        """Store one batch; True when every group was stored (or given up on)."""
        groups: dict[Group, list[tuple[int, FalcoAlertSpec]]] = {}
        broken: list[int] = []
        for entry in entries:
            try:
                spec = FalcoAlertSpec.model_validate_json(entry.body)
            except ValidationError as exc:
                log.error("journal entry %d is not an alert (%s); skipped", entry.seq, exc.errors()[:1])
                metrics.JOURNAL_CORRUPT.inc()
                broken.append(entry.seq)
                continue
            groups.setdefault((spec.subject.namespace, object_name(spec)), []).append((entry.seq, spec))
        await self.journal.done(broken)
        limit = asyncio.Semaphore(self.config.concurrency)
        results = await asyncio.gather(*(self._one(limit, g, items) for g, items in groups.items()))
        return all(results)

    async def _one(
        self, limit: asyncio.Semaphore, group: Group, items: list[tuple[int, FalcoAlertSpec]]
    ) -> bool:
        async with limit:
            try:
                await self.service.store(self.journal.id, items)
            except KubeUnavailable as exc:
                log.debug("API server unavailable, %s/%s stays in the journal: %s", *group, exc)
                return False
            except KubeError as exc:
                attempts = self._attempts.get(group, 0) + 1
                self._attempts[group] = attempts
                if attempts < self.config.max_attempts:
                    log.warning("storing %s/%s failed (attempt %d), will retry: %s", *group, attempts, exc)
                    return False
                log.error(
                    "giving up on %d journaled occurrences of %s/%s after %d attempts: %s",
                    len(items),
                    *group,
                    attempts,
                    exc,
                )
                metrics.INGEST_DROPPED.labels("journal_unwritable").inc(len(items))
            else:
                metrics.JOURNAL_DRAINED.inc(len(items))
            self._attempts.pop(group, None)
            await self.journal.done([seq for seq, _ in items])
            return True


async def _first(*waits: object, timeout: float) -> None:
    """Wait for the first of some awaitables, at most ``timeout`` seconds."""
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
