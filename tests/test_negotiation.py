"""Structured-output negotiation of the openai-compatible provider: ChatOpenAI against fake servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from falco_reporter import metrics
from falco_reporter.knowledge.base import KnowledgeBase, load
from falco_reporter.reporting.chain import LLMWriter
from falco_reporter.reporting.chain.negotiation import forget_endpoints, refused_method
from falco_reporter.reporting.context import WriterFailed
from falco_reporter.reporting.llm_config import LLMConfig
from tests.fake_openai import METHODS, FakeOpenAIServer
from tests.test_chain import context, good_answer, real_alert

SCHEMA_HINT = "JSON schema"  # in LangChain's format instructions, which only json_mode and text need
PROVIDER = "openai-compatible"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load()


@pytest.fixture(autouse=True)
def fresh_endpoints() -> Iterator[None]:
    forget_endpoints()
    yield
    forget_endpoints()


def answers(outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "falco_reporter_llm_answers_total", {"provider": PROVIDER, "outcome": outcome}
    )
    return value or 0.0


def writer_for(server: FakeOpenAIServer, kb: KnowledgeBase, **changes: Any) -> LLMWriter:
    values: dict[str, Any] = {
        "provider": PROVIDER,
        "model": "qwen",
        "base_url": server.base_url,
        "timeout_s": 10.0,
        "cache_size": 0,
    }
    values.update(changes)
    return LLMWriter(LLMConfig(**values), kb)  # the real ChatOpenAI, built by the provider code


def system_prompt(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"])


async def test_server_refusing_json_schema_gets_function_calling_remembered_per_endpoint(
    kb: KnowledgeBase,
) -> None:
    """llama.cpp's HTTP 500 for json_schema moves to tool calling, costs no retry, and the endpoint keeps the method."""
    before = {o: answers(o) for o in ("unsupported", "rejected", "accepted")}
    async with FakeOpenAIServer(
        supports={"function_calling", "json_mode", "text"},
        answers=[good_answer(summary="not grounded in anything"), good_answer()],
    ) as server:
        writer = writer_for(server, kb)
        assert writer.method == "json_schema"
        draft = await writer.write(context(real_alert()))
        assert draft.writer.backend == PROVIDER and draft.writer.fallback_reason == ""
        assert draft.writer.structured_output == "function_calling"
        assert draft.summary == good_answer()["summary"]
        # The refused method (the SDK retries a 500 once) is followed by two tool-calling
        # attempts: the ungrounded answer still got its retry.
        refused = [m for m in server.methods if m == "json_schema"]
        assert 1 <= len(refused) <= 2
        assert server.methods[len(refused) :] == ["function_calling", "function_calling"]
        schema = server.requests[len(refused)][1]["tools"][0]["function"]["parameters"]
        assert "summary" in schema["properties"]
        assert SCHEMA_HINT not in system_prompt(server.requests[-1][1])
        assert (answers("unsupported") - before["unsupported"], answers("rejected") - before["rejected"]) == (
            1,
            1,
        )
        assert answers("accepted") - before["accepted"] == 1

        # A second writer on the same endpoint (same process) starts with the negotiated method.
        seen = len(server.requests)
        again = writer_for(server, kb)
        assert again.method == "function_calling"
        second = await again.write(context(real_alert(cmdline="bash -c id")))
        assert second.writer.structured_output == "function_calling"
        assert server.methods[seen:] == ["function_calling"]


async def test_text_only_server_is_asked_in_plain_text_with_the_schema_in_the_prompt(
    kb: KnowledgeBase,
) -> None:
    """A server refusing every structured method is asked in plain text, the schema in the prompt, and the reply parsed."""
    async with FakeOpenAIServer(supports={"text"}, answers=[good_answer()]) as server:
        writer = writer_for(server, kb)
        draft = await writer.write(context(real_alert()))
        assert draft.writer.backend == PROVIDER, draft.writer.fallback_reason
        assert draft.writer.structured_output == "text"
        assert [m for i, m in enumerate(server.methods) if m not in server.methods[:i]] == list(METHODS)
        assert server.methods[-1] == "text" and server.methods.count("text") == 1
        assert SCHEMA_HINT in system_prompt(server.requests[-1][1])
        json_schema = next(body for method, body in server.requests if method == "json_schema")
        assert SCHEMA_HINT not in system_prompt(json_schema)
        assert writer.method == "text" and writer.structured is False


async def test_json_mode_only_server_gets_the_schema_in_the_prompt(kb: KnowledgeBase) -> None:
    """A server with JSON mode but no schema or tools is asked in JSON mode, the schema described in the prompt."""
    async with FakeOpenAIServer(supports={"json_mode", "text"}, answers=[good_answer()]) as server:
        draft = await writer_for(server, kb).write(context(real_alert()))
        assert draft.writer.structured_output == "json_mode", draft.writer.fallback_reason
        body = server.requests[-1][1]
        assert body["response_format"] == {"type": "json_object"}
        assert SCHEMA_HINT in system_prompt(body)


async def test_server_supporting_json_schema_is_asked_with_the_answer_schema(kb: KnowledgeBase) -> None:
    """A full OpenAI-compatible server answers the first, strongest method: one request carrying the schema."""
    async with FakeOpenAIServer(supports=METHODS, answers=[good_answer()]) as server:
        draft = await writer_for(server, kb).write(context(real_alert()))
        assert draft.writer.structured_output == "json_schema", draft.writer.fallback_reason
        assert server.methods == ["json_schema"]
        sent = server.requests[0][1]["response_format"]["json_schema"]["schema"]
        assert {"summary", "verdict", "mitigations"} <= set(sent["properties"])


async def test_a_known_method_failing_later_is_a_model_failure_not_a_renegotiation(kb: KnowledgeBase) -> None:
    """After negotiation, a 400 from the server falls back with the error, without trying weaker methods."""
    async with FakeOpenAIServer(supports={"function_calling", "text"}, answers=[good_answer()]) as server:
        writer = writer_for(server, kb)
        await writer.write(context(real_alert()))
        seen = len(server.requests)
        server.supports = {"text"}  # e.g. a server upgrade that dropped tool calls
        with pytest.raises(WriterFailed, match=r"model call failed: \w+: Error code: 400"):
            await writer.write(context(real_alert(cmdline="bash -c id")))
        assert server.methods[seen:] == ["function_calling"]


async def test_rate_limit_during_negotiation_is_a_failure_and_nothing_is_remembered(
    kb: KnowledgeBase,
) -> None:
    """A 429 on the first method is a model failure (fallback), not a refusal; the endpoint stays unnegotiated."""
    async with FakeOpenAIServer(supports=METHODS, answers=[good_answer()]) as server:
        server.status_override = 429
        writer = writer_for(server, kb)
        with pytest.raises(WriterFailed, match=r"RateLimitError"):
            await writer.write(context(real_alert()))
        assert set(server.methods) == {"json_schema"}
        server.status_override = None
        assert writer_for(server, kb).method == "json_schema"


async def test_server_refusing_everything_fails_with_its_last_error(kb: KnowledgeBase) -> None:
    """When even plain text is refused, the writer fails naming that error and remembers nothing."""
    async with FakeOpenAIServer(supports=set(), answers=[good_answer()]) as server:
        writer = writer_for(server, kb)
        with pytest.raises(WriterFailed, match=r"Error code: 400 - this server does not support text"):
            await writer.write(context(real_alert()))
        assert writer.method == "json_schema"


class StatusError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status


@pytest.mark.parametrize(
    ("status", "message", "refused"),
    [
        (500, "response_format.type: Input should be 'text' or 'json_object'", True),
        (500, "CUDA out of memory", False),
        (400, "tool_choice is not supported", True),
        (422, "unprocessable", True),
        (429, "rate limit reached for tools", False),
        (503, "response_format overloaded", False),
        (401, "bad key", False),
    ],
)
def test_refusals_are_told_apart_from_faults(status: int, message: str, refused: bool) -> None:
    """Only a refusal of the request's shape (400/422/501, or a 500 naming the feature) moves to a weaker method."""
    assert refused_method(StatusError(status, message)) is refused
    assert refused_method(ConnectionError("refused")) is False
