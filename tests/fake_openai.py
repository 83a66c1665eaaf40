"""A small OpenAI-compatible chat-completions server on loopback whose supported structured-output methods the test picks.

Each request is classified by how it asks for structure: ``response_format`` of type
``json_schema`` or ``json_object``, ``tools``, or neither (plain text). A method the server does not
support is refused the way real servers do (llama.cpp's server: HTTP 500 naming ``response_format``;
others: 400). Supported requests get ``answers`` in order (the last one repeats), shaped for the method.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

METHODS = ("json_schema", "function_calling", "json_mode", "text")
LLAMA_CPP_REFUSAL = "response_format.type: Input should be 'text' or 'json_object'"


def request_method(body: dict[str, Any]) -> str:
    """The structured-output method a chat-completions request uses."""
    kind = (body.get("response_format") or {}).get("type", "text")
    if kind == "json_schema":
        return "json_schema"
    if kind == "json_object":
        return "json_mode"
    return "function_calling" if body.get("tools") else "text"


class FakeOpenAIServer:
    """``POST /v1/chat/completions``; records every request as (method, body)."""

    def __init__(self, supports: Iterable[str], answers: list[dict[str, Any] | str]) -> None:
        self.supports = set(supports)
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.status_override: int | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @property
    def methods(self) -> list[str]:
        return [method for method, _ in self.requests]

    def _next_answer(self) -> dict[str, Any] | str:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        method = request_method(body)
        self.requests.append((method, body))
        if self.status_override is not None:
            return web.json_response(
                {"error": {"message": "upstream overloaded", "type": "server_error"}},
                status=self.status_override,
            )
        if method not in self.supports:
            if method == "json_schema":  # what llama-cpp-python's server answers
                return web.json_response({"error": {"message": LLAMA_CPP_REFUSAL}}, status=500)
            return web.json_response(
                {"error": {"message": f"this server does not support {method}", "type": "invalid_request"}},
                status=400,
            )
        answer = self._next_answer()
        text = answer if isinstance(answer, str) else json.dumps(answer)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        if method == "function_calling":
            name = body["tools"][0]["function"]["name"]
            call = {"id": "call-1", "type": "function", "function": {"name": name, "arguments": text}}
            message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        elif method == "text" and not isinstance(answer, str):
            message["content"] = f"Here is the report:\n```json\n{text}\n```"
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 900, "completion_tokens": 300, "total_tokens": 1200},
            }
        )

    async def __aenter__(self) -> FakeOpenAIServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
