"""Every fault at once, while alerts never stop coming (issue 14's last "done when").

Six senders post alerts for two namespaces, with repeats on purpose, to two journaled receivers
behind a round-robin "Service". Meanwhile, in sequence and overlapping: the namespace half of the
alerts go to is deleted; the API server is made slow (frozen for 0.5 to 2 s at a time), then frozen
beyond the client's read timeout, during which one receiver is killed (SIGKILL) and restarted on
its journal, as a container restart keeps its emptyDir; the API server is then killed and
restarted, and while it is down the receiver pair starts rolling as the chart's RollingUpdate
does (a new pod with a fresh journal first, then the old one gets SIGTERM and drains its backlog).

After recovery, every alert answered 202 is stored by name in the namespace the 202 named, or in
the fallback namespace when its own was deleted, counted as often as it was acknowledged. A
request cut by the kill may be journaled without its 202, so at most that many extra are allowed.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from typing import Any

import pytest
from kubernetes import client, config

from tests.operator_proc import FalcoReporterProcess, wait_for
from tests.test_faults import Sender, get_json, private_cluster  # noqa: F401 - fixture
from tests.test_journal_faults import depth, drained, receiver, service, stored, stream

pytestmark = pytest.mark.cluster
FALLBACK = "falco-reporter"  # made by private_cluster; the receivers' default fallback namespace
STEADY, DOOMED = "steady", "doomed"
#: How long the API server is frozen at a time while "slow", then once beyond the client's
#: 10 s read timeout (a write may then be applied after the receiver gave up on it).
SLOW_FREEZES = (0.5, 1.0, 2.0, 1.0, 0.5)
LONG_FREEZE = 12.0


def test_alerts_survive_namespace_deletion_slow_and_dead_api_server_kill_and_rollout(
    private_cluster,  # noqa: F811
    tmp_path,
):
    """Continuous alerts through a namespace deletion, a slow then dead API server, a receiver kill
    and a rollout: each 202 is stored by name where it said (or the fallback), counted exactly."""
    kubeconfig = str(private_cluster.kubeconfig)
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    for ns in (STEADY, DOOMED):
        core.create_namespace({"metadata": {"name": ns}})
    journals = (tmp_path / f"journal-{i}" for i in itertools.count())
    started: list[FalcoReporterProcess] = []

    def pod(journal: Any, port: int | None = None) -> FalcoReporterProcess:
        proc = receiver(kubeconfig, journal, tmp_path, port=port)
        started.append(proc)
        return proc.start()

    journal_of: dict[int, Any] = {}
    live: list[FalcoReporterProcess] = []
    steady, _ = stream(STEADY, 20_000, "s", repeat_span=40)
    doomed, _ = stream(DOOMED, 20_000, "d", repeat_span=40)
    # Paced (about 50/s) below what this control plane stores, as Falco's alert rate is: backlogs
    # build up only while the API server is away, and drain afterwards.
    sender = Sender(
        [b for pair in zip(steady, doomed, strict=True) for b in pair],
        service(live),
        senders=6,
        pause=0.1,
        deadline=900,
    )

    def acked_since(moment: float) -> int:
        return sum(1 for _, sent, _, status, _ in list(sender.answers) if status == 202 and sent > moment)

    def failed() -> int:
        return sum(sender.errors.values())

    timeline: dict[str, float] = {"start": time.monotonic()}
    backlogs: list[float] = []  # journal entries of each rolled pod when it got SIGTERM
    try:
        for _ in range(2):
            journal = next(journals)
            live.append(pod(journal))
            journal_of[live[-1].port] = journal
        sender.start()
        wait_for(lambda: acked_since(0) >= 300, timeout=120, what="300 acknowledgements before the faults")

        # 1. The namespace half the alerts name is deleted (the namespace controller empties it
        #    while everything below goes on).
        core.delete_namespace(DOOMED)
        timeline["deleted"] = time.monotonic()

        # 2. A slow API server: frozen for a while, answering in between.
        for seconds in SLOW_FREEZES:
            private_cluster.freeze_apiserver(True)
            try:
                time.sleep(seconds)
            finally:
                private_cluster.freeze_apiserver(False)
            time.sleep(0.5)
        timeline["slow"] = time.monotonic()

        # 3. Frozen past the read timeout; meanwhile one receiver crashes and its container
        #    restarts on the same port and journal (an emptyDir survives a container restart).
        private_cluster.freeze_apiserver(True)
        frozen_at = time.monotonic()
        try:
            wait_for(lambda: acked_since(frozen_at) >= 100, timeout=60, what="alerts taken while frozen")
            victim = live[0]
            errors_before = failed()
            victim.kill()
            wait_for(lambda: failed() > errors_before, timeout=60, what="a request hit the killed receiver")
            live[0] = pod(journal_of[victim.port], port=victim.port)
            timeline["restarted"] = time.monotonic()
            time.sleep(max(0.0, LONG_FREEZE - (time.monotonic() - frozen_at)))
        finally:
            private_cluster.freeze_apiserver(False)
        timeline["thawed"] = time.monotonic()

        # 4. Unavailable: the API server is killed and started again on the same port and data.
        #    The rollout's surge starts meanwhile: a new pod takes alerts without an API server.
        private_cluster.stop_apiserver()
        down_at = time.monotonic()
        try:
            wait_for(lambda: acked_since(down_at) >= 300, timeout=90, what="alerts taken while it is down")
            assert all(get_json(f"{p.url}/readyz")[0] == 200 for p in live), "a journal refused alerts"
            live.append(pod(next(journals)))
        finally:
            private_cluster.start_apiserver()
        timeline["up"] = time.monotonic()
        assert "entries from a previous run to drain" in live[0].log(), "the killed pod's journal was empty"

        # 5. The rollout, one pod at a time: the old pod leaves the Service and gets SIGTERM, which
        #    drains its journal (the outage's backlog included); then the same for the other one.
        for step in range(2):
            if step:
                live.append(pod(next(journals)))
            gone = live.pop(0)
            backlogs.append(depth(gone.url))
            code = gone.stop(timeout=40)  # the chart's terminationGracePeriodSeconds
            assert code == 0, gone.log()
            assert "not yet stored" not in gone.log_path.read_text(), gone.log()
        rolled_at = time.monotonic()
        timeline["rolled"] = rolled_at
        wait_for(lambda: acked_since(rolled_at) >= 300, timeout=90, what="the new pods take alerts")
        sender.stop()
        sender.join(60)
        timeline["sent"] = time.monotonic()

        for proc in live:
            drained(proc.url, timeout=240)
        wait_for(
            lambda: DOOMED not in {n.metadata.name for n in core.list_namespace().items},
            timeout=240,
            interval=1,
            what=f"namespace {DOOMED} deleted",
        )
        timeline["drained"] = time.monotonic()
        # A refused connection never reached a receiver; a request cut later may have been journaled.
        _check(sender, api, timeline["deleted"], failed() - sender.errors["ConnectionRefusedError"])
    finally:
        sender.stop()
        with contextlib.suppress(AssertionError, RuntimeError):  # the failure that got us here matters more
            sender.join(30)
        for proc in started:
            proc.stop()
        api.close()
        start = timeline["start"]
        print({phase: round(at - start, 1) for phase, at in timeline.items()}, dict(sender.errors), backlogs)


def _check(sender: Sender, api: client.ApiClient, deleted_at: float, cut: int) -> None:
    """Every 202 stored where it said (or the fallback), counted as acknowledged."""
    answers = list(sender.answers)
    statuses = Counter(status for *_, status, _ in answers)
    assert statuses == {202: len(answers)}, f"not every alert was acknowledged: {statuses}"
    want: Counter[str] = Counter()
    where: dict[str, set[str]] = {}
    first_sent: dict[str, float] = {}
    for _, sent, _, _, body in answers:
        want[body["name"]] += 1
        where.setdefault(body["name"], set()).add(body["namespace"])
        first_sent[body["name"]] = min(sent, first_sent.get(body["name"], sent))
    got = {ns: stored(api, ns) for ns in (STEADY, FALLBACK)}

    steady = {n for n, spaces in where.items() if spaces == {STEADY}}
    assert steady and steady <= set(got[STEADY]), f"{len(steady - set(got[STEADY]))} acknowledged alerts lost"
    doomed = set(want) - steady
    assert all(where[n] <= {DOOMED, FALLBACK} for n in doomed), "a 202 named a third namespace"
    assert not set(got[FALLBACK]) & steady, "an alert of a live namespace went to the fallback"

    # First acknowledged after the deletion began: created in the fallback, every occurrence there.
    after = {n for n in doomed if first_sent[n] > deleted_at}
    assert after and after <= set(got[FALLBACK]), f"{len(after - set(got[FALLBACK]))} fallbacks lost"
    assert any(want[n] > 1 for n in after), "no repeat went to the fallback namespace"
    counted = {n: got[STEADY][n] for n in steady} | {n: got[FALLBACK][n] for n in after}
    short = {n: (counted[n], want[n]) for n in counted if counted[n] < want[n]}
    assert not short, f"acknowledged occurrences missing (stored, acknowledged): {short}"
    # Acknowledged before the deletion: stored in the namespace and deleted with it by the user;
    # what was still journaled then went to the fallback, never counted more than acknowledged.
    before = (doomed - after) & set(got[FALLBACK])
    extra = sum(counted[n] - want[n] for n in counted) + sum(
        max(0, got[FALLBACK][n] - want[n]) for n in before
    )
    assert extra <= cut, f"{extra} occurrences counted twice (only {cut} requests were cut)"
    print(
        f"acknowledged {sum(want.values())} ({len(want)} alerts; {len(after)} after the deletion), "
        f"{cut} requests cut, {extra} extra occurrences"
    )
