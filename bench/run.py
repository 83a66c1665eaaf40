#!/usr/bin/env python3
"""``make bench``: performance of falco-reporter on this machine, each figure beside its reference.

Starts its own control plane (``LocalCluster``; or uses ``$KUBECONFIG`` when set, which must point
at a loopback API server) and its own real ``falco-reporter`` processes, drives them from separate
load-generator processes over loopback only, prints a table and writes ``bench/results.json``.
Every loop is bounded by a count and a time limit; the whole run takes about 7 minutes on the
2-core development machine when it is otherwise idle (``--quick``: about 3).

Measurements (all in one run, each next to its reference):

1. repeats of one alert: alerts/s and ack latency of one receiver, beside a no-op aiohttp server
   driven by the same load generator;
2. new alerts: FalcoAlerts persisted/s through the receiver, beside creating the same objects
   directly through the API server with the same concurrency (interleaved rounds, so background
   load hits both alike);
3. a sequential sender (one request at a time, as Falcosidekick with maxconcurrentrequests=1):
   receiver vs no-op server; then a real Falcosidekick 2.34.1 delivering into the receiver vs into the
   no-op server (``sidekick``): delivery rate and loss, from its own /metrics;
3a. the journal (``--journal-dir``): new alerts acknowledged/s without and with it, 8 connections and
   one at a time, the repeats rate with it, the group commit's cost, the drain that follows;
3b. an outage: the API server stopped for 60 s under a steady 50 alerts/s into a journaling receiver:
   alerts acknowledged vs stored after recovery, and the drain time;
4. POST -> AlertReport latency at a steady 50 alerts/s with the built-in writer (seen via a watch),
   beside the same at 20/s, with the CPU each alert costs the operator and the API server;
5. an LLM storm (10,000 alerts, 20 patterns x 50 pods) with a fake model sleeping like a real one,
   operator in-process: model calls and cache hits against the 20 answer-cache keys;
6. peak RSS of the operator and the receiver with 10,000 FalcoAlerts and 10,000 AlertReports;
7. the Prometheus counters of each process checked against what was sent.

``--profile`` records py-spy profiles of the receiver (installs py-spy into the venv if missing) and
puts the hottest functions into results.json. The machine's load from other processes is recorded
per phase (``others_cores``): figures from a busy machine are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import journal_phase, operator_phases, receiver_phases, sidekick_phase, storm_phase  # noqa: E402
from bench.harness import Bench, fmt  # noqa: E402

# Phases 1-3 share one receiver process; its memory is noted after each.
RECEIVER_PHASES: dict[str, Callable[[Bench], None]] = {
    "dup": receiver_phases.dup,
    "unique": receiver_phases.unique,
    "sequential": receiver_phases.sequential,
    "sidekick": sidekick_phase.sidekick,
}


def table(bench: Bench) -> str:
    head = ("measure", "result", "reference", "ratio", "target", "met")
    body = [
        (
            r["measure"],
            r["figure"],
            r["reference"],
            r["ratio"],
            r["target"],
            {True: "met", False: "MISSED", None: ""}[r["met"]],
        )
        for r in bench.rows
    ]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    lines.append("")
    lines.append("metric checks (Prometheus /metrics and stored objects vs what was sent):")
    for c in bench.checks:
        lines.append(
            f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}: expected {c['rule']} {fmt(c['expected'])}, "
            f"got {fmt(c['actual'])}"
        )
    return "\n".join(lines)


def write_results(bench: Bench, started: float) -> None:
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_end": os.getloadavg(),
        },
        "args": vars(bench.args),
        "rows": bench.rows,
        "checks": bench.checks,
        "details": bench.details,
        "profiles": bench.profiles,
    }
    out = Path(bench.args.out)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {out}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small counts, a smoke run of every phase (~2 min)")
    p.add_argument(
        "--own-cluster", action="store_true", help="start a LocalCluster even if KUBECONFIG is set"
    )
    p.add_argument("--profile", action="store_true", help="record py-spy profiles of the receiver")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, profiles)")
    p.add_argument("--phases", default="dup,unique,sequential,sidekick,journal,outage,latency,storm,memory")
    p.add_argument("--dup-count", type=int, default=200_000)
    p.add_argument("--dup-seconds", type=float, default=20)
    p.add_argument("--unique-count", type=int, default=10_000)
    p.add_argument("--unique-rounds", type=int, default=4)
    p.add_argument("--seq-count", type=int, default=3000)
    p.add_argument("--fsk-count", type=int, default=1500, help="alerts per Falcosidekick round")
    p.add_argument("--latency-count", type=int, default=1500)
    p.add_argument("--storm-count", type=int, default=10_000)
    p.add_argument("--storm-timeout", type=float, default=240)
    p.add_argument("--llm-delay", type=float, default=0.5)
    p.add_argument("--memory-timeout", type=float, default=300)
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = p.parse_args()
    if args.quick:
        args.dup_count, args.dup_seconds, args.unique_count, args.unique_rounds = 20_000, 5, 1000, 2
        args.seq_count, args.latency_count, args.storm_count, args.fsk_count = 600, 250, 2000, 500
    started = time.monotonic()
    bench = Bench(args)
    phases = args.phases.split(",")
    try:
        bench.setup()
        for phase, run_phase in RECEIVER_PHASES.items():
            if phase in phases:
                run_phase(bench)
                bench.note_receiver_memory()
        if "journal" in phases:
            journal_phase.journal(bench)
        if "outage" in phases:
            journal_phase.outage(bench)
        if "latency" in phases:
            operator_phases.latency(bench)
        if "storm" in phases:
            storm_phase.storm(bench)
        if "memory" in phases and "unique" in phases:  # it measures the unique phase's FalcoAlerts
            operator_phases.memory(bench)
    finally:
        bench.teardown()
    print(
        f"\nfalco-reporter benchmark ({time.monotonic() - started:.0f}s, {os.cpu_count()} cores, "
        f"load average at end {os.getloadavg()[0]:.1f})\n",
        flush=True,
    )
    print(table(bench), flush=True)
    write_results(bench, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
