"""The LLMWriter: one report = one grounded, checked model answer, cached and under a budget.

Identical alerts share one model call (single flight, then the answer cache); a rejected answer
gets one retry with the problems named; any failure raises WriterFailed, so ReportService falls
back to the built-in writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.runnables import Runnable

from falco_reporter import metrics
from falco_reporter.knowledge.base import KnowledgeBase
from falco_reporter.models.report import Writer
from falco_reporter.reporting.answer_merge import merge_answer
from falco_reporter.reporting.answer_parsing import short
from falco_reporter.reporting.answer_review import AnswerReview
from falco_reporter.reporting.builtin import BuiltinWriter
from falco_reporter.reporting.cache import AnswerCache, Budget, OverBudget, answer_key
from falco_reporter.reporting.chain.exchange import (
    Outcome,
    build_messages,
    estimate_tokens,
    interpret,
    retry_message,
)
from falco_reporter.reporting.chain.providers import build_chat_model
from falco_reporter.reporting.context import ReportContext, ReportDraft, WriterFailed
from falco_reporter.reporting.guard import LLMAnswer
from falco_reporter.reporting.llm_config import LLMConfig, LLMConfigError
from falco_reporter.reporting.prompt import PROMPT_VERSION, prompt_texts
from falco_reporter.reporting.redaction import Redactor, redact_alert

log = logging.getLogger(__name__)

ATTEMPTS = 2


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
        self._structured = self._structured_runnable(self._model)
        self._builtin = BuiltinWriter()
        self.cache: AnswerCache[LLMAnswer] = AnswerCache(config.cache_size)
        self.budget = Budget(
            calls_per_hour=config.calls_per_hour,
            tokens_per_hour=config.tokens_per_hour,
            concurrency=config.concurrency,
            clock=clock,
        )
        # llama.cpp generates in a worker thread and cannot run two generations at once; a call
        # abandoned on timeout keeps running, so the next one waits for it under this lock.
        self._in_process = config.provider == "llamacpp"
        self._lock = threading.Lock()
        self._flights: dict[str, tuple[asyncio.Lock, int]] = {}
        self.model_calls = 0
        #: The review of the last report that went to the model (the eval reads its attempts).
        self.last_review: AnswerReview | None = None
        log.info("%s (%s output)", config.describe(), "structured" if self._structured else "text")

    @property
    def backend(self) -> str:
        return self._config.provider

    @property
    def structured(self) -> bool:
        """True when the model produces the answer through tool calling (``with_structured_output``)."""
        return self._structured is not None

    @staticmethod
    def _structured_runnable(model: BaseChatModel) -> Runnable[Any, Any] | None:
        try:
            return model.with_structured_output(LLMAnswer, include_raw=True)
        except NotImplementedError:
            return None

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
                return self._merge(
                    ctx, base, cached, tokens=0, started=started, cache_hit=True, redactions=redactor.kinds
                )

            format_instructions = "" if self._structured else self._parser.get_format_instructions()
            texts = prompt_texts(
                ctx,
                alert,
                enrichment,
                base,
                format_instructions=format_instructions,
                redactor=redactor if self._config.redact else None,
            )
            messages = build_messages(texts)
            review = AnswerReview.for_report(self.backend, self._kb, ctx, alert, base, texts)
            self.last_review = review
            tokens = 0
            problems: list[str] = []
            for attempt in range(1, ATTEMPTS + 1):
                prompt = messages if not problems else [*messages, retry_message(problems)]
                outcome = await self._ask(prompt)
                tokens += outcome.tokens
                problems = review.review(outcome.answer, outcome.problems, tokens=outcome.tokens)
                if outcome.answer is not None and not problems:
                    self.cache.put(key, outcome.answer)
                    return self._merge(
                        ctx,
                        base,
                        outcome.answer,
                        tokens=tokens,
                        started=started,
                        cache_hit=False,
                        redactions=redactor.kinds,
                    )
                log.info(
                    "%s answer rejected (attempt %d/%d): %s",
                    self.backend,
                    attempt,
                    ATTEMPTS,
                    "; ".join(problems),
                )
            raise WriterFailed(review.failure())

    # --- one model call --------------------------------------------------------------------

    async def _ask(self, messages: Sequence[BaseMessage]) -> Outcome:
        runnable: Runnable[Any, Any] = self._structured if self._structured is not None else self._model
        timeout = self._config.timeout_s
        try:
            async with self.budget.slot():
                self.model_calls += 1
                called = time.monotonic()
                try:
                    result = await asyncio.wait_for(self._invoke(runnable, list(messages)), timeout=timeout)
                except TimeoutError as exc:
                    metrics.LLM_CALLS.labels("timeout").inc()
                    raise WriterFailed(f"{self.backend} model call timed out after {timeout:g}s") from exc
                except Exception as exc:  # provider errors: connection, auth, rate limits, ...
                    metrics.LLM_CALLS.labels("error").inc()
                    raise WriterFailed(
                        f"{self.backend} model call failed: {type(exc).__name__}: {short(exc)}"
                    ) from exc
                metrics.LLM_CALLS.labels("ok").inc()
                metrics.LLM_LATENCY.observe(time.monotonic() - called)
        except OverBudget as exc:
            metrics.LLM_BUDGET_REJECTIONS.inc()
            raise WriterFailed(f"over budget: {exc}") from exc
        raw = result.get("raw") if isinstance(result, dict) else result
        outcome = self._interpret(result, raw)
        used = outcome.tokens or estimate_tokens(messages, raw)
        self.budget.record_tokens(used)
        metrics.LLM_TOKENS.inc(used)
        return outcome

    async def _invoke(self, runnable: Runnable[Any, Any], messages: list[BaseMessage]) -> Any:
        if self._in_process:
            return await asyncio.to_thread(self._invoke_locked, runnable, messages)
        return await runnable.ainvoke(messages)

    def _invoke_locked(self, runnable: Runnable[Any, Any], messages: list[BaseMessage]) -> Any:
        with self._lock:
            return runnable.invoke(messages)

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
        )
        return merge_answer(base, answer, writer=writer)
