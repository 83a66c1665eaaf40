"""One exchange with the chat model in LangChain terms: the prompt as messages, the reply as an LLMAnswer.

A reply comes from structured output (``include_raw=True``: a JSON schema, a tool call or JSON
mode) or as plain text, which goes through LangChain's Pydantic parser and then the lenient JSON
reader.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import PydanticOutputParser

from falco_reporter.reporting.answer_parsing import (
    error_reason,
    parse_answer_text,
    text_of,
    truncated,
    usage_tokens,
)
from falco_reporter.reporting.guard import LLMAnswer
from falco_reporter.reporting.prompt import retry_note


def build_messages(texts: tuple[str, str]) -> list[BaseMessage]:
    """The prompt's (system, human) texts (see ``reporting.prompt``) as chat messages."""
    system, human = texts
    return [SystemMessage(content=system), HumanMessage(content=human)]


def retry_message(problems: list[str]) -> HumanMessage:
    """The extra human message of a retry, naming what was wrong with the last answer."""
    return HumanMessage(content=retry_note(problems))


@dataclass
class Outcome:
    answer: LLMAnswer | None
    problems: list[str]
    tokens: int
    method: str = ""
    """The structured-output method that produced the reply (see ``negotiation``)."""


def interpret(result: Any, raw: Any, parser: PydanticOutputParser[LLMAnswer], max_tokens: int) -> Outcome:
    """The answer in a model's result (``raw`` is its message), or the problems that stop it."""
    tokens = usage_tokens(raw)
    if truncated(raw):
        return Outcome(None, [f"the answer was cut off at max_tokens ({max_tokens})"], tokens)
    if isinstance(result, dict):  # structured output with include_raw=True
        parsed = result.get("parsed")
        if isinstance(parsed, LLMAnswer):
            return Outcome(parsed, [], tokens)
        error = result.get("parsing_error")
        text = text_of(raw)
        if "{" not in text:
            reason = (
                error_reason(error) if error is not None else "the model called no tool and wrote no JSON"
            )
            return Outcome(None, [reason], tokens)
    else:
        text = text_of(raw)
    try:
        return Outcome(parser.parse(text), [], tokens)
    except OutputParserException:
        pass
    try:
        return Outcome(parse_answer_text(text), [], tokens)
    except ValueError as exc:
        return Outcome(None, [str(exc)], tokens)


def estimate_tokens(messages: Sequence[BaseMessage], raw: Any) -> int:
    chars = sum(len(text_of(m)) for m in messages) + len(text_of(raw))
    chars += sum(len(json.dumps(c.get("args", {}))) for c in getattr(raw, "tool_calls", None) or [])
    return chars // 4 + 1
