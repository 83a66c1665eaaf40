"""Repeat counts acknowledged but not yet written: the one structure, and its one re-queue path.

Every entry keeps the spec of an occurrence it counts, so a repeat whose object was deleted
meanwhile can always recreate it, and a bounded attempt count, so a repeat that can never be
written (not an outage: the API server refuses it) is dropped with a metric and a log line
instead of looping forever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from falco_reporter import metrics
from falco_reporter.models.falco import SAMPLED_FIELDS, FalcoAlertSpec

log = logging.getLogger(__name__)
Key = tuple[str, str]
#: Values kept per sampled field between two flushes (the status keeps the last 10 distinct).
SAMPLE_BUFFER = 32


@dataclass
class Pending:
    """Repeats of one FalcoAlert counted since the last successful write."""

    spec: FalcoAlertSpec
    count: int = 0
    first: str = ""
    last: str = ""
    attempts: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, spec: FalcoAlertSpec, when: str, count: int = 1) -> None:
        self.spec = spec
        self.count += count
        self.first = min(self.first, when) if self.first else when
        self.last = max(self.last, when)
        for name in SAMPLED_FIELDS:
            value = spec.text(name)
            if value is not None:
                values = self.samples.setdefault(name, [])
                values.append(value[:256])
                del values[:-SAMPLE_BUFFER]

    def absorb(self, other: Pending) -> None:
        """Fold an older entry of the same key into this one (re-queue after a failed write)."""
        self.count += other.count
        self.first = min(filter(None, [self.first, other.first]), default="")
        self.last = max(self.last, other.last)
        self.attempts = max(self.attempts, other.attempts)
        for name, values in other.samples.items():
            merged = values + self.samples.get(name, [])
            self.samples[name] = merged[-SAMPLE_BUFFER:]


class PendingRepeats:
    """Key -> Pending; taken as a whole by a flush, failures come back through :meth:`requeue`."""

    def __init__(self, max_attempts: int = 10) -> None:
        self.max_attempts = max_attempts
        self._items: dict[Key, Pending] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Key) -> bool:
        return key in self._items

    def add(self, key: Key, spec: FalcoAlertSpec, when: str, count: int = 1) -> None:
        pending = self._items.get(key)
        if pending is None:
            pending = self._items[key] = Pending(spec)
        pending.add(spec, when, count)
        metrics.PENDING_REPEATS.set(len(self._items))

    def take(self) -> dict[Key, Pending]:
        batch, self._items = self._items, {}
        metrics.PENDING_REPEATS.set(0)
        return batch

    def requeue(self, key: Key, pending: Pending, *, failed: bool, reason: str = "") -> None:
        """Put repeats back for the next flush (spec kept). ``failed``: the API server refused
        them (not an outage), which counts towards the bounded attempts."""
        if pending.count <= 0:
            return
        if failed:
            pending.attempts += 1
            if pending.attempts >= self.max_attempts:
                metrics.INGEST_DROPPED.labels("repeats_unwritable").inc(pending.count)
                log.error(
                    "giving up on %d repeats of %s/%s after %d attempts: %s",
                    pending.count,
                    key[0],
                    key[1],
                    pending.attempts,
                    reason,
                )
                return
        current = self._items.get(key)
        if current is None:
            self._items[key] = pending
        else:
            current.absorb(pending)
        metrics.PENDING_REPEATS.set(len(self._items))
