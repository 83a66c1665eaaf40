"""A scripted chat model for the eval and the tests: replays canned answers, as tool calls or text.

Answers given as dicts come back as tool calls (the structured-output path), strings as plain text
(the parser path). It is a LangChain fake, so it lives in the chain package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage


class ScriptedChatModel(FakeMessagesListChatModel):
    """Replays canned replies in order (then cycles) and supports with_structured_output."""

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> ScriptedChatModel:
        return self


def scripted_model(answers: Sequence[dict[str, Any] | str]) -> BaseChatModel:
    """A chat model answering with these replies, one per call."""
    replies: list[BaseMessage] = [
        AIMessage(content="", tool_calls=[{"name": "LLMAnswer", "args": a, "id": f"call-{i}"}])
        if isinstance(a, dict)
        else AIMessage(content=a)
        for i, a in enumerate(answers)
    ]
    return ScriptedChatModel(responses=replies)
