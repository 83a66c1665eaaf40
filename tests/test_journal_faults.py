"""Faults with the receiver's journal, on the real control plane: nothing acknowledged is lost,
nothing is stored twice.

* the API server is stopped for 20 s during a steady stream (the bench does 60 s): every alert
  gets a 202, and all of them are stored after it returns, counted by name and occurrences;
* the receiver is killed (SIGKILL) during the stream and during the drain;
* a journal filled to its limit answers 503 and recovers;
* a journal whose last record was torn by the crash starts cleanly;
* receivers are replaced one at a time while alerts flow (a rollout), each with a fresh journal
  directory as an emptyDir gives a new pod: every 202 is stored.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from devcluster.reporter import scrape
from tests.objects import alert_for, listed
from tests.operator_proc import FalcoReporterProcess, post, wait_for
from tests.test_faults import Sender, get_json, private_cluster  # noqa: F401 - fixture

pytestmark = pytest.mark.cluster
REPEAT_EVERY = 4


def receiver(kubeconfig: str, journal: Path, tmp_path: Path, *extra: str, port: int | None = None):
    return FalcoReporterProcess(
        kubeconfig,
        mode="receiver",
        log_dir=tmp_path,
        port=port,
        extra=["--journal-dir", str(journal), "--request-timeout", "3", *extra],
    )


def depth(url: str) -> float:
    return scrape(f"{url}/metrics", timeout=5).get("falco_reporter_journal_entries", -1)


def stream(ns: str, count: int, prefix: str, repeat_span: int = 0) -> tuple[list[bytes], bytes]:
    """New alerts, with a repeat of one alert every REPEAT_EVERY-th request (``repeat_span``: a
    different alert is repeated every that many requests)."""

    def repeat(i: int) -> bytes:
        suffix = f"-{i // repeat_span}" if repeat_span else ""
        return json.dumps(alert_for(ns, f"{prefix}-repeat{suffix}")).encode()

    bodies = [
        repeat(i)
        if i % REPEAT_EVERY == REPEAT_EVERY - 1
        else json.dumps(alert_for(ns, f"{prefix}-{i}")).encode()
        for i in range(count)
    ]
    return bodies, repeat(0)


def service(live: list[FalcoReporterProcess]) -> Callable[[], list[str]]:
    """Receiver URLs round-robin like a Service over ``live`` (changed in place by a rollout); a
    refused connection tries the others."""
    turn = [0]

    def urls() -> list[str]:
        turn[0] += 1
        pods = [p.url for p in live]
        start = turn[0] % max(1, len(pods))
        return pods[start:] + pods[:start]

    return urls


def stored(api: client.ApiClient, ns: str) -> dict[str, int]:
    """Name -> occurrences of every FalcoAlert in ``ns`` (no status.occurrences: 1)."""
    return {
        o["metadata"]["name"]: int(((o.get("status") or {}).get("occurrences") or {}).get("count") or 1)
        for o in listed(api, "falcoalerts", ns)
    }


def expected(sender: Sender, bodies: list[bytes]) -> Counter[str]:
    """Name -> occurrences acknowledged (202) by the receivers."""
    counts: Counter[str] = Counter()
    for _i, _sent, _done, status, body in sender.answers:
        if status == 202:
            counts[body["name"]] += 1
    return counts


def drained(url: str, timeout: float = 90) -> None:
    wait_for(lambda: depth(url) == 0, timeout=timeout, interval=0.5, what="journal drained")


def test_api_server_down_20s_every_alert_acknowledged_and_stored(private_cluster, tmp_path):  # noqa: F811
    """A steady ~50 alerts/s while the API server is stopped for 20 s: every request gets 202 (readiness
    stays up), and after it returns every acknowledged alert is stored with exactly its occurrences."""
    kubeconfig = str(private_cluster.kubeconfig)
    api = config.new_client_from_config(config_file=kubeconfig)
    ns = "outage"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    rec = receiver(kubeconfig, tmp_path / "journal", tmp_path).start()
    try:
        bodies, _ = stream(ns, 100_000, "o")
        sender = Sender(bodies, lambda: [rec.url], senders=4, pause=0.08, deadline=32).start()
        time.sleep(4)
        down_at = time.monotonic()
        private_cluster.stop_apiserver()
        not_ready = 0
        deepest = 0.0
        while time.monotonic() - down_at < 20:
            not_ready += get_json(f"{rec.url}/readyz")[0] != 200
            deepest = max(deepest, depth(rec.url))
            time.sleep(0.5)
        private_cluster.start_apiserver()
        sender.join(60)
        statuses = Counter(status for *_, status, _ in sender.answers)
        during = [s for _, sent, done, s, _ in sender.answers if sent > down_at and done < down_at + 20]
        assert len(during) > 500, f"too few alerts sent during the outage ({len(during)})"
        assert statuses == {202: len(sender.answers)}, f"not every alert was acknowledged: {statuses}"
        assert not sender.errors, sender.errors
        assert not_ready == 0, "/readyz failed while the journal had room"
        assert deepest > 400, f"the journal never held the outage's backlog (max {deepest})"
        drained(rec.url)
        want = expected(sender, bodies)
        assert stored(api, ns) == dict(want), "stored names/occurrences differ from what was acknowledged"
    finally:
        rec.stop()
        api.close()


def test_kill_9_during_stream_and_during_drain_loses_nothing_and_counts_nothing_twice(
    private_cluster,  # noqa: F811
    tmp_path,
):
    """SIGKILL while alerts stream in, and again while a backlog drains: after restarts on the same
    journal every acknowledged alert is stored, and no occurrence is counted twice."""
    kubeconfig = str(private_cluster.kubeconfig)
    api = config.new_client_from_config(config_file=kubeconfig)
    ns = "killed"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    journal = tmp_path / "journal"
    rec = receiver(kubeconfig, journal, tmp_path).start()
    port = rec.port
    restarted: list[FalcoReporterProcess] = []
    try:
        # 1. During the stream.
        bodies, _ = stream(ns, 1500, "s")
        sender = Sender(bodies, lambda: [rec.url], senders=4, deadline=60).start()
        wait_for(lambda: len(sender.acked) >= 300, timeout=60, interval=0.02, what="300 acknowledgements")
        rec.kill()
        time.sleep(1)
        rec = receiver(kubeconfig, journal, tmp_path, port=port).start()
        restarted.append(rec)
        sender.join(90)
        assert sender.errors, "no request hit the killed receiver"
        drained(rec.url)
        got, want = stored(api, ns), expected(sender, bodies)
        sent_names = {json.loads(b)["output_fields"]["k8s.pod.name"] for b in bodies}
        assert set(want) <= set(got), f"{len(set(want) - set(got))} acknowledged alerts are not stored"
        assert all(got[n] >= want[n] for n in want), "acknowledged occurrences are missing"
        # A request cut by the kill may be journaled without its 202: at most that many extra.
        lost_answers = sum(sender.errors.values())
        assert sum(got.values()) - sum(want.values()) <= lost_answers, (got, want)
        assert len(got) <= len(sent_names)

        # 2. During the drain: a backlog built while the API server is away, then the kill mid-drain.
        before = stored(api, ns)
        private_cluster.stop_apiserver()
        bodies2, _ = stream(ns, 1600, "d")
        sender2 = Sender(bodies2, lambda: [rec.url], senders=4).start()
        sender2.join(120)
        assert Counter(s for *_, s, _ in sender2.answers) == {202: 1600}
        backlog = depth(rec.url)
        assert backlog >= 1600
        private_cluster.start_apiserver()
        wait_for(
            lambda: 0 < depth(rec.url) < backlog * 0.8, timeout=60, interval=0.05, what="drain under way"
        )
        rec.kill()
        rec = receiver(kubeconfig, journal, tmp_path, port=port).start()
        restarted.append(rec)
        drained(rec.url)
        got = stored(api, ns)
        want2 = expected(sender2, bodies2)
        for name, count in want2.items():  # exactly: every request of this part was acknowledged
            assert got.get(name, 0) - before.get(name, 0) == count, (
                name,
                got.get(name),
                before.get(name),
                count,
            )
        assert "was not closed cleanly" in rec.log_path.read_text()
    finally:
        rec.stop()
        api.close()


def test_full_journal_answers_503_and_recovers(cluster, kube_api, namespace, tmp_path):
    """With the API server unreachable, a journal of 40 entries takes 40 alerts, then answers 503
    journal_full with Retry-After and fails /readyz; restarted with the API server, it drains all 40
    and accepts again."""
    dead = tmp_path / "dead-kubeconfig"
    text = Path(cluster.kubeconfig).read_text()
    dead.write_text(text.replace(text.split("server: ", 1)[1].split("\n", 1)[0], "https://127.0.0.1:9"))
    journal = tmp_path / "journal"
    rec = receiver(str(dead), journal, tmp_path, "--journal-max-entries", "40").start()
    try:
        answers = [post(rec.url, alert_for(namespace, f"full-{i}")) for i in range(45)]
        assert [s for s, _ in answers] == [202] * 40 + [503] * 5
        assert {a["error"] for _, a in answers[40:]} == {"journal_full"}
        assert get_json(f"{rec.url}/readyz")[0] == 503
        full = scrape(f"{rec.url}/metrics")["falco_reporter_journal_full_rejections_total"]
        assert full == 5
    finally:
        rec.stop()
    rec = receiver(str(cluster.kubeconfig), journal, tmp_path, "--journal-max-entries", "40").start()
    try:
        drained(rec.url)
        assert get_json(f"{rec.url}/readyz")[0] == 200
        status, after = post(rec.url, alert_for(namespace, "after"))
        assert status == 202
        drained(rec.url)
        assert set(stored(kube_api, namespace)) == {a["name"] for _, a in answers[:40]} | {after["name"]}
    finally:
        rec.stop()


def test_torn_last_record_starts_cleanly(cluster, kube_api, namespace, tmp_path):
    """A receiver killed with unsent entries, its write-ahead log then cut mid-record: the next
    receiver starts, says so in its log, stores the whole records, and takes new alerts."""
    dead = tmp_path / "dead-kubeconfig"
    text = Path(cluster.kubeconfig).read_text()
    dead.write_text(text.replace(text.split("server: ", 1)[1].split("\n", 1)[0], "https://127.0.0.1:9"))
    journal = tmp_path / "journal"
    rec = receiver(str(dead), journal, tmp_path).start()
    acked = [post(rec.url, alert_for(namespace, f"torn-{i}"))[1]["name"] for i in range(30)]
    rec.kill()
    wal = journal / "journal.sqlite-wal"
    size = wal.stat().st_size
    assert size > 0
    with wal.open("r+b") as f:
        f.truncate(size - 1000)
    rec = receiver(str(cluster.kubeconfig), journal, tmp_path).start()
    try:
        drained(rec.url)
        names = set(stored(kube_api, namespace))
        assert names and names <= set(acked), "whole records before the tear are stored, nothing else"
        assert len(names) < 30
        status, answer = post(rec.url, alert_for(namespace, "after-tear"))
        assert status == 202
        wait_for(lambda: answer["name"] in stored(kube_api, namespace), timeout=30, what="new alert stored")
        assert "was not closed cleanly" in rec.log()
    finally:
        rec.stop()


def test_rollout_of_receivers_while_sending_stores_every_acknowledged_alert(
    cluster, kube_api, namespace, tmp_path
):
    """Two receivers behind one 'Service'; each is stopped (SIGTERM: stop accepting, finish requests,
    drain the journal) and replaced by a new one with a fresh journal directory, one at a time, while
    alerts flow: every 202 is stored with its occurrences."""
    kubeconfig = str(cluster.kubeconfig)
    scope = ["--namespace", namespace, "--fallback-namespace", namespace]
    live = [receiver(kubeconfig, tmp_path / f"j{i}", tmp_path, *scope).start() for i in range(2)]
    bodies, _ = stream(namespace, 100_000, "r")
    sender = Sender(bodies, service(live), senders=4, pause=0.02, deadline=25).start()
    old: list[FalcoReporterProcess] = []
    try:
        for i in range(2):
            time.sleep(4)
            replacement = receiver(kubeconfig, tmp_path / f"j{i}-new", tmp_path, *scope).start()
            live.append(replacement)  # surge: the new pod is ready before the old one stops
            gone = live.pop(0)
            assert gone.stop() == 0, gone.log()
            old.append(gone)
        sender.join(60)
        statuses = Counter(status for *_, status, _ in sender.answers)
        assert statuses == {202: len(sender.answers)}, statuses
        for proc in live:
            drained(proc.url)
        want: dict[str, Any] = dict(expected(sender, bodies))
        assert stored(kube_api, namespace) == want
        assert sum(want.values()) > 1000
    finally:
        for proc in live + old:
            proc.stop()
