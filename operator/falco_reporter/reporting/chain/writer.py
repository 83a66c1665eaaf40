"""The LLMWriter: one report = one grounded, checked model answer, cached and under a budget.

Identical alerts share one model call (single flight, then the answer cache); a rejected answer
gets one retry with the problems named; any failure raises WriterFailed, so ReportService falls
back to the built-in writer. On a new endpoint the structured-output method is negotiated first
(``negotiation``): a server refusing a method costs neither the retry nor a model failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.runnables import Runnable, RunnableConfig

from falco_reporter import metrics
from falco_reporter.knowledge.base import KnowledgeBase
from falco_reporter.models.report import Incident, Writer
from falco_reporter.reporting.answer_merge import merge_answer
from falco_reporter.reporting.answer_parsing import short, text_of, truncated, usage_tokens
from falco_reporter.reporting.answer_review import AnswerReview
from falco_reporter.reporting.builtin import BuiltinWriter
from falco_reporter.reporting.cache import AnswerCache, Budget, CacheKey, OverBudget, answer_key
from falco_reporter.reporting.chain.exchange import (
    Outcome,
    build_messages,
    estimate_tokens,
    interpret,
    retry_message,
)
from falco_reporter.reporting.chain.negotiation import Method, Negotiator, refused_method
from falco_reporter.reporting.chain.providers import build_chat_model
from falco_reporter.reporting.context import ReportContext, ReportDraft, WriterFailed
from falco_reporter.reporting.guard import LLMAnswer
from falco_reporter.reporting.incidents import incident_anchors, timeline_digest
from falco_reporter.reporting.llm_config import LLMConfig, LLMConfigError
from falco_reporter.reporting.prompt import (
    INCIDENT_PROMPT_VERSION,
    PROMPT_VERSION,
    incident_prompt,
    prompt_texts,
)
from falco_reporter.reporting.redaction import Redactor, redact_alert
from falco_reporter.reporting.sense import check_narrative

log = logging.getLogger(__name__)

ATTEMPTS = 2


class _Refused(Exception):
    """The server refused the structured-output method; the next one is tried."""


class CallAbandoned(Exception):
    """Raised inside a model call whose caller gave up on it (timeout): generation stops."""


class _StopWhenAbandoned(BaseCallbackHandler):
    """Stops a synchronous generation at its next token once ``abandoned`` is set."""

    raise_error = True

    def __init__(self, abandoned: threading.Event) -> None:
        self.abandoned = abandoned

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        if self.abandoned.is_set():
            raise CallAbandoned("the caller stopped waiting for this answer")


class LLMWriter:
    """The ReportWriter backed by a chat model; ``model=`` injects a ready one (tests use fakes)."""

    def __init__(
        self,
        config: LLMConfig,
        kb: KnowledgeBase,
        *,
        model: BaseChatModel | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not config.enabled:
            raise LLMConfigError("the LLM writer needs a provider (FALCO_REPORTER_LLM_PROVIDER)")
        self._config = config
        self._kb = kb
        self._model = model if model is not None else build_chat_model(config)
        self._clock = clock
        self._parser: PydanticOutputParser[LLMAnswer] = PydanticOutputParser(pydantic_object=LLMAnswer)
        self._negotiator = Negotiator(config, self._model)
        self._builtin = BuiltinWriter()
        # An answer is cached with the structured-output method that produced it.
        self.cache: AnswerCache[tuple[LLMAnswer, str]] = AnswerCache(config.cache_size)
        #: Incident narratives, keyed by namespace, incident and timeline (see ``narrate``).
        self.narratives: AnswerCache[str] = AnswerCache(config.cache_size)
        self.budget = Budget(
            calls_per_hour=config.calls_per_hour,
            tokens_per_hour=config.tokens_per_hour,
            concurrency=config.concurrency,
            clock=clock,
        )
        # Models without a native async API (llama.cpp in process, some integrations) generate in
        # threads of their own, never the loop's default pool (the API and other work use that):
        # at most ``concurrency`` at once (1 for llama.cpp, which generates serially).
        self._native_async = type(self._model)._agenerate is not BaseChatModel._agenerate
        self.executor = ThreadPoolExecutor(config.concurrency, thread_name_prefix="llm")
        self._flights: dict[str, tuple[asyncio.Lock, int]] = {}
        self.model_calls = 0
        #: The review of the last report that went to the model (the eval reads its attempts).
        self.last_review: AnswerReview | None = None
        log.info("%s (structured output: %s)", config.describe(), self.method)

    @property
    def backend(self) -> str:
        return self._config.provider

    @property
    def method(self) -> str:
        """The structured-output method the next call uses: the negotiated one, else the strongest."""
        return self._negotiator.preferred.name

    @property
    def structured(self) -> bool:
        """True when the model answers in a schema (``with_structured_output``), not in free text."""
        return self.method != "text"

    # --- ReportWriter ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _single_flight(self, key: str) -> AsyncIterator[None]:
        lock, users = self._flights.get(key, (asyncio.Lock(), 0))
        self._flights[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._flights[key]
            if users <= 1:
                del self._flights[key]
            else:
                self._flights[key] = (lock, users - 1)

    async def write(self, ctx: ReportContext) -> ReportDraft:
        started = self._clock()
        redactor = Redactor()
        enrichment = ctx.enrichment.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        if self._config.redact:
            alert, _ = redact_alert(ctx.alert, redactor)
            enrichment = redactor.redact_data(enrichment)
        else:
            alert = ctx.alert
        key = answer_key(
            alert,
            knowledge_version=ctx.knowledge_version,
            provider=self._config.provider,
            model=self._config.model,
            prompt_version=PROMPT_VERSION,
            enrichment=ctx.enrichment,  # the tenant: an answer is never reused for another namespace
        )
        # Single flight: a storm of identical alerts (replicas of one workload) must cost one call,
        # not one per concurrent report; later ones wait and then hit the cache.
        async with self._single_flight(key.digest):
            base = self._builtin.write_sync(ctx)
            cached = self.cache.get(key)
            if cached is not None:
                metrics.LLM_CACHE_HITS.inc()
                answer, method = cached
                return self._merge(
                    ctx,
                    base,
                    answer,
                    tokens=0,
                    started=started,
                    cache_hit=True,
                    redactions=redactor.kinds,
                    method=method,
                )

            def messages(method: Method, problems: list[str]) -> list[BaseMessage]:
                """The prompt for ``method`` (JSON mode and text describe the schema) and any retry note."""
                instructions = self._parser.get_format_instructions() if method.needs_instructions else ""
                note = [retry_message(problems)] if problems else []
                return [*build_messages(prompt(instructions)), *note]

            def prompt(instructions: str) -> tuple[str, str]:
                return prompt_texts(
                    ctx,
                    alert,
                    enrichment,
                    base,
                    format_instructions=instructions,
                    redactor=redactor if self._config.redact else None,
                )

            # The review checks answers against the prompt as sent (without a method's schema text).
            review = AnswerReview.for_report(self.backend, self._kb, ctx, alert, base, prompt(""))
            self.last_review = review
            tokens = 0
            problems: list[str] = []
            for attempt in range(1, ATTEMPTS + 1):
                outcome = await self._ask(functools.partial(messages, problems=problems))
                tokens += outcome.tokens
                problems = review.review(outcome.answer, outcome.problems, tokens=outcome.tokens)
                if outcome.answer is not None and not problems:
                    self.cache.put(key, (outcome.answer, outcome.method))
                    return self._merge(
                        ctx,
                        base,
                        outcome.answer,
                        tokens=tokens,
                        started=started,
                        cache_hit=False,
                        redactions=redactor.kinds,
                        method=outcome.method,
                    )
                log.info(
                    "%s answer rejected (attempt %d/%d): %s",
                    self.backend,
                    attempt,
                    ATTEMPTS,
                    "; ".join(problems),
                )
            raise WriterFailed(review.failure())

    # --- incident narratives ---------------------------------------------------------------

    def _narrative_key(self, namespace: str, incident: Incident) -> CacheKey:
        """One narrative per namespace (the tenant), incident and state of its timeline."""
        return CacheKey(
            rule="incident",
            image_repository="",
            command=timeline_digest(incident),
            knowledge_version="",
            model=f"{self._config.provider}:{self._config.model}",
            prompt_version=INCIDENT_PROMPT_VERSION,
            tenant=f"{namespace}\x1e{incident.id}",
        )

    def cached_narrative(self, namespace: str, incident: Incident) -> str | None:
        """The narrative already written for exactly this incident state in this namespace, if any."""
        return self.narratives.get(self._narrative_key(namespace, incident))

    async def narrate(self, namespace: str, incident: Incident) -> str:
        """The incident told by the model: one call per incident change, under the same budget."""
        key = self._narrative_key(namespace, incident)
        async with self._single_flight(key.digest):
            cached = self.narratives.get(key)
            if cached is not None:
                metrics.LLM_CACHE_HITS.inc()
                return cached
            redactor = Redactor() if self._config.redact else None
            system, human = incident_prompt(namespace, incident, redactor)
            messages = build_messages((system, human))
            reply = await self._call(Method("text", None), messages, last=True)
            used = usage_tokens(reply) or estimate_tokens(messages, reply)
            self.budget.record_tokens(used)
            metrics.LLM_TOKENS.inc(used)
            text = text_of(reply).strip()
            problems = ["narrative: cut off at max_tokens"] if truncated(reply) else []
            problems = problems or check_narrative(
                text, known=human, anchors=incident_anchors(namespace, incident), instructions=system
            )
            outcome = "rejected" if problems else "accepted"
            metrics.LLM_ANSWERS.labels(self.backend, outcome).inc()
            if problems:
                raise WriterFailed(f"{self.backend} incident narrative rejected: {'; '.join(problems)}")
            self.narratives.put(key, text)
            return text

    # --- one model call --------------------------------------------------------------------

    async def _ask(self, prompt: Callable[[Method], list[BaseMessage]]) -> Outcome:
        """One reply; on a new endpoint, methods the server refuses are skipped (not failures)."""
        candidates = self._negotiator.candidates()
        for index, method in enumerate(candidates):
            messages = prompt(method)
            try:
                result = await self._call(method, messages, last=index == len(candidates) - 1)
            except _Refused as exc:
                log.info(
                    "%s refused structured output %s, trying the next: %s", self.backend, method.name, exc
                )
                continue
            self._negotiator.answered(method)
            raw = result.get("raw") if isinstance(result, dict) else result
            outcome = self._interpret(result, raw)
            outcome.method = method.name
            used = outcome.tokens or estimate_tokens(messages, raw)
            self.budget.record_tokens(used)
            metrics.LLM_TOKENS.inc(used)
            return outcome
        raise AssertionError("the last candidate (plain text) is never refused")  # pragma: no cover

    async def _call(self, method: Method, messages: list[BaseMessage], *, last: bool) -> Any:
        runnable: Runnable[Any, Any] = method.runnable if method.runnable is not None else self._model
        timeout = self._config.timeout_s
        try:
            async with self.budget.slot():
                self.model_calls += 1
                called = time.monotonic()
                try:
                    result = await asyncio.wait_for(self._invoke(runnable, messages), timeout=timeout)
                except TimeoutError as exc:
                    self._count("timeout")
                    raise WriterFailed(f"{self.backend} model call timed out after {timeout:g}s") from exc
                except Exception as exc:  # provider errors: connection, auth, rate limits, ...
                    if not last and refused_method(exc):
                        self._count("unsupported")
                        raise _Refused(short(exc)) from exc
                    self._count("error")
                    raise WriterFailed(
                        f"{self.backend} model call failed: {type(exc).__name__}: {short(exc)}"
                    ) from exc
                metrics.LLM_CALLS.labels("ok").inc()
                metrics.LLM_LATENCY.observe(time.monotonic() - called)
        except OverBudget as exc:
            metrics.LLM_BUDGET_REJECTIONS.inc()
            raise WriterFailed(f"over budget: {exc}") from exc
        return result

    def _count(self, outcome: str) -> None:
        """A call that produced no answer: by result, and by provider and outcome."""
        metrics.LLM_CALLS.labels(outcome).inc()
        metrics.LLM_ANSWERS.labels(self.backend, outcome).inc()

    async def _invoke(self, runnable: Runnable[Any, Any], messages: list[BaseMessage]) -> Any:
        """One model call; cancelling it (the timeout does) cancels the call itself.

        An async call is cancelled with its task. A threaded call still queued never starts; a
        running one stops at its next streamed token (a non-streaming generation finishes in its
        own slot of this writer's pool, which bounds what it can hold).
        """
        if self._native_async:
            return await runnable.ainvoke(messages)
        abandoned = threading.Event()
        config: RunnableConfig = {"callbacks": [_StopWhenAbandoned(abandoned)]}
        future = self.executor.submit(runnable.invoke, messages, config)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            abandoned.set()
            raise

    def _interpret(self, result: Any, raw: Any) -> Outcome:
        return interpret(result, raw, self._parser, self._config.max_tokens)

    # --- merge -----------------------------------------------------------------------------

    def _merge(
        self,
        ctx: ReportContext,
        base: ReportDraft,
        answer: LLMAnswer,
        *,
        tokens: int,
        started: float,
        cache_hit: bool,
        redactions: list[str],
        method: str,
    ) -> ReportDraft:
        """The model's text on top of the built-in draft, signed with how it was written."""
        writer = Writer(
            backend=self.backend,
            model=self._config.model,
            prompt_version=PROMPT_VERSION,
            knowledge_version=ctx.knowledge_version,
            tokens=tokens,
            latency_ms=max(1, int((self._clock() - started) * 1000)),
            cache_hit=cache_hit,
            redactions=redactions,
            structured_output=method,
        )
        return merge_answer(base, answer, writer=writer)
