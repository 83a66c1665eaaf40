"""An incident's narrative: told once per incident change by the model, shared by its reports, scoped to its tenant."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from falco_reporter.knowledge.base import KnowledgeBase, load
from falco_reporter.models.report import Incident, TimelineEntry
from falco_reporter.models.resources import LABEL_INCIDENT
from falco_reporter.reconciler.incidents import IncidentTracker
from falco_reporter.reporting import markdown
from falco_reporter.reporting.chain import LLMWriter
from falco_reporter.reporting.incidents import judge_incident, tell
from falco_reporter.reporting.sense import check_narrative
from falco_reporter.reporting.service import ReportService
from tests.test_chain import ToolCallingFake, config
from tests.test_incidents import FakeReports, _report

RULES = (
    ("Terminal shell in container", "Execution"),
    ("Read sensitive file untrusted", "Credential Access"),
    ("Drop and execute new binary in container", "Persistence"),
)


class NarratingFake(ToolCallingFake):
    """Counts calls and tells the incident it was shown, naming its namespace and subject like a real model."""

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.prompts.append(list(messages))
        human = str(messages[-1].content)
        data = json.loads(human.split("<incident_data>", 1)[1].split("</incident_data>", 1)[0])
        rules = [e["rule"] for e in data["timeline"]]
        text = (
            f"In namespace {data['namespace']}, {data['subject']} raised {len(rules)} alerts in a row, "
            f"starting with {rules[0]} and ending with {rules[-1]}. The order suggests someone working "
            f"inside the workload by hand, which is why the incident is {data['verdict']}. Check first "
            "who opened the session and what the later steps changed."
        )
        message = AIMessage(
            content=text, usage_metadata={"input_tokens": 400, "output_tokens": 80, "total_tokens": 480}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load()


def narrating(kb: KnowledgeBase, delay: float = 0.0) -> tuple[ReportService, NarratingFake]:
    fake = NarratingFake(responses=[AIMessage(content="")], delay=delay)
    return ReportService(kb, LLMWriter(config(), kb, model=fake), timeout=30.0), fake


def incident(subject: str, alerts: int = 2, incident_id: str = "inc-0123456789abcdef") -> Incident:
    members = [
        (
            TimelineEntry(
                time=f"2026-11-20T09:0{i}:00Z", rule=rule, priority="Warning", tactic=tactic, alert=f"a{i}",
                line=f"{rule}: step {i}", verdict="suspicious",
            ),
            "medium",
        )
        for i, (rule, tactic) in enumerate(RULES[:alerts])
    ]  # fmt: skip
    return judge_incident(incident_id, subject, "2026-11-20T09:00:00Z", members)  # type: ignore[arg-type]


async def _burst(
    tracker: IncidentTracker, fake_reports: FakeReports, namespace: str, pod: str, n: int
) -> None:
    """``n`` alerts of one pod join its incident, a few at a time, as a burst would arrive."""
    for i in range(n):
        name = f"{pod}-{i:03d}"
        rule, tactic = RULES[i % 3]
        report = _report(rule, tactic, f"2026-11-20T09:{10 + i // 60:02d}:{i % 60:02d}Z")
        joined = await tracker.join(namespace, f"pod/{namespace}/{pod}", name, report)
        spec = report.model_copy(update={"incident": joined}).model_dump(by_alias=True, mode="json")
        fake_reports.items[name] = {
            "metadata": {"name": name, "labels": {LABEL_INCIDENT: joined.id}},
            "spec": spec,
        }
        if i % 5 == 4:
            await asyncio.sleep(0.02)  # the burst arrives over time, so some changes land mid-refresh


async def _settled(tracker: IncidentTracker) -> None:
    while pending := [t for t in tracker._pending.values() if not t.done()]:
        await asyncio.gather(*pending)


async def test_a_burst_into_one_incident_costs_one_narrative_per_coalesced_change(kb: KnowledgeBase) -> None:
    """40 alerts into one incident cost at most one model call per coalesced refresh, and every report ends with the same story."""
    service, fake = narrating(kb, delay=0.05)
    reports = FakeReports()
    tracker = IncidentTracker(reports, window=1800, settle=0.05, narrator=service)  # type: ignore[arg-type]
    refreshes = 0
    refresh = tracker.refresh

    async def counted(key: Any, *, narrate: bool = True) -> int:
        nonlocal refreshes
        refreshes += 1
        return await refresh(key, narrate=narrate)

    tracker.refresh = counted  # type: ignore[method-assign]
    await _burst(tracker, reports, "shop", "web-1", 40)
    await _settled(tracker)
    calls = len(fake.prompts)
    assert 1 <= calls <= refreshes < 40, (calls, refreshes)
    # The count alone is not material (members are not re-patched for it); the story and judgement are.
    told = {
        tuple(i["spec"]["incident"][k] for k in ("narrative", "narrativeBy", "verdict", "severity"))
        for i in reports.items.values()
    }
    assert len(told) == 1, told
    final = reports.items["web-1-039"]["spec"]["incident"]
    assert final["narrativeBy"] == "ollama" and "namespace shop" in final["narrative"]
    # The same incident state again is a cache hit, not a call.
    again = await service.narrate("shop", Incident.model_validate(final))
    assert again.narrative == final["narrative"] and len(fake.prompts) == calls


async def test_two_incidents_never_share_a_narrative(kb: KnowledgeBase) -> None:
    """Two pods with identical timelines get one narrative each, each naming only its own pod."""
    service, fake = narrating(kb)
    reports = FakeReports()
    tracker = IncidentTracker(reports, window=1800, settle=0.01, narrator=service)  # type: ignore[arg-type]
    await _burst(tracker, reports, "shop", "web-1", 3)
    await _burst(tracker, reports, "shop", "web-2", 3)
    await _settled(tracker)
    stories = {
        pod: {i["spec"]["incident"]["narrative"] for n, i in reports.items.items() if n.startswith(pod)}
        for pod in ("web-1", "web-2")
    }
    assert all(len(s) == 1 for s in stories.values()), stories
    one, two = stories["web-1"].pop(), stories["web-2"].pop()
    assert "web-1" in one and "web-2" not in one
    assert "web-2" in two and "web-1" not in two
    assert len(fake.prompts) == 2


async def test_a_cached_narrative_is_never_used_for_another_namespace(kb: KnowledgeBase) -> None:
    """The same incident id and timeline in two namespaces cost two calls; neither story names the other namespace."""
    service, fake = narrating(kb)
    host = incident("host/worker-1")  # a host's incident id is the same whichever namespace holds the reports
    first = await service.narrate("team-a", host)
    assert first.narrative_by == "ollama" and "team-a" in first.narrative
    assert service.told("team-a", host).narrative == first.narrative
    # Before team-b's own call, team-b sees the built-in story, never team-a's.
    assert service.told("team-b", host).narrative == tell(host)
    second = await service.narrate("team-b", host)
    assert "team-b" in second.narrative and "team-a" not in second.narrative
    assert len(fake.prompts) == 2


async def test_a_one_alert_incident_and_a_failed_narrative_keep_the_built_in_story(kb: KnowledgeBase) -> None:
    """One alert is told by its report (no call); an answer failing the checks leaves the built-in narrative."""
    service, fake = narrating(kb)
    single = incident("pod/shop/web-1", alerts=1)
    assert (await service.narrate("shop", single)).narrative_by == "builtin"
    assert fake.prompts == []
    bad = ToolCallingFake(responses=[AIMessage(content="} { empty")])
    failing = ReportService(kb, LLMWriter(config(), kb, model=bad), timeout=30.0)
    pair = incident("pod/shop/web-1")
    told = await failing.narrate("shop", pair)
    assert told.narrative == tell(pair) and told.narrative_by == "builtin"


def test_the_built_in_writer_tells_the_timeline_deterministically() -> None:
    """The built-in narrative lists the rules in time order with their tactics and the incident's judgement."""
    three = incident("pod/shop/web-1", alerts=3)
    text = tell(three)
    assert text == tell(incident("pod/shop/web-1", alerts=3))
    positions = [text.index(rule) for rule, _ in RULES]
    assert positions == sorted(positions)
    assert "(Credential Access)" in text and three.verdict in text and "pod/shop/web-1" in text
    assert three.narrative == text and three.narrative_by == "builtin"


def test_narrative_checks_reject_degenerate_and_ungrounded_text() -> None:
    """Placeholders, JSON debris, unknown paths and text naming nothing of the incident are problems."""
    known = json.dumps(
        {"namespace": "shop", "timeline": [{"rule": "Terminal shell in container", "what": "bash"}]}
    )
    anchors = ["Terminal shell in container", "shop"]

    def problems(text: str) -> list[str]:
        return check_narrative(text, known=known, anchors=anchors, instructions="Tell it in one paragraph.")

    good = (
        "In namespace shop a Terminal shell in container alert opened the incident; the shell ran bash "
        "interactively, which is why the responder should check who started it."
    )
    assert problems(good) == []
    assert any("placeholder" in p for p in problems("N/A"))
    assert any("JSON" in p for p in problems('{"narrative": "x"} ' + good))
    assert any("/opt/evil" in p for p in problems(good + " It then wrote /opt/evil/payload."))
    assert any(
        "names nothing" in p
        for p in problems(
            "Something happened somewhere in the cluster and it might matter a lot to somebody today."
        )
    )


def test_markdown_shows_the_models_story_above_the_timeline() -> None:
    """A report's incident section carries the model's narrative; the built-in one is the timeline itself."""
    spec = _report("Terminal shell in container", "Execution", "2026-11-20T09:00:00Z")
    told = incident("pod/shop/web-1").model_copy(
        update={"narrative": "A told story.", "narrative_by": "ollama"}
    )
    assert "A told story." in markdown.render(spec.model_copy(update={"incident": told}))
    assert tell(told) not in markdown.render(spec.model_copy(update={"incident": incident("pod/shop/web-1")}))
