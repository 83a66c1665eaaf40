"""Persist alerts as FalcoAlerts, merging repeats.

Without a journal, a first occurrence is created before the caller acknowledges it, and repeats
of a known fingerprint are counted in memory (:mod:`.pending`) and flushed as one status patch per
object every ``flush_interval`` seconds. With a journal (:mod:`.journal`), every alert is appended
there before its 202 and :meth:`IngestService.store` writes it later, exactly once, on behalf of
the drainer (:mod:`.drain`).

A FalcoAlert without ``status.occurrences`` has occurred once (its creation, at ``spec.time``);
writes add only repeats on top of that. So an alert that never repeats costs one API call.

An acknowledged alert always lands somewhere: when its namespace is gone or being deleted, the
create goes to the fallback namespace, and the answer (or the repeat re-queue) names that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from falco_reporter import __version__, metrics
from falco_reporter.kube.errors import (
    KubeError,
    KubeNamespaceTerminating,
    KubeNotFound,
    KubeUnavailable,
)
from falco_reporter.kube.objects import KubeObjects
from falco_reporter.kube.resources import (
    JOURNAL_ANNOTATION,
    CustomResources,
    add_journal_repeats,
    add_repeats,
)
from falco_reporter.models.falco import SAMPLED_FIELDS, FalcoAlertSpec, object_name
from falco_reporter.models.resources import API, MANAGED_BY
from falco_reporter.receiver.pending import Key, Pending, PendingRepeats
from falco_reporter.settings import DEFAULTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    fallback_namespace: str = DEFAULTS.fallback_namespace
    flush_interval: float = DEFAULTS.flush_interval
    namespace_ttl: float = 30.0
    known_limit: int = 200_000
    flush_concurrency: int = 8
    #: Namespaced installs: alerts for other namespaces go to the fallback (we may not write there).
    namespaces: frozenset[str] = frozenset()
    #: Failed writes (refused, not an outage) before repeats are given up on, with a metric and a log.
    max_attempts: int = 10


@dataclass(frozen=True)
class IngestResult:
    namespace: str
    name: str
    #: None: journaled, to be stored by the drainer.
    created: bool | None


@dataclass
class IngestStats:
    created: int = 0
    merged: int = 0
    flushed_patches: int = 0
    flush_failures: int = 0
    pending_keys: int = 0


class IngestService:
    """Create-or-merge of FalcoAlerts (API calls awaited on the event loop)."""

    def __init__(
        self, alerts: CustomResources, objects: KubeObjects, config: IngestConfig | None = None
    ) -> None:
        self._alerts = alerts
        self._objects = objects
        self.config = config or IngestConfig()
        self._known: OrderedDict[Key, None] = OrderedDict()
        self._creating: dict[Key, asyncio.Future[None]] = {}
        self.pending = PendingRepeats(self.config.max_attempts)
        self._namespaces: dict[str, tuple[bool, float]] = {}
        self._flush_lock = asyncio.Lock()
        self.stats = IngestStats()

    # --- direct mode: create before the 202, repeats in memory -------------------------------------

    def merge_known(self, spec: FalcoAlertSpec) -> IngestResult | None:
        """The repeat fast path, without awaiting: count a repeat of an alert already stored.

        None when the alert is not known to be stored (or its namespace needs a fresh lookup);
        the caller then awaits :meth:`ingest`.
        """
        namespace = self.cached_placement(spec.subject.namespace)
        if namespace is None:
            return None
        key = (namespace, object_name(spec))
        return self._merge(key, spec) if key in self._known else None

    def _merge(self, key: Key, spec: FalcoAlertSpec) -> IngestResult:
        """Count a repeat of a stored alert (flushed to its status later)."""
        self._known.move_to_end(key)
        self.pending.add(key, spec, spec.time)
        self.stats.merged += 1
        self.stats.pending_keys = len(self.pending)
        return IngestResult(key[0], key[1], created=False)

    async def ingest(self, spec: FalcoAlertSpec) -> IngestResult:
        """Store or merge one alert. Raises KubeUnavailable when it could not be stored."""
        name = object_name(spec)
        namespace = await self._placement(spec.subject.namespace)
        key = (namespace, name)
        if key in self._known:
            return self._merge(key, spec)
        waiting = self._creating.get(key)
        if waiting is not None:
            # Another request is creating this object: wait for its attempt, then retry
            # (it is known now, or that attempt failed and this one tries itself).
            await asyncio.wait([waiting])
            return await self.ingest(spec)
        attempt: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._creating[key] = attempt
        try:
            placed, created = await self._create(namespace, name, spec)
        finally:
            attempt.set_result(None)
            del self._creating[key]
        key = (placed, name)
        self._remember(key)
        if created:
            # The new object itself records this occurrence (no status = count 1 at spec.time).
            self.stats.created += 1
            return IngestResult(placed, name, created=True)
        # Someone else (another receiver, or ours before a restart) stored it: a repeat.
        return self._merge(key, spec)

    async def flush(self) -> None:
        """Write pending counts; failures go back through the one re-queue path."""
        async with self._flush_lock:
            batch = self.pending.take()
            self.stats.pending_keys = 0
            if not batch:
                return
            limit = asyncio.Semaphore(self.config.flush_concurrency)

            async def one(key: Key, pending: Pending) -> None:
                async with limit:
                    await self._write_repeats(key, pending)

            await asyncio.gather(*(one(k, p) for k, p in batch.items()))
            self.stats.pending_keys = len(self.pending)

    async def _write_repeats(self, key: Key, pending: Pending) -> None:
        try:
            await add_repeats(
                self._alerts,
                key[0],
                key[1],
                pending.count,
                pending.first,
                pending.last,
                samples=pending.samples,
            )
        except KubeNotFound:
            # Deleted (by a user) after we acknowledged repeats of it: those repeats must not be
            # lost, so store the alert again (it counts one occurrence), where it can go now.
            self._known.pop(key, None)
            await self._recreate(key, pending)
            return
        except KubeError as exc:
            self._flush_failed(key, pending, exc)
            return
        self.stats.flushed_patches += 1
        metrics.FLUSHES.labels("ok").inc()

    async def _recreate(self, key: Key, pending: Pending) -> None:
        try:
            placed, created = await self._create(key[0], key[1], pending.spec)
        except KubeError as exc:
            self._flush_failed(key, pending, exc)
            return
        new_key = (placed, key[1])
        self._remember(new_key)
        if created:
            pending.count -= 1
        self.pending.requeue(new_key, pending, failed=False)

    def _flush_failed(self, key: Key, pending: Pending, exc: KubeError) -> None:
        self.stats.flush_failures += 1
        metrics.FLUSHES.labels("retry").inc()
        log.warning("writing repeats of %s/%s failed, will retry: %s", key[0], key[1], exc)
        self.pending.requeue(key, pending, failed=not isinstance(exc, KubeUnavailable), reason=str(exc))

    async def run_flusher(self, stop: asyncio.Event) -> None:
        """Flush every interval until ``stop`` is set, then flush once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.flush_interval)
            await self.flush()

    # --- journal mode: the drainer stores what the journal acknowledged ---------------------------

    def expected(self, spec: FalcoAlertSpec) -> IngestResult:
        """Where a journaled alert is expected to be stored (the namespace is checked when stored)."""
        namespace = self.cached_placement(spec.subject.namespace) or spec.subject.namespace
        return IngestResult(namespace, object_name(spec), created=None)

    async def store(
        self, journal: str, items: list[tuple[int, FalcoAlertSpec]], *, retry: bool = True
    ) -> Key:
        """Write journal entries of one alert (same name and namespace), in seq order, exactly once.

        The create carries its entry in an annotation and repeat patches record the newest entry
        counted, so replaying entries that were already written changes nothing.
        """
        seq, first = items[0]
        name = object_name(first)
        key = (await self._placement(first.subject.namespace), name)
        rest = items
        if key not in self._known:
            placed, created = await self._create(key[0], name, first, mark=f"{journal}:{seq}")
            key = (placed, name)
            self._remember(key)
            if created:
                self.stats.created += 1
                rest = items[1:]
        if not rest:
            return key
        samples: dict[str, list[str]] = {}
        for _, spec in rest:
            for field in SAMPLED_FIELDS:
                if (value := spec.text(field)) is not None:
                    samples.setdefault(field, []).append(value[:256])
        try:
            await add_journal_repeats(
                self._alerts,
                key[0],
                name,
                journal,
                [(s, spec.time) for s, spec in rest],
                samples={k: v[-32:] for k, v in samples.items()},
            )
        except KubeNotFound:
            self._known.pop(key, None)
            if not retry:
                raise
            return await self.store(journal, items, retry=False)
        self.stats.merged += len(rest)
        return key

    # --- shared -------------------------------------------------------------------------------------

    async def _create(
        self, namespace: str, name: str, spec: FalcoAlertSpec, *, mark: str = ""
    ) -> tuple[str, bool]:
        """Create the object; (namespace used, False when it existed already)."""
        body = alert_object(namespace, name, spec, mark=mark)
        try:
            await self._alerts.create(namespace, body, answer=False)
        except KubeError as exc:
            if isinstance(exc, KubeUnavailable):
                raise
            if exc.status == 409:
                return namespace, False
            if not isinstance(exc, KubeNotFound | KubeNamespaceTerminating):
                raise
            # The namespace is gone or being deleted: remember that, and use the fallback.
            self._namespaces[namespace] = (False, time.monotonic())
            if namespace == self.config.fallback_namespace:
                raise KubeUnavailable(
                    f"fallback namespace {namespace!r} cannot take alerts: {exc}", 404
                ) from None
            log.info(
                "namespace %s is gone or terminating; %s goes to the fallback namespace", namespace, name
            )
            return await self._create(self.config.fallback_namespace, name, spec, mark=mark)
        return namespace, True

    def cached_placement(self, namespace: str) -> str | None:
        """Placement from the namespace cache alone; None when a lookup is due."""
        if not namespace or (self.config.namespaces and namespace not in self.config.namespaces):
            return self.config.fallback_namespace
        cached = self._namespaces.get(namespace)
        if cached is None or time.monotonic() - cached[1] > self.config.namespace_ttl:
            return None
        return namespace if cached[0] else self.config.fallback_namespace

    async def _placement(self, namespace: str) -> str:
        """The alert's own namespace when it exists, so namespace RBAC governs who sees it."""
        placed = self.cached_placement(namespace)
        if placed is not None:
            return placed
        now = time.monotonic()
        exists = await self._objects.namespace_exists(namespace)
        self._namespaces[namespace] = (exists, now)
        if len(self._namespaces) > 10_000:
            self._namespaces.pop(next(iter(self._namespaces)))
        return namespace if exists else self.config.fallback_namespace

    def _remember(self, key: Key) -> None:
        self._known[key] = None
        self._known.move_to_end(key)
        while len(self._known) > self.config.known_limit:
            self._known.popitem(last=False)


def alert_object(namespace: str, name: str, spec: FalcoAlertSpec, *, mark: str = "") -> dict[str, Any]:
    """The FalcoAlert manifest for a first occurrence (``mark``: the journal entry it came from)."""
    annotations = {"falcoreporter.io/receiver-version": __version__}
    if mark:
        annotations[JOURNAL_ANNOTATION] = mark
    return {
        "apiVersion": API,
        "kind": "FalcoAlert",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "falcoreporter.io/fingerprint": spec.fingerprint,
                "falcoreporter.io/priority": spec.priority.lower(),
            },
            "annotations": annotations,
        },
        "spec": spec.model_dump(by_alias=True, mode="json", exclude_defaults=False),
    }
