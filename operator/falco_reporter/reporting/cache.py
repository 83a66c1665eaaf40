"""Cost control for the LLM writer: an answer cache and per-hour budgets. No LangChain here.

The cache key is what determines a model's answer: the rule, the image repository, the normalised
command line (or, for Kubernetes audit alerts, who did what to which resource), the knowledge-base
version, the provider and model, and the prompt version; and the tenant: the namespace and the
workload (or, without one, the pod, container or host). An answer names its subject and carries a
verdict about it, so it is never reused for another team's namespace or another workload. Repeats
of one activity by replicas of a workload (different pods, same image and command) still cost one
model call; the report's subject section names each pod, since the service fills it from the alert.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import LRUCache

from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import FalcoAlertSpec, normalise_cmdline

HOUR_S = 3600.0
V = TypeVar("V")
_AUDIT_FIELDS = ("ka.user.name", "ka.verb", "ka.target.resource", "ka.target.subresource")


class OverBudget(RuntimeError):
    """The hourly call or token budget is spent; the message says which and when it frees up."""


@dataclass(frozen=True)
class CacheKey:
    """The inputs that determine an answer (kept for debugging; the cache uses :attr:`digest`)."""

    rule: str
    image_repository: str
    command: str
    knowledge_version: str
    model: str
    prompt_version: str
    tenant: str = ""
    """Namespace and workload (or pod, container, host) the answer is about."""

    @property
    def digest(self) -> str:
        parts = (
            self.tenant,
            self.rule,
            self.image_repository,
            self.command,
            self.knowledge_version,
            self.model,
            self.prompt_version,
        )
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def tenant_of(alert: FalcoAlertSpec, enrichment: Enrichment | None = None) -> str:
    """Whose activity this is: namespace and workload, else the most specific subject the alert names."""
    found = enrichment if enrichment is not None else Enrichment()
    namespace = found.namespace or alert.subject.namespace
    if found.workload.name:
        who = f"{found.workload.kind}/{found.workload.name}"
    else:
        who = (
            found.pod
            or alert.subject.pod
            or (alert.subject.container_id if alert.subject.container_id != "host" else "")
            or f"host/{alert.hostname}"
        )
    return f"{namespace}\x1e{who}"


def answer_key(
    alert: FalcoAlertSpec,
    *,
    knowledge_version: str,
    provider: str,
    model: str,
    prompt_version: str,
    enrichment: Enrichment | None = None,
) -> CacheKey:
    """The cache key of an alert's answer. Pass the *redacted* alert: keys never hold secrets."""
    repository = alert.text("container.image.repository") or alert.subject.image.rsplit(":", 1)[0]
    command = normalise_cmdline(alert.text("proc.cmdline") or alert.text("ka.uri.param[command]"))
    if alert.source != "syscall":
        command += "\x1e" + "\x1e".join(alert.text(f) or "" for f in _AUDIT_FIELDS)
    return CacheKey(
        rule=alert.rule,
        image_repository=repository,
        command=command,
        knowledge_version=knowledge_version,
        model=f"{provider}:{model}",
        prompt_version=prompt_version,
        tenant=tenant_of(alert, enrichment),
    )


class AnswerCache(Generic[V]):
    """A least-recently-used map from cache key to answer, counting hits; ``size=0`` disables it."""

    def __init__(self, size: int) -> None:
        self._items: LRUCache[str, V] | None = LRUCache(size) if size > 0 else None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0

    def get(self, key: CacheKey) -> V | None:
        value = self._items.get(key.digest) if self._items is not None else None
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: CacheKey, value: V) -> None:
        if self._items is not None:
            self._items[key.digest] = value


class Budget:
    """Per-hour call and token budgets over a sliding hour, and a concurrency limit.

    A call is admitted when fewer than ``calls_per_hour`` calls started in the last hour and
    fewer than ``tokens_per_hour`` tokens were used in it (0 = unlimited). Tokens are known only
    after a call, so one call may overshoot the token budget; the next one is refused.
    """

    def __init__(
        self,
        *,
        calls_per_hour: int = 0,
        tokens_per_hour: int = 0,
        concurrency: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls_per_hour = calls_per_hour
        self.tokens_per_hour = tokens_per_hour
        self._clock = clock
        self._calls: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._semaphore = asyncio.Semaphore(max(1, concurrency))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the concurrent slots and spend one call; raise OverBudget when spent."""
        async with self._semaphore:
            self.admit()
            yield

    def admit(self) -> None:
        """Spend one call of the hourly budget, or raise OverBudget."""
        now = self._clock()
        self._prune(now)
        if self.calls_per_hour and len(self._calls) >= self.calls_per_hour:
            wait = self._calls[0] + HOUR_S - now
            raise OverBudget(
                f"{len(self._calls)} model calls in the last hour (limit {self.calls_per_hour}); "
                f"next call possible in {wait:.0f}s"
            )
        used = self.tokens_used(now)
        if self.tokens_per_hour and used >= self.tokens_per_hour:
            wait = self._tokens[0][0] + HOUR_S - now
            raise OverBudget(
                f"{used} tokens in the last hour (limit {self.tokens_per_hour}); budget frees up in {wait:.0f}s"
            )
        self._calls.append(now)

    def record_tokens(self, tokens: int) -> None:
        """Account the tokens one call used."""
        if tokens > 0:
            self._tokens.append((self._clock(), tokens))

    def calls_used(self, now: float | None = None) -> int:
        self._prune(self._clock() if now is None else now)
        return len(self._calls)

    def tokens_used(self, now: float | None = None) -> int:
        self._prune(self._clock() if now is None else now)
        return sum(n for _, n in self._tokens)

    def _prune(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - HOUR_S:
            self._calls.popleft()
        while self._tokens and self._tokens[0][0] <= now - HOUR_S:
            self._tokens.popleft()
