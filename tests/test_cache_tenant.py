"""The LLM answer cache is scoped to the tenant: an answer about one namespace's pod is never reused for another's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from falco_reporter.knowledge.base import KnowledgeBase, load
from falco_reporter.models.enrichment import ContainerInfo, Enrichment, WorkloadRef
from falco_reporter.models.falco import FalcoAlertSpec, normalise, parse_alert_body
from falco_reporter.models.report import AlertReportSpec, Occurrences
from falco_reporter.reporting.cache import answer_key
from falco_reporter.reporting.chain import LLMWriter
from falco_reporter.reporting.service import ReportService
from tests.samples import REAL_DIR
from tests.test_chain import SHELL_SAMPLE, ToolCallingFake, config, good_answer, tool_reply


class SubjectNamingFake(ToolCallingFake):
    """Counts calls and answers like a real model would: naming the pod and namespace it was shown."""

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.prompts.append(list(messages))
        human = str(messages[-1].content)
        fields = json.loads(human.split("<alert_data>", 1)[1].split("</alert_data>", 1)[0])["fields"]
        pod, namespace = fields["k8s.pod.name"], fields["k8s.ns.name"]
        answer = good_answer(
            summary=f"An interactive shell ran in pod {pod} of namespace {namespace}.",
            analysis=f"**What happened.** Someone opened `sh` in {pod} ({namespace}); the team owning {namespace} should check.",
            verdict_reason=f"An interactive root shell in {pod} of {namespace}.",
        )
        return ChatResult(generations=[ChatGeneration(message=tool_reply(answer))])


def alert_in(namespace: str, pod: str) -> FalcoAlertSpec:
    """The real shell alert, placed in ``namespace``/``pod`` (rule, image and command line unchanged)."""
    payload = parse_alert_body((REAL_DIR / SHELL_SAMPLE).read_bytes())
    payload["output_fields"].update({"k8s.ns.name": namespace, "k8s.pod.name": pod})
    payload["output"] = payload["output"].replace(
        "k8s_pod_name=<NA> k8s_ns_name=<NA>", f"k8s_pod_name={pod} k8s_ns_name={namespace}"
    )
    return normalise(payload)


def found(namespace: str, pod: str, workload: str) -> Enrichment:
    return Enrichment(
        scope="kubernetes",
        pod_found=True,
        namespace=namespace,
        pod=pod,
        container=ContainerInfo(name="lab9-helper", image="alpine:3.19"),
        workload=WorkloadRef(kind="Deployment", name=workload),
    )


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load()


async def _report(service: ReportService, alert: FalcoAlertSpec, enrichment: Enrichment) -> AlertReportSpec:
    ctx = service.context(
        alert, enrichment, name="shell", namespace=alert.subject.namespace, occurrences=Occurrences()
    )
    return await service.write(ctx)


async def test_no_report_names_another_namespaces_objects(kb: KnowledgeBase) -> None:
    """Two alerts identical except namespace and pod each get their own model answer, naming only their own objects."""
    model = SubjectNamingFake(responses=[tool_reply(good_answer())])
    writer = LLMWriter(config(), kb, model=model)
    service = ReportService(kb, writer)

    shop = await _report(service, alert_in("shop", "web-7d9f-abcde"), found("shop", "web-7d9f-abcde", "web"))
    payments = await _report(
        service, alert_in("payments", "web-55c6-xyz12"), found("payments", "web-55c6-xyz12", "web")
    )

    assert len(model.prompts) == 2  # the second alert was not answered from the first one's cache entry
    assert (shop.writer.backend, payments.writer.backend) == ("ollama", "ollama")
    assert payments.writer.cache_hit is False
    shop_text = shop.model_dump_json(by_alias=True)
    payments_text = payments.model_dump_json(by_alias=True)
    assert "web-7d9f-abcde" in shop.summary and "web-55c6-xyz12" in payments.summary
    for other in ("payments", "web-55c6-xyz12"):
        assert other not in shop_text
    for other in ("shop", "web-7d9f-abcde"):
        assert other not in payments_text


async def test_replicas_of_one_workload_still_share_an_answer(kb: KnowledgeBase) -> None:
    """A second pod of the same Deployment in the same namespace is a cache hit (one model call for a replica storm)."""
    model = SubjectNamingFake(responses=[tool_reply(good_answer())])
    service = ReportService(kb, LLMWriter(config(), kb, model=model))
    first = await _report(service, alert_in("shop", "web-7d9f-aaaaa"), found("shop", "web-7d9f-aaaaa", "web"))
    second = await _report(
        service, alert_in("shop", "web-7d9f-bbbbb"), found("shop", "web-7d9f-bbbbb", "web")
    )
    other = await _report(service, alert_in("shop", "api-6c4d-ccccc"), found("shop", "api-6c4d-ccccc", "api"))
    assert (first.writer.cache_hit, second.writer.cache_hit, other.writer.cache_hit) == (False, True, False)
    assert len(model.prompts) == 2
    assert second.subject.pod == "web-7d9f-bbbbb"  # the subject section always comes from the alert itself


def test_key_differs_by_namespace_and_workload_only() -> None:
    """The cache key changes with the namespace or the workload (or the pod, without enrichment), not with a replica's pod."""

    def key(namespace: str, pod: str, enrichment: Enrichment | None) -> str:
        alert = alert_in(namespace, pod)
        return answer_key(
            alert, knowledge_version="k", provider="p", model="m", prompt_version="v", enrichment=enrichment
        ).digest

    base = key("shop", "web-1", found("shop", "web-1", "web"))
    assert key("shop", "web-2", found("shop", "web-2", "web")) == base
    assert key("payments", "web-1", found("payments", "web-1", "web")) != base
    assert key("shop", "web-1", found("shop", "web-1", "web-canary")) != base
    assert key("shop", "web-1", None) != key("shop", "web-2", None)
