"""Reading a chat model's reply: the answer as JSON text, schema errors, token usage, truncation.

Replies are inspected through ``getattr`` (``content``, ``usage_metadata``, ``response_metadata``)
so this works on any provider's message without importing LangChain.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from falco_reporter.reporting.guard import LLMAnswer

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def parse_answer_text(text: str) -> LLMAnswer:
    """An answer from plain text: a JSON object, maybe fenced, maybe with raw newlines in strings."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("the answer holds no JSON object")
    try:
        data = json.loads(body[start : end + 1], strict=False)  # llama.cpp may emit raw newlines
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON: {exc.msg} at character {exc.pos}") from exc
    if isinstance(data, dict) and len(data) == 1:  # {"LLMAnswer": {...}} and similar wrappers
        (inner,) = data.values()
        if isinstance(inner, dict) and "summary" in inner:
            data = inner
    try:
        return LLMAnswer.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_summary(exc)) from exc


def validation_summary(exc: ValidationError) -> str:
    errors = exc.errors()
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in errors[:4]]
    more = f" (and {len(errors) - 4} more)" if len(errors) > 4 else ""
    return "the answer does not match the schema: " + "; ".join(parts) + more


def usage_tokens(message: Any) -> int:
    usage = getattr(message, "usage_metadata", None)
    if usage:
        return int(usage.get("total_tokens", 0))
    meta = getattr(message, "response_metadata", None) or {}
    counts = meta.get("token_usage") or meta.get("usage") or {}
    if not isinstance(counts, dict):
        return 0
    total = counts.get("total_tokens") or (
        (counts.get("prompt_tokens") or counts.get("input_tokens") or 0)
        + (counts.get("completion_tokens") or counts.get("output_tokens") or 0)
    )
    return int(total or 0)


def truncated(message: Any) -> bool:
    meta = getattr(message, "response_metadata", None) or {}
    reason = meta.get("finish_reason") or meta.get("stop_reason") or meta.get("done_reason")
    if reason in ("length", "max_tokens"):
        return True
    # llama-cpp-python reports finish_reason "tool_calls" even when max_tokens cut the arguments off;
    # arguments that stop before their closing brace were cut (a schema grammar allows nothing else).
    for call in getattr(message, "invalid_tool_calls", None) or []:
        args = call.get("args")
        if isinstance(args, str) and args.strip() and not args.rstrip().endswith("}"):
            return True
    return False


def text_of(message: Any) -> str:
    content = getattr(message, "content", "")
    if isinstance(content, str):
        return content
    return "".join(
        part if isinstance(part, str) else str(part.get("text", ""))
        for part in content
        if isinstance(part, str | dict)
    )


def error_reason(error: Any) -> str:
    if isinstance(error, ValidationError):
        return validation_summary(error)
    return f"the structured answer could not be parsed: {type(error).__name__}: {short(error)}"


def short(exc: Any, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
