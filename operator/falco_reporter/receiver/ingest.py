"""Persist alerts as FalcoAlerts, merging repeats.

A first occurrence is created before the caller acknowledges it. Repeats of a known
fingerprint are counted in memory and flushed as one status patch per object every
``flush_interval`` seconds, so a storm of one alert costs one write every two seconds.
A crash loses at most the unflushed repeat counts, never an alert: every distinct alert
was stored before its 202.

A FalcoAlert without ``status.occurrences`` has occurred once (its creation, at ``spec.time``);
flushes add only repeats on top of that. So an alert that never repeats costs one API call
(its create), not three (create, then a read and a status patch to record "count 1").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from falco_reporter import __version__, metrics
from falco_reporter.kube.errors import KubeConflict, KubeNotFound, KubeUnavailable
from falco_reporter.kube.objects import KubeObjects
from falco_reporter.kube.resources import CustomResources, add_repeats
from falco_reporter.models.falco import FalcoAlertSpec, object_name
from falco_reporter.models.resources import API, MANAGED_BY

log = logging.getLogger(__name__)
Key = tuple[str, str]
T = TypeVar("T")


@dataclass(frozen=True)
class IngestConfig:
    fallback_namespace: str = "falco-reporter"
    flush_interval: float = 2.0
    namespace_ttl: float = 30.0
    known_limit: int = 200_000
    flush_concurrency: int = 8
    #: Threads for API calls (the client blocks). asyncio's default pool has only cpu+4 threads,
    #: which capped concurrent creates below the number of concurrent senders.
    api_workers: int = 32
    #: Namespaced installs: alerts for other namespaces go to the fallback (we may not write there).
    namespaces: frozenset[str] = frozenset()


@dataclass(frozen=True)
class IngestResult:
    namespace: str
    name: str
    created: bool


@dataclass
class _Pending:
    count: int = 0
    first: str = ""
    last: str = ""
    #: The latest alert counted here: recreates the object if a user deleted it meanwhile.
    spec: FalcoAlertSpec | None = None

    def add(self, when: str, count: int = 1, spec: FalcoAlertSpec | None = None) -> None:
        self.spec = spec or self.spec
        self.count += count
        self.first = min(self.first, when) if self.first else when
        self.last = max(self.last, when)


@dataclass
class IngestStats:
    created: int = 0
    merged: int = 0
    flushed_patches: int = 0
    flush_failures: int = 0
    pending_keys: int = 0


class IngestService:
    """Create-or-merge of FalcoAlerts; API calls run in worker threads (the client is blocking)."""

    def __init__(
        self, alerts: CustomResources, objects: KubeObjects, config: IngestConfig | None = None
    ) -> None:
        self._alerts = alerts
        self._objects = objects
        self.config = config or IngestConfig()
        self._known: OrderedDict[Key, None] = OrderedDict()
        self._creating: dict[Key, asyncio.Future[None]] = {}
        self._pending: dict[Key, _Pending] = {}
        self._namespaces: dict[str, tuple[bool, float]] = {}
        self._flush_lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(self.config.api_workers, thread_name_prefix="ingest-api")
        self.stats = IngestStats()

    async def _api(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one blocking API call on the ingest pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def merge_known(self, spec: FalcoAlertSpec) -> IngestResult | None:
        """The repeat fast path, without awaiting: count a repeat of an alert already stored.

        None when the alert is not known to be stored (or its namespace needs a fresh lookup);
        the caller then awaits :meth:`ingest`.
        """
        namespace = self._cached_placement(spec.subject.namespace)
        if namespace is None:
            return None
        key = (namespace, object_name(spec))
        return self._merge(key, spec) if key in self._known else None

    def _merge(self, key: Key, spec: FalcoAlertSpec) -> IngestResult:
        """Count a repeat of a stored alert (flushed to its status later)."""
        self._known.move_to_end(key)
        self._count(key, spec.time, spec=spec)
        self.stats.merged += 1
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
            created = await self._create(namespace, name, spec)
        finally:
            attempt.set_result(None)
            del self._creating[key]
        self._remember(key)
        if created:
            # The new object itself records this occurrence (no status = count 1 at spec.time).
            self.stats.created += 1
        else:
            # Someone else (another receiver, or ours before a restart) stored it: a repeat.
            self._count(key, spec.time, spec=spec)
            self.stats.merged += 1
        return IngestResult(namespace, name, created=created)

    async def _create(self, namespace: str, name: str, spec: FalcoAlertSpec) -> bool:
        body = alert_object(namespace, name, spec)
        try:
            await self._api(self._alerts.create, namespace, body)
        except KubeConflict:
            return False
        except KubeNotFound:
            # The namespace vanished since we checked: forget it and use the fallback.
            self._namespaces.pop(namespace, None)
            if namespace == self.config.fallback_namespace:
                raise KubeUnavailable(f"fallback namespace {namespace!r} does not exist", 404) from None
            body["metadata"]["namespace"] = self.config.fallback_namespace
            return await self._create(self.config.fallback_namespace, name, spec)
        return True

    def _cached_placement(self, namespace: str) -> str | None:
        """Placement from the namespace cache alone; None when a lookup is due."""
        if not namespace or (self.config.namespaces and namespace not in self.config.namespaces):
            return self.config.fallback_namespace
        cached = self._namespaces.get(namespace)
        if cached is None or time.monotonic() - cached[1] > self.config.namespace_ttl:
            return None
        return namespace if cached[0] else self.config.fallback_namespace

    async def _placement(self, namespace: str) -> str:
        """The alert's own namespace when it exists, so namespace RBAC governs who sees it."""
        placed = self._cached_placement(namespace)
        if placed is not None:
            return placed
        now = time.monotonic()
        exists = await self._api(self._objects.namespace_exists, namespace)
        self._namespaces[namespace] = (exists, now)
        if len(self._namespaces) > 10_000:
            self._namespaces.pop(next(iter(self._namespaces)))
        return namespace if exists else self.config.fallback_namespace

    def _remember(self, key: Key) -> None:
        self._known[key] = None
        while len(self._known) > self.config.known_limit:
            self._known.popitem(last=False)

    def _count(self, key: Key, when: str, count: int = 1, *, spec: FalcoAlertSpec | None = None) -> None:
        self._pending.setdefault(key, _Pending()).add(when, count, spec)
        self.stats.pending_keys = len(self._pending)
        metrics.PENDING_REPEATS.set(len(self._pending))

    async def flush(self) -> None:
        """Write pending counts; failed writes stay pending for the next flush."""
        async with self._flush_lock:
            batch, self._pending = self._pending, {}
            self.stats.pending_keys = 0
            metrics.PENDING_REPEATS.set(0)
            if not batch:
                return
            limit = asyncio.Semaphore(self.config.flush_concurrency)

            async def one(key: Key, pending: _Pending) -> None:
                async with limit:
                    try:
                        await self._api(
                            add_repeats,
                            self._alerts,
                            key[0],
                            key[1],
                            pending.count,
                            pending.first,
                            pending.last,
                        )
                        self.stats.flushed_patches += 1
                        metrics.FLUSHES.labels("ok").inc()
                    except KubeNotFound:
                        # Deleted (by a user) after we acknowledged repeats of it: those repeats
                        # must not be lost, so store the alert again; it counts one occurrence.
                        await self._recreate(key, pending)
                    except Exception as exc:
                        self.stats.flush_failures += 1
                        metrics.FLUSHES.labels("retry").inc()
                        log.warning("flush of %s/%s failed, will retry: %s", key[0], key[1], exc)
                        self._pending.setdefault(key, _Pending()).add(pending.first, pending.count)
                        self._pending[key].add(pending.last, 0)

            await asyncio.gather(*(one(k, p) for k, p in batch.items()))

    async def _recreate(self, key: Key, pending: _Pending) -> None:
        if pending.spec is None:
            self._known.pop(key, None)
            return
        try:
            created = await self._create(key[0], key[1], pending.spec)
        except Exception as exc:
            log.warning("re-creating deleted %s/%s failed, will retry: %s", key[0], key[1], exc)
            self._count(key, pending.first, pending.count, spec=pending.spec)
            return
        remaining = pending.count - (1 if created else 0)
        if remaining > 0:
            self._count(key, pending.first, remaining, spec=pending.spec)

    async def run_flusher(self, stop: asyncio.Event) -> None:
        """Flush every interval until ``stop`` is set, then flush once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.flush_interval)
            await self.flush()


def alert_object(namespace: str, name: str, spec: FalcoAlertSpec) -> dict[str, Any]:
    """The FalcoAlert manifest for a first occurrence."""
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
            "annotations": {"falcoreporter.io/receiver-version": __version__},
        },
        "spec": spec.model_dump(by_alias=True, mode="json"),
    }
