"""Faults: nothing acknowledged is ever lost.

* the operator is killed (SIGKILL) in the middle of a burst and restarted;
* the API server is down for 10 s during a burst (its own LocalCluster, killed and restarted);
* the LLM endpoint is down, slow, rate-limited or answers garbage;
* two operator replicas with kopf peering: only one works, the other takes over when it dies.

Every 202 must name a stored FalcoAlert; a request to a dead process fails with a connection
error, which is not an acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from kubernetes import client, config
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from devcluster.cluster import LocalCluster, apply_crds
from devcluster.reporter import scrape
from falco_reporter import runtime
from falco_reporter.knowledge.base import load
from falco_reporter.receiver.http import ReceiverSettings
from falco_reporter.reporting.chain import LLMWriter
from falco_reporter.reporting.llm_config import LLMConfig
from falco_reporter.reporting.service import ReportService
from tests.objects import alert_for, get, listed, names
from tests.operator_proc import FalcoReporterProcess, free_port, post, probe, wait_for

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parent.parent


# --- helpers ---------------------------------------------------------------------------------


def get_json(url: str, timeout: float = 2) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def reports_written(url: str) -> float:
    metrics = scrape(f"{url}/metrics", timeout=5)
    return sum(v for k, v in metrics.items() if k.startswith("falco_reporter_reports_written_total"))


class Sender:
    """Concurrent keep-alive senders; each alert is tried on ``urls()`` in order until one answers.

    Records the final answer as (index, sent_at, answered_at, status, body). A connection error or
    a 503 is never an acknowledgement; the next URL (a second receiver) is tried instead.
    """

    def __init__(
        self,
        payloads: list[bytes],
        urls: Callable[[], list[str]],
        *,
        senders: int = 6,
        pause: float = 0.0,
        deadline: float = 120.0,
    ) -> None:
        self.payloads, self.urls, self.senders, self.pause = payloads, urls, senders, pause
        self.deadline = time.monotonic() + deadline
        self.answers: list[tuple[int, float, float, int, dict[str, Any]]] = []
        self.errors: Counter[str] = Counter()
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(senders)]

    def start(self) -> Sender:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Send nothing new; requests under way finish (then :meth:`join`)."""
        with self._lock:
            self.deadline = 0.0

    def join(self, timeout: float = 150) -> None:
        for t in self._threads:
            t.join(max(0.1, timeout))
        assert not any(t.is_alive() for t in self._threads), "senders did not finish in time"

    @property
    def acked(self) -> list[dict[str, Any]]:
        with self._lock:
            return [body for *_, status, body in self.answers if status == 202]

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.payloads) or time.monotonic() > self.deadline:
                return None
            self._next += 1
            return self._next - 1

    def _run(self) -> None:
        conns: dict[str, http.client.HTTPConnection] = {}
        while (i := self._take()) is not None:
            urls = self.urls()
            for n, url in enumerate(urls):
                host, port = url.removeprefix("http://").split(":")
                conn = conns.get(url) or http.client.HTTPConnection(host, int(port), timeout=15)
                conns[url] = conn
                sent = time.monotonic()
                try:
                    conn.request("POST", "/v1/alerts", self.payloads[i], {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    raw = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conns.pop(url, None)
                    with self._lock:
                        self.errors[type(exc).__name__] += 1
                    continue  # not acknowledged: try the next receiver
                if resp.status == 503 and n < len(urls) - 1:  # not stored there: the next receiver may
                    with self._lock:
                        self.errors["503"] += 1
                    continue
                with self._lock:
                    self.answers.append((i, sent, time.monotonic(), resp.status, json.loads(raw or b"{}")))
                break
            if self.pause:
                time.sleep(self.pause)
        for conn in conns.values():
            conn.close()


def payloads(namespace: str, prefix: str, count: int) -> list[bytes]:
    return [json.dumps(alert_for(namespace, f"{prefix}-{i}")).encode() for i in range(count)]


def reported(alert: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Reported" and c.get("status") == "True"
        for c in (alert.get("status") or {}).get("conditions", [])
    )


# --- 1. operator killed mid-burst ----------------------------------------------------------------


def test_operator_killed_mid_burst_loses_nothing(cluster, kube_api, namespace, tmp_path):
    """kill -9 of `run` during 2,000 new alerts from 6 senders; a second receiver takes what the dead
    one cannot; after a restart every FalcoAlert has exactly one AlertReport and every 202 is stored."""
    scope = ["--namespace", namespace, "--fallback-namespace", namespace]
    operator = FalcoReporterProcess(str(cluster.kubeconfig), extra=scope, log_dir=tmp_path).start()
    backup = FalcoReporterProcess(
        str(cluster.kubeconfig), mode="receiver", extra=scope, log_dir=tmp_path
    ).start()
    restarted: FalcoReporterProcess | None = None
    try:
        sender = Sender(payloads(namespace, "burst", 2000), lambda: [operator.url, backup.url]).start()
        wait_for(lambda: len(sender.acked) >= 400, timeout=60, interval=0.02, what="400 acknowledgements")
        operator.kill()
        killed_at = len(sender.acked)
        time.sleep(1)
        restarted = FalcoReporterProcess(
            str(cluster.kubeconfig), extra=scope, log_dir=tmp_path, port=operator.port
        ).start()
        sender.join(150)
        acked = {(b["namespace"], b["name"]) for b in sender.acked}
        assert killed_at < 2000, "the kill did not happen mid-burst"
        assert sender.errors, "no request ever hit the dead operator"
        assert len(acked) == 2000, (
            f"every alert is acknowledged by one receiver ({len(acked)}, {sender.errors})"
        )
        assert {ns for ns, _ in acked} == {namespace}
        stored = names(kube_api, "falcoalerts", namespace)
        assert {name for _, name in acked} == stored  # every 202 is stored, and nothing else is
        wait_for(
            lambda: len(names(kube_api, "alertreports", namespace)) >= len(stored),
            timeout=150,
            interval=1,
            what="one report per alert",
        )
        wait_for(
            lambda: all(reported(a) for a in listed(kube_api, "falcoalerts", namespace)),
            timeout=60,
            interval=1,
            what="every alert Reported",
        )
        alerts = listed(kube_api, "falcoalerts", namespace)
        reports = listed(kube_api, "alertreports", namespace)
        assert sorted(r["metadata"]["name"] for r in reports) == sorted(stored)
        by_name = {a["metadata"]["name"]: a for a in alerts}
        for report in reports:
            alert = by_name[report["metadata"]["name"]]
            assert report["metadata"]["ownerReferences"][0]["uid"] == alert["metadata"]["uid"]
            assert alert["status"]["reportRef"]["name"] == report["metadata"]["name"]
    finally:
        for proc in (restarted, backup, operator):
            if proc is not None:
                proc.stop()


# --- a private control plane for the outage and peering tests ---------------------------------


@pytest.fixture
def private_cluster() -> Iterator[LocalCluster]:
    """A control plane of its own (about 3 s): the test kills its API server or runs cluster-wide operators."""
    with LocalCluster() as local:
        apply_crds(local.kubeconfig, ROOT / "crds")
        api = config.new_client_from_config(config_file=str(local.kubeconfig))
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "falco-reporter"}})
        api.close()
        yield local


# --- 2. API server down for 10 s ----------------------------------------------------------------


def test_api_server_down_for_10s_answers_503_and_recovers(private_cluster, tmp_path):
    """During a burst the API server is killed for 10 s: new alerts get 503 (never 202) while it is
    down, the receiver recovers by itself, every 202 is stored, and repeats counted meanwhile are
    flushed once it is back."""
    kubeconfig = str(private_cluster.kubeconfig)
    api = config.new_client_from_config(config_file=kubeconfig)
    ns = "outage"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    receiver = FalcoReporterProcess(
        kubeconfig, mode="receiver", log_dir=tmp_path, extra=["--request-timeout", "3"]
    ).start()
    try:
        repeat = json.dumps(alert_for(ns, "repeat-pod")).encode()

        # Set-up, not the subject: on a loaded machine the very first create may exceed the 3 s limit.
        def stored_first() -> dict[str, Any] | None:
            status, body = post(receiver.url, repeat)
            return body if status == 202 else None

        first = wait_for(stored_first, timeout=60, what="the first alert stored")
        assert first["created"] or get(api, "falcoalerts", ns, first["name"]) is not None
        # New alerts, with a repeat of a stored one every 4th request; 4 senders, paced.
        bodies = [repeat if i % 4 == 3 else json.dumps(alert_for(ns, f"o-{i}")).encode() for i in range(8000)]
        sender = Sender(bodies, lambda: [receiver.url], senders=4, pause=0.02, deadline=26).start()
        time.sleep(4)
        down_at = time.monotonic()
        private_cluster.stop_apiserver()
        not_ready = False
        while time.monotonic() - down_at < 10:
            not_ready |= get_json(f"{receiver.url}/readyz")[0] == 503
            assert get_json(f"{receiver.url}/healthz")[0] == 200
            time.sleep(0.5)
        restart_at = time.monotonic()  # the API server may serve before start_apiserver() returns
        private_cluster.start_apiserver()
        up_at = time.monotonic()
        sender.join(60)
        assert receiver.proc is not None and receiver.proc.poll() is None, "the receiver died"

        answers = sender.answers
        new = [(sent, done, status, body) for i, sent, done, status, body in answers if i % 4 != 3]
        during = [status for sent, done, status, _ in new if sent > down_at + 0.5 and done < restart_at]
        assert during, "no new alert was sent while the API server was down"
        assert set(during) == {503}, f"answers for new alerts during the outage: {Counter(during)}"
        errors = {body.get("error") for _, _, status, body in new if status == 503}
        assert errors <= {"api_unavailable", "timeout", "api_error"}, errors
        assert not_ready, "/readyz never reported the outage"
        after = [status for sent, _, status, _ in new if sent > up_at + 5]
        assert after and after[-20:] == [202] * len(after[-20:]), "the receiver did not recover by itself"
        wait_for(lambda: get_json(f"{receiver.url}/readyz")[0] == 200, timeout=15, what="ready again")

        stored = names(api, "falcoalerts", ns)
        acked_new = {body["name"] for _, _, status, body in new if status == 202}
        assert acked_new <= stored, f"{len(acked_new - stored)} acknowledged alerts are not stored"
        # Repeats acknowledged during the outage were kept in memory and flushed after it.
        repeats_acked = 1 + sum(1 for i, *_, status, _ in answers if i % 4 == 3 and status == 202)
        wait_for(
            lambda: (
                (
                    (get(api, "falcoalerts", ns, first["name"]) or {})
                    .get("status", {})
                    .get("occurrences", {})
                    .get("count")
                )
                == repeats_acked
            ),
            timeout=20,
            what=f"repeat count {repeats_acked} flushed",
        )
    finally:
        receiver.stop()
        api.close()


# --- 3. the LLM endpoint misbehaves ------------------------------------------------------------


class RateLimitError(Exception):
    """What an OpenAI-compatible client raises for HTTP 429."""


class HttpChatModel(BaseChatModel):
    """A minimal OpenAI-compatible chat client over aiohttp: no SDK retries, so each fault maps to one request
    (ChatOpenAI against a real server: tests/test_openai_compat_real.py)."""

    base_url: str

    @property
    def _llm_type(self) -> str:
        return "http-openai-compatible"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        raise NotImplementedError("async only")

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        payload = {"model": "fake", "messages": [{"role": m.type, "content": m.content} for m in messages]}
        async with (
            ClientSession() as session,
            session.post(f"{self.base_url}/chat/completions", json=payload) as resp,
        ):
            text = await resp.text()
            if resp.status == 429:
                raise RateLimitError(f"Error code: 429 - {text}")
            if resp.status >= 400:
                raise RuntimeError(f"Error code: {resp.status} - {text}")
        content = json.loads(text)["choices"][0]["message"]["content"]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=content))])


def good_answer(rule: str) -> str:
    return json.dumps(
        {
            "summary": f"The rule {rule} fired: a shell (bash) started in a container.",
            "analysis": "**What happened.** bash ran with a terminal attached, so a person typed commands in "
            "the container. **Check first** who opened the session and what it ran.",
            "severity": "medium",
            "verdict": "suspicious",
            "verdict_reason": "An interactive shell in a workload container.",
            "false_positive_hints": [],
            "mitigations": [],
            "references": [],
        }
    )


class FakeLLMServer:
    """An OpenAI-compatible endpoint on loopback whose behaviour the test switches: ok, slow, 429, garbage."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.port = free_port()
        self.calls: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls[self.mode] += 1
        if self.mode == "slow":  # far beyond the writer's timeout; the client gives up first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), 20)
        if self.mode == "429":
            return web.json_response(
                {"error": {"message": "Rate limit reached for requests", "type": "rate_limit_error"}},
                status=429,
            )
        prompt = body["messages"][-1]["content"]
        rule = prompt.split('"rule": "', 1)[1].split('"', 1)[0] if '"rule": "' in prompt else "unknown"
        content = (
            "<html>503 upstream hiccup</html> not a report" if self.mode == "garbage" else good_answer(rule)
        )
        return web.json_response(
            {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._released.set)
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class InProcessOperator:
    """runtime.run_operator with an injected LLM writer, in a thread, stopped by a flag."""

    def __init__(self, settings: runtime.RunSettings, service: ReportService) -> None:
        self.settings, self.service = settings, service
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        assert settings.receiver is not None
        self.url = f"http://127.0.0.1:{settings.receiver.port}"

    def _run(self) -> None:
        asyncio.run(runtime.run_operator(self.settings, service=self.service, stop_flag=self.stop_flag))  # type: ignore[arg-type]

    def __enter__(self) -> InProcessOperator:
        self.thread.start()
        try:
            wait_for(
                lambda: _alive(self.url) or not self.thread.is_alive(),
                timeout=30,
                what="in-process operator healthy",
            )
            assert self.thread.is_alive(), "the in-process operator exited"
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        self.thread.join(30)


def test_llm_endpoint_down_slow_rate_limited_or_garbage_falls_back_to_builtin(cluster, kube_api, namespace):
    """Each LLM failure still yields a report, by the built-in writer with writer.fallbackReason set,
    and the operator's event loop keeps answering /healthz within 1 s while the model hangs."""
    with FakeLLMServer() as llm:
        base_url = f"http://127.0.0.1:{llm.port}/v1"
        config_ = LLMConfig(
            provider="openai-compatible",
            model="fake",
            base_url=base_url,
            timeout_s=2,
            calls_per_hour=0,
            cache_size=0,
        )
        model = HttpChatModel(base_url=base_url)
        kb = load()
        service = ReportService(kb, LLMWriter(config_, kb, model=model), timeout=2 * config_.timeout_s + 30)
        settings = runtime.RunSettings(
            kubeconfig=str(cluster.kubeconfig),
            namespaces=(namespace,),
            fallback_namespace=namespace,
            flush_interval=0.5,
            llm=config_,
            receiver=ReceiverSettings(host="127.0.0.1", port=free_port()),
        )
        with InProcessOperator(settings, service) as operator:

            def report_for(pod: str, *, watch_health: bool = False) -> tuple[dict[str, Any], float]:
                status, answer = post(
                    operator.url, alert_for(namespace, pod, **{"proc.cmdline": f"bash -c {pod}"})
                )
                assert status == 202, answer
                slowest = 0.0
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline:
                    if watch_health:
                        started = time.monotonic()
                        assert get_json(f"{operator.url}/healthz", timeout=5)[0] == 200
                        slowest = max(slowest, time.monotonic() - started)
                    report = get(kube_api, "alertreports", namespace, answer["name"])
                    if report is not None:
                        return report["spec"]["writer"], slowest
                    time.sleep(0.2)
                raise AssertionError(f"no report for {pod}")

            writer, _ = report_for("llm-ok")
            assert writer["backend"] == "openai-compatible" and not writer.get("fallbackReason"), writer

            llm.mode = "slow"
            writer, slowest = report_for("llm-slow", watch_health=True)
            assert writer["backend"] == "builtin" and "timed out after 2s" in writer["fallbackReason"], writer
            assert slowest < 1.0, f"/healthz took {slowest:.2f}s while the model hung"

            llm.mode = "429"
            writer, _ = report_for("llm-429")
            assert writer["backend"] == "builtin", writer
            assert "RateLimitError" in writer["fallbackReason"] and "429" in writer["fallbackReason"]

            llm.mode = "garbage"
            writer, _ = report_for("llm-garbage")
            assert writer["backend"] == "builtin", writer
            assert "rejected 2 times" in writer["fallbackReason"], writer

            # Down: nothing listens on the model's port any more (connection refused).
            model.base_url = f"http://127.0.0.1:{free_port()}/v1"
            writer, _ = report_for("llm-down", watch_health=True)
            assert writer["backend"] == "builtin", writer
            assert "ClientConnectorError" in writer["fallbackReason"], writer
            assert llm.calls["slow"] >= 1 and llm.calls["429"] == 1 and llm.calls["garbage"] == 2


# --- 4. two replicas with kopf peering -----------------------------------------------------------


def test_two_replicas_with_peering_one_works_the_other_takes_over(private_cluster, tmp_path):
    """Replicas peered through a ClusterKopfPeering: the higher priority one writes every report, the
    other stays paused; after a kill -9 of the first, the second takes over within seconds."""
    kubeconfig = str(private_cluster.kubeconfig)
    kubectl = str(private_cluster.kubectl)
    # kopf's peering CRDs as the chart ships them, and the ClusterKopfPeering object.
    subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            kubeconfig,
            "apply",
            "--server-side",
            "-f",
            str(ROOT / "helm" / "falco-reporter" / "crds" / "kopf-peerings.yaml"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            kubeconfig,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/clusterkopfpeerings.kopf.dev",
        ],
        check=True,
        capture_output=True,
        timeout=70,
    )
    api = config.new_client_from_config(config_file=kubeconfig)
    client.CustomObjectsApi(api).create_cluster_custom_object(
        "kopf.dev",
        "v1",
        "clusterkopfpeerings",
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": "falco-reporter-test"},
        },
    )
    ns = "peering"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})

    def replica(priority: int) -> tuple[FalcoReporterProcess, str]:
        health = free_port()
        proc = FalcoReporterProcess(
            kubeconfig,
            log_dir=tmp_path,
            extra=[
                "--no-receiver",
                "--peering",
                "falco-reporter-test",
                "--peering-priority",
                str(priority),
                "--peering-lifetime",
                "4",
                "--health-bind",
                f"127.0.0.1:{health}",
            ],
        ).start(wait=False)
        url = f"http://127.0.0.1:{health}"
        wait_for(lambda: _alive(url), timeout=30, what=f"replica {priority} healthy")
        return proc, url

    receiver = FalcoReporterProcess(kubeconfig, mode="receiver", log_dir=tmp_path).start()
    first, first_url = replica(100)
    second, second_url = replica(50)
    try:
        # Both start paused (mandatory peering). The first resumes once it sees no higher peer; the
        # peering object listing both proves the second has registered, and it stays paused.
        def peers() -> int:
            obj = client.CustomObjectsApi(api).get_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", "falco-reporter-test"
            )
            return len(obj.get("status") or {})

        wait_for(
            lambda: "Resuming operations after the pause" in first.log_path.read_text() and peers() == 2,
            timeout=60,
            what="the first replica active and both registered in the peering object",
        )
        batch1 = [post(receiver.url, alert_for(ns, f"p1-{i}"))[1]["name"] for i in range(10)]
        wait_for(
            lambda: set(batch1) <= names(api, "alertreports", ns), timeout=60, what="first batch reported"
        )
        # The counter moves just after the create returns, so wait for it rather than read it once.
        wait_for(lambda: reports_written(first_url) == 10, timeout=30, what="first replica counted 10")
        assert reports_written(second_url) == 0, "the paused replica wrote reports"
        assert (
            "Resuming operations" not in second.log_path.read_text()
        )  # kopf starts mandatory peering paused

        first.kill()
        killed = time.monotonic()
        batch2 = [post(receiver.url, alert_for(ns, f"p2-{i}"))[1]["name"] for i in range(10)]
        wait_for(
            lambda: set(batch2) <= names(api, "alertreports", ns),
            timeout=60,
            interval=0.25,
            what="second batch reported by the survivor",
        )
        handover = time.monotonic() - killed
        wait_for(
            lambda: reports_written(second_url) >= 10,
            timeout=30,
            what=f"survivor counted its reports (hand-over took {handover:.1f}s)",
        )
        assert reports_written(second_url) == 10, "the survivor rewrote reports the first had written"
        assert "Resuming operations after the pause" in second.log_path.read_text()
        wait_for(
            lambda: names(api, "alertreports", ns) == names(api, "falcoalerts", ns),
            timeout=30,
            what="one report per alert",
        )
    finally:
        for proc in (second, first, receiver):
            proc.stop()
        api.close()


def _alive(url: str) -> bool:
    return probe(f"{url}/healthz")
