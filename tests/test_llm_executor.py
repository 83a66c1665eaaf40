"""Synchronous model calls run in the writer's own bounded pool and stop when they time out."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from falco_reporter.knowledge.base import load
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.report import Occurrences
from falco_reporter.reporting.chain import LLMWriter
from falco_reporter.reporting.context import WriterFailed
from falco_reporter.reporting.llm_config import LLMConfig
from falco_reporter.reporting.service import ReportService
from tests.test_chain import real_alert

TOKENS = 400
TOKEN_SECONDS = 0.025  # the whole answer would take 10 s


class SlowLocalModel(BaseChatModel):
    """A synchronous model (no native async) that reports each token through the callbacks, as
    llama.cpp does when it streams; it records where and how long it generated."""

    _produced: int = PrivateAttr(default=0)
    _threads: list[str] = PrivateAttr(default_factory=list)
    _finished: threading.Event = PrivateAttr(default_factory=threading.Event)

    @property
    def _llm_type(self) -> str:
        return "slow-local"

    def bind_tools(self, tools: Any, **kwargs: Any) -> SlowLocalModel:  # type: ignore[override]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self._threads.append(threading.current_thread().name)
        self._finished.clear()
        try:
            for _ in range(TOKENS):
                time.sleep(TOKEN_SECONDS)
                self._produced += 1
                if run_manager is not None:
                    run_manager.on_llm_new_token("x")
        finally:
            self._finished.set()
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="x" * TOKENS))])


def _writer(model: SlowLocalModel, timeout: float) -> LLMWriter:
    config = LLMConfig(
        provider="ollama", model="slow", timeout_s=timeout, calls_per_hour=0, tokens_per_hour=0
    )
    return LLMWriter(config, load(), model=model)


async def test_a_timed_out_call_stops_generating_and_frees_its_slot() -> None:
    """A call that times out stops at its next token, in the writer's pool, and the next call starts at once."""
    model = SlowLocalModel()
    writer = _writer(model, timeout=0.3)
    ctx = ReportService(load(), redact=False).context(
        real_alert(), Enrichment(), name="a", namespace="shop", occurrences=Occurrences()
    )
    started = time.monotonic()
    with pytest.raises(WriterFailed, match=r"timed out after 0\.3s"):
        await writer.write(ctx)
    # The generation ended long before its 10 s, well short of its last token.
    assert await asyncio.to_thread(model._finished.wait, 5.0)
    assert model._produced < TOKENS // 2, model._produced
    assert time.monotonic() - started < 5.0
    # Not on asyncio's default pool (its threads are named asyncio_N; LangChain may hand the model
    # step to a thread of its own from inside our slot).
    assert model._threads and not any(name.startswith("asyncio") for name in model._threads)
    # Its one slot is free: the next job runs now, not after the abandoned generation.
    assert writer.executor.submit(lambda: "free").result(timeout=2.0) == "free"


async def test_a_call_still_queued_when_it_times_out_never_starts() -> None:
    """With the single slot busy, a call that times out while queued is dropped, not run later."""
    model = SlowLocalModel()
    writer = _writer(model, timeout=30)
    gate = threading.Event()
    blocker = writer.executor.submit(gate.wait, 10.0)
    messages: list[BaseMessage] = [AIMessage(content="hi")]
    queued = asyncio.create_task(writer._invoke(model, messages))
    await asyncio.sleep(0)
    try:
        await asyncio.wait_for(asyncio.shield(queued), timeout=0.2)
    except TimeoutError:
        queued.cancel()
    await asyncio.gather(queued, return_exceptions=True)
    gate.set()
    blocker.result(timeout=5.0)
    # The pool drains; the cancelled call was removed from its queue and never generated.
    assert writer.executor.submit(lambda: "done").result(timeout=5.0) == "done"
    assert queued.cancelled()
    assert model._threads == []
