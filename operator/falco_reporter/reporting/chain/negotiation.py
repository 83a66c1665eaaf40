"""Structured-output negotiation: the strongest method an endpoint supports, remembered per endpoint.

OpenAI-compatible servers differ in what they accept: llama.cpp's server refuses a JSON-schema
``response_format`` (HTTP 500) but does tool calls and JSON mode, some servers have no tool calls.
The writer tries the methods strongest first (json_schema, function_calling, json_mode, plain text
read by the parser) and keeps the first one the server accepts for this endpoint (provider, base
URL, model) for the process lifetime. Only a method that answered is remembered, so a transient
error never demotes an endpoint; once a method is known, its errors are ordinary model failures.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from falco_reporter.reporting.guard import LLMAnswer
from falco_reporter.reporting.llm_config import LLMConfig

__all__ = ["METHODS", "Method", "Negotiator", "forget_endpoints", "refused_method"]

#: Strongest first. ``text`` asks for JSON in the prompt and parses the reply.
METHODS: Final = ("json_schema", "function_calling", "json_mode", "text")
#: Providers whose LangChain integration takes ``with_structured_output(method=...)`` for all of METHODS;
#: the others do tool calling by default (llama.cpp in process through a grammar, Anthropic,
#: Bedrock, Google), with plain text as the fallback.
_NEGOTIATED: Final = frozenset({"openai", "openai-compatible", "azure_openai", "ollama"})
_TOOL_CALLING_ONLY: Final = ("function_calling", "text")
#: Words a server's refusal of a structured-output request names (llama.cpp: "response_format.type:
#: Input should be 'text' or 'json_object'"; vLLM/LM Studio: tool choice, json_schema, ...).
_FEATURE_WORDS: Final = ("response_format", "json_schema", "json_object", "schema", "tool", "function")

_known: dict[tuple[str, str, str], str] = {}
_known_lock = threading.Lock()


@dataclass(frozen=True)
class Method:
    """One way of asking for the answer: ``runnable`` is None for plain text (the bare model)."""

    name: str
    runnable: Runnable[Any, Any] | None

    @property
    def needs_instructions(self) -> bool:
        """JSON mode and plain text carry no schema to the server: the prompt must describe it."""
        return self.name in ("json_mode", "text")


def refused_method(exc: BaseException) -> bool:
    """True when an HTTP error says the server refused the request's structured-output method.

    400/422/501 mean the request as written was refused; a 500 counts only when its message names
    the feature (llama.cpp's server answers an unsupported ``response_format`` with 500), since a
    bare 500 is usually a transient server fault. Rate limits, auth and gateway errors never count.
    """
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if not isinstance(status, int):
        return False
    if status in (400, 422, 501):
        return True
    return status == 500 and any(word in str(exc).lower() for word in _FEATURE_WORDS)


def _structured(model: BaseChatModel, method: str) -> Runnable[Any, Any] | None:
    """The model bound to answer an LLMAnswer through ``method``; None when it cannot."""
    try:
        return model.with_structured_output(LLMAnswer, method=method, include_raw=True)
    except (NotImplementedError, TypeError, ValueError):
        pass  # the integration takes no ``method`` or lacks this one
    if method != "function_calling":
        return None
    try:  # LangChain's default structured output is tool calling
        return model.with_structured_output(LLMAnswer, include_raw=True)
    except NotImplementedError:
        return None


class Negotiator:
    """The structured-output methods one model offers, and which one its endpoint answered."""

    def __init__(self, config: LLMConfig, model: BaseChatModel) -> None:
        self.endpoint = (config.provider, config.base_url, config.model)
        # LangChain's generic with_structured_output ignores ``method`` and always binds a tool.
        generic = type(model).with_structured_output is BaseChatModel.with_structured_output
        names = METHODS if config.provider in _NEGOTIATED and not generic else _TOOL_CALLING_ONLY
        methods = [Method(name, _structured(model, name)) for name in names if name != "text"]
        self._methods = [m for m in methods if m.runnable is not None] + [Method("text", None)]

    @property
    def known(self) -> Method | None:
        """The method this endpoint answered before (in this process), if this model offers it."""
        with _known_lock:
            name = _known.get(self.endpoint)
        return next((m for m in self._methods if m.name == name), None)

    @property
    def preferred(self) -> Method:
        """The method the next call starts with."""
        return self.known or self._methods[0]

    def candidates(self) -> list[Method]:
        """The known method alone, or every method strongest first while the endpoint is new."""
        known = self.known
        return [known] if known is not None else list(self._methods)

    def answered(self, method: Method) -> None:
        """The endpoint accepted ``method``: use it from now on (when this model had a choice)."""
        if len(self._methods) == 1:
            return
        with _known_lock:
            _known[self.endpoint] = method.name


def forget_endpoints() -> None:
    """Forget every negotiated method (tests; a process normally keeps them for its lifetime)."""
    with _known_lock:
        _known.clear()
