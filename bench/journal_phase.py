"""Phases 'journal' and 'outage': the receiver with its durable journal (--journal-dir).

journal: new alerts through a receiver without and with the journal, side by side (8 keep-alive
connections, and one request at a time as Falcosidekick sends by default), the repeats rate with
the journal, and the drain that follows. outage: the API server stopped for 60 s under a steady
50 alerts/s; alerts acknowledged, alerts stored after recovery (must be equal), drain time.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench import support as S
from bench.harness import FLUSH, Bench, fmt, strip_acked, wait_until

DEPTH = "falco_reporter_journal_entries"


def _journal_receiver(bench: Bench, name: str, sync: str = "fsync") -> S.Reporter:
    rec = S.Reporter(
        bench.kubeconfig,
        "receiver",
        bench.work,
        "--flush-interval",
        str(FLUSH),
        "--journal-dir",
        str(bench.work / f"journal-{name}"),
        "--journal-sync",
        sync,
    )
    rec.wait_healthy()
    bench.pids.append(rec.pid)
    return rec


def _drain_seconds(rec: S.Reporter, timeout: float = 600) -> float:
    started = time.monotonic()
    wait_until(lambda: rec.metrics().get(DEPTH, 1) == 0, timeout)
    return time.monotonic() - started


def journal(bench: Bench) -> None:
    print("\n[J] new alerts without and with the journal (same run, same senders)", flush=True)
    plain = bench.start_receiver()
    rec = _journal_receiver(bench, "new")
    try:
        count = bench.args.unique_count // 2
        ns_plain, ns_j = bench.ns("jplain"), bench.ns("jnew")
        without = bench.loadgen(plain.url, "unique", ns_plain, count, record=True, run_id=f"{bench.run_id}jp")
        before = rec.metrics()
        with_j = bench.loadgen(rec.url, "unique", ns_j, count, record=True, run_id=f"{bench.run_id}jj")
        drain = _drain_seconds(rec)
        seq_plain = bench.loadgen(
            plain.url,
            "unique",
            ns_plain,
            count,
            concurrency=1,
            duration=15,
            record=True,
            run_id=f"{bench.run_id}sp",
        )
        seq_j = bench.loadgen(
            rec.url,
            "unique",
            ns_j,
            count,
            concurrency=1,
            duration=15,
            record=True,
            run_id=f"{bench.run_id}sj",
        )
        fast = _journal_receiver(bench, "process", sync="process")
        try:
            seq_fast = bench.loadgen(
                fast.url, "unique", ns_j, count, concurrency=1, duration=15, run_id=f"{bench.run_id}sf"
            )
            _drain_seconds(fast)
        finally:
            fast.stop()
        repeats = bench.loadgen(
            rec.url, "dup", bench.ns("jdup"), bench.args.dup_count, duration=bench.args.dup_seconds / 2
        )
        _drain_seconds(rec)
        after = rec.metrics()
        acked = {name for _, name, _ in with_j.pop("acked")} | {name for _, name, _ in seq_j.pop("acked")}
        without.pop("acked")
        seq_plain.pop("acked")
        stored = bench.kube.names(ns_j, "falcoalerts")
        commits = S.delta(after, before, "falco_reporter_journal_fsync_seconds_count")
        commit_s = S.delta(after, before, "falco_reporter_journal_fsync_seconds_sum")
        appended = S.delta(after, before, "falco_reporter_journal_appended_total")
        bench.details["journal"] = {
            "without": strip_acked(without),
            "with": with_j,
            "sequential_without": strip_acked(seq_plain),
            "sequential_with": seq_j,
            "sequential_with_process_sync": strip_acked(seq_fast),
            "repeats_with": strip_acked(repeats),
            "drain_s": round(drain, 1),
            "commits": commits,
            "appended": appended,
        }
        rate, ref = with_j["rate_per_s"], without["rate_per_s"]
        bench.row(
            "new alerts acknowledged/s, 8 conns: with journal",
            f"{fmt(rate)}/s",
            f"without journal (stored before 202): {fmt(ref)}/s",
            f"{rate / ref:.1f}x",
            ">= 5x",
            rate >= 5 * ref,
        )
        bench.row(
            "new alerts with journal vs repeats with journal (8 conns)",
            f"{fmt(rate)}/s",
            f"repeats: {fmt(repeats['rate_per_s'])}/s",
            f"{rate / repeats['rate_per_s']:.0%}",
            ">= 80%",
            rate >= 0.8 * repeats["rate_per_s"],
        )
        bench.row(
            "new alerts, one request at a time (Falcosidekick's default): with journal",
            f"{fmt(seq_j['rate_per_s'])}/s, p99 {fmt(seq_j['latency_ms']['p99'], 1)} ms",
            f"without: {fmt(seq_plain['rate_per_s'])}/s, p99 {fmt(seq_plain['latency_ms']['p99'], 1)} ms",
            f"{seq_j['rate_per_s'] / seq_plain['rate_per_s']:.1f}x",
            "(context)",
            None,
        )
        bench.row(
            "new alerts, one at a time: journal with --journal-sync=process (no fsync per 202)",
            f"{fmt(seq_fast['rate_per_s'])}/s, p99 {fmt(seq_fast['latency_ms']['p99'], 1)} ms",
            f"without journal: {fmt(seq_plain['rate_per_s'])}/s",
            f"{seq_fast['rate_per_s'] / seq_plain['rate_per_s']:.1f}x",
            ">= 5x",
            seq_fast["rate_per_s"] >= 5 * seq_plain["rate_per_s"],
        )
        bench.row(
            "journal group commit (fsync of the write-ahead log)",
            f"{1000 * commit_s / max(commits, 1):.2f} ms per commit, {appended / max(commits, 1):.1f} alerts per commit",
            f"drain of {count} new alerts: {drain:.1f} s",
            "",
            "(context)",
            None,
        )
        bench.check(
            "journal: every 202 for a new alert is a stored FalcoAlert", len(acked), len(acked & stored)
        )
    finally:
        rec.stop()


def outage(bench: Bench) -> None:
    print("\n[O] API server stopped for 60 s under a steady 50 alerts/s, receiver with journal", flush=True)
    if bench.cluster is None:
        bench.row("outage 60 s at 50 alerts/s", "skipped: needs the bench's own cluster", "", "", "", None)
        return
    rec = _journal_receiver(bench, "outage")
    ns = bench.ns("outage")
    result: dict[str, Any] = {}

    def send() -> None:
        result.update(bench.loadgen(rec.url, "unique", ns, 50 * 80, rate=50, duration=75, record=True))

    sender = threading.Thread(target=send)
    try:
        sender.start()
        time.sleep(5)
        bench.cluster.stop_apiserver()
        time.sleep(60)
        bench.cluster.start_apiserver()
        sender.join(120)
        drain = _drain_seconds(rec)
        acked = {name for _, name, _ in result.pop("acked")}
        stored = bench.kube.names(ns, "falcoalerts")
        others = sum(v for k, v in result["statuses"].items() if k != "202")
        bench.details["outage"] = {"result": result, "drain_after_restart_s": round(drain, 1)}
        bench.row(
            "outage: 60 s API server down at 50 alerts/s: acknowledged / stored after recovery",
            f"{len(acked)} / {len(acked & stored)}",
            f"sent {result['sent']}, non-202 answers {others}",
            "",
            "equal, every alert acknowledged",
            len(acked) == len(acked & stored) and others == 0,
        )
        bench.row(
            "outage: drain after the API server is back",
            f"{drain:.1f} s",
            f"ack latency p99 during the run {fmt(result['latency_ms']['p99'], 1)} ms",
            "",
            "(context)",
            None,
        )
        bench.check("outage: every 202 is a stored FalcoAlert", len(acked), len(acked & stored))
    finally:
        rec.stop()
