"""The operator in-process with a fake chat model, for the LLM storm measurement.

``CountingChatModel`` answers like a real provider would (a tool call with a valid answer that
names the alert's rule) after sleeping ``delay`` seconds, and counts its calls. ``InProcessOperator``
runs ``runtime.run_operator`` with the receiver embedded in a thread of this process, so the
benchmark can read ``falco_reporter.metrics`` directly.

"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from devcluster.net import probe
from devcluster.reporter import wait_for
from falco_reporter import metrics, runtime
from falco_reporter.knowledge.base import load
from falco_reporter.kube.client import connect
from falco_reporter.kube.dryrun import ManifestDryRun
from falco_reporter.receiver.http import ReceiverSettings
from falco_reporter.reporting.chain import LLMWriter
from falco_reporter.reporting.llm_config import LLMConfig
from falco_reporter.reporting.service import ReportService

_RULE = re.compile(r'"rule":\s*"((?:[^"\\]|\\.)*)"')
_EVIDENCE = re.compile(r'"evidence":\s*\[\s*\{\s*"id":\s*"([^"]+)"')


def fake_answer(rule: str, evidence: str = "") -> dict[str, Any]:
    return {
        "summary": f"The Falco rule {rule} fired in a workload container; the process and image match "
        "a known pattern for this rule.",
        "analysis": f"**What happened.** {rule} matched a process in the container.\n\n"
        "**Why it matters.** Check who started it and whether the image is expected to do this.",
        "severity": "medium",
        "verdict": "suspicious",
        "verdict_reason": "The activity matches the rule and nothing in the data explains it as routine"
        + (f" ({evidence})." if evidence else "."),
        "false_positive_hints": ["A maintenance job run by an operator of the cluster."],
        "mitigations": [
            {
                "title": "Review who can exec into this workload",
                "description": "Limit pods/exec to the on-call group with RBAC.",
                "kind": "process",
                "language": "text",
                "snippet": "",
            }
        ],
        "references": [],
    }


class CountingChatModel(BaseChatModel):
    """A chat model that sleeps like a real one, answers with a valid tool call, and counts calls."""

    delay: float = 0.5
    counter: dict[str, int] = Field(default_factory=lambda: {"calls": 0, "in_flight": 0, "max_in_flight": 0})

    @property
    def _llm_type(self) -> str:
        return "counting-fake"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> CountingChatModel:  # type: ignore[override]
        return self

    def _reply(self, messages: Sequence[BaseMessage]) -> ChatResult:
        text = "".join(str(m.content) for m in messages)
        if "<incident_data>" in text:
            # An incident narrative (one per incident change): plain text, counted apart.
            self.counter["narratives"] = self.counter.get("narratives", 0) + 1
            pods = sorted(set(re.findall(r"pod/[\w.-]+/([\w.-]+)", text)))[:1]
            story = (
                f"Pod {pods[0] if pods else 'this pod'} raised several rules within minutes; the steps follow "
                "each other in time, so treat them as one intrusion attempt until its owner explains them."
            )
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=story))])
        match = _RULE.search(text)
        rule = match.group(1) if match else "unknown rule"
        cited = _EVIDENCE.search(text)
        message = AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "LLMAnswer",
                    "args": fake_answer(rule, cited.group(1) if cited else ""),
                    "id": "call-1",
                }
            ],
            usage_metadata={"input_tokens": 1500, "output_tokens": 300, "total_tokens": 1800},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.counter["calls"] += 1
        time.sleep(self.delay)
        return self._reply(messages)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.counter["calls"] += 1
        self.counter["in_flight"] += 1
        self.counter["max_in_flight"] = max(self.counter["max_in_flight"], self.counter["in_flight"])
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.counter["in_flight"] -= 1
        return self._reply(messages)


def metric_total(name: str) -> float:
    """Sum of a counter's samples over all labels, from this process's registry."""
    total = 0.0
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if sample.name == f"{name}_total":
                total += sample.value
    return total


class InProcessOperator:
    """``runtime.run_operator`` with the receiver embedded, in a thread, stopped by a flag."""

    def __init__(
        self,
        kubeconfig: str,
        namespace: str,
        port: int,
        *,
        delay: float = 0.5,
        config: LLMConfig | None = None,
    ) -> None:
        self.config = config or LLMConfig(
            provider="openai-compatible", model="counting-fake", base_url="http://127.0.0.1:9/v1"
        )
        self.model = CountingChatModel(delay=delay)
        kb = load()
        self.writer = LLMWriter(self.config, kb, model=self.model)
        # As runtime.report_service builds it, with the fake model injected.
        service = ReportService(
            kb,
            self.writer,
            timeout=2 * self.config.timeout_s + 30,
            manifest_check=ManifestDryRun(connect(kubeconfig)),
            redact=self.config.redact,
        )
        self.settings = runtime.RunSettings(
            kubeconfig=kubeconfig,
            namespaces=(namespace,),
            fallback_namespace=namespace,
            receiver=ReceiverSettings(host="127.0.0.1", port=port),
            flush_interval=2.0,
            llm=self.config,
        )
        self.url = f"http://127.0.0.1:{port}"
        self._service = service
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="in-process-operator", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(runtime.run_operator(self.settings, service=self._service, stop_flag=self._stop))  # type: ignore[arg-type]
        except BaseException as exc:
            self.error = exc

    def start(self, timeout: float = 30.0) -> InProcessOperator:
        self._thread.start()

        def healthy() -> bool:
            if not self._thread.is_alive():
                raise RuntimeError(f"in-process operator exited: {self.error!r}")
            return probe(f"{self.url}/healthz")

        wait_for(healthy, timeout=timeout, interval=0.1, what="in-process operator /healthz")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
