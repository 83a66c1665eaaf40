"""Phases 1-3, one receiver process: repeats of one alert, new alerts, a sequential sender."""

from __future__ import annotations

import time
from typing import Any

from bench import support as S
from bench.harness import CONCURRENCY, FLUSH, Bench, fmt, strip_acked
from bench.loadgen import Payloads
from falco_reporter.models.falco import normalise, object_name, parse_alert_body


def dup(bench: Bench) -> None:
    print("\n[1] repeats of one alert (one fingerprint), one receiver process", flush=True)
    ns = bench.ns("dup")
    rec = bench.start_receiver()
    warm = bench.loadgen(rec.url, "dup", ns, 2000)
    noop_port = S.free_port()
    noop = S.start_module("noop", "--port", str(noop_port))
    try:
        S.wait_http(f"http://127.0.0.1:{noop_port}/healthz")
        bench.pids.append(noop.pid)
        ref = bench.loadgen(
            f"http://127.0.0.1:{noop_port}",
            "dup",
            ns,
            bench.args.dup_count,
            duration=bench.args.dup_seconds / 2,
        )
    finally:
        noop.terminate()
        noop.wait(10)
    before = rec.metrics()
    cpu0 = S.cpu_seconds(rec.pid)
    machine = bench.machine().start()
    with bench.profile(rec.pid, "dup", bench.args.dup_seconds * 0.8):
        res = bench.loadgen(rec.url, "dup", ns, bench.args.dup_count, duration=bench.args.dup_seconds)
    usage = machine.stop()
    receiver_cores = (S.cpu_seconds(rec.pid) - cpu0) / res["elapsed_s"]
    time.sleep(2 * FLUSH + 1)
    after = rec.metrics()
    spec = normalise(parse_alert_body(Payloads("dup", ns, bench.run_id).body(0)))
    obj = bench.kube.get(ns, "falcoalerts", object_name(spec)) or {}
    stored = int(((obj.get("status") or {}).get("occurrences") or {}).get("count") or (1 if obj else 0))
    acked = res["statuses"].get("202", 0)
    lat = res["latency_ms"]
    bench.details["dup"] = {
        "result": strip_acked(res),
        "reference_noop": strip_acked(ref),
        "warmup": strip_acked(warm),
        "receiver_cores": round(receiver_cores, 2),
        "machine": usage,
    }
    bench.row(
        "repeats: sustained rate (1 receiver, 8 keep-alive conns)",
        f"{fmt(res['rate_per_s'])} alerts/s",
        f"no-op aiohttp server: {fmt(ref['rate_per_s'])}/s",
        f"{res['rate_per_s'] / ref['rate_per_s']:.0%}",
        ">= 5,000/s",
        res["rate_per_s"] >= 5000,
        receiver_cores=round(receiver_cores, 2),
        others_cores=usage["others_cores"],
    )
    bench.row(
        "repeats: ack latency p50 / p99",
        f"{fmt(lat['p50'], 2)} / {fmt(lat['p99'], 2)} ms",
        f"no-op: {fmt(ref['latency_ms']['p50'], 2)} / {fmt(ref['latency_ms']['p99'], 2)} ms",
        "",
        "p99 < 20 ms",
        lat["p99"] < 20,
    )
    sent = res["sent"]
    bench.check(
        "dup: /metrics alerts_received delta = requests sent",
        sent,
        S.delta(after, before, "falco_reporter_alerts_received_total"),
    )
    bench.check(
        "dup: /metrics alerts_accepted{merged} delta = 202s",
        acked,
        S.delta(after, before, "falco_reporter_alerts_accepted_total{outcome=merged}"),
    )
    bench.check(
        "dup: /metrics alerts_rejected delta = 0",
        0,
        sum(S.delta(after, before, k) for k in after if k.startswith("falco_reporter_alerts_rejected_total")),
    )
    bench.check(
        "dup: /metrics flush_patches{ok} delta >= 1",
        1,
        S.delta(after, before, "falco_reporter_flush_patches_total{result=ok}"),
        at_least=True,
    )
    bench.check(
        "dup: stored status.occurrences.count = every 202 (warm-up + run)",
        warm["statuses"].get("202", 0) + acked,
        stored,
    )


def unique(bench: Bench) -> None:
    print("\n[2] new alerts: FalcoAlerts persisted/s vs direct API creates (same concurrency)", flush=True)
    rec = bench.start_receiver()
    ns_recv, ns_raw, ns_py = bench.ns("unique"), bench.ns("raw"), bench.ns("pyclient")
    per, rounds = bench.args.unique_count // bench.args.unique_rounds, bench.args.unique_rounds
    totals: dict[str, list[float]] = {"recv": [0, 0], "raw": [0, 0], "py": [0, 0]}
    acked: set[str] = set()
    sent = 0
    before = rec.metrics()
    cpu0 = S.cpu_seconds(rec.pid)
    machine = bench.machine().start()
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        order = ["raw", "recv", "py"] if r % 2 == 0 else ["py", "recv", "raw"]
        for kind in order:
            if kind == "recv":
                with bench.profile(rec.pid, f"unique-{r}", 5):
                    res = bench.loadgen(rec.url, "unique", ns_recv, per, start=r * per, record=True)
                acked |= {name for _, name, _ in res.pop("acked")}
                sent += res["sent"]
                done = res["statuses"].get("202", 0)
            else:
                target = ns_raw if kind == "raw" else ns_py
                res = S.run_module(
                    "apiload",
                    "--kubeconfig",
                    bench.kubeconfig,
                    "--namespace",
                    target,
                    "--run-id",
                    f"{bench.run_id}{kind}{r}",
                    "--count",
                    str(per),
                    "--concurrency",
                    str(CONCURRENCY),
                    "--client",
                    "raw" if kind == "raw" else "python",
                    timeout=600,
                )
                done = res["created"]
            totals[kind][0] += done
            totals[kind][1] += res["elapsed_s"]
            runs.append(
                {
                    "round": r,
                    "kind": kind,
                    "done": done,
                    "elapsed_s": res["elapsed_s"],
                    "latency_ms": res["latency_ms"],
                }
            )
    usage = machine.stop()
    after = rec.metrics()
    receiver_cores = (S.cpu_seconds(rec.pid) - cpu0) / totals["recv"][1]
    rate = {k: v[0] / v[1] for k, v in totals.items()}
    stored = bench.kube.names(ns_recv, "falcoalerts")
    bench.details["unique"] = {
        "runs": runs,
        "rates": rate,
        "machine": usage,
        "receiver_cores_while_receiving": round(receiver_cores, 2),
    }
    bench.row(
        "new alerts: FalcoAlerts persisted/s via receiver",
        f"{fmt(rate['recv'])}/s",
        f"direct API creates (aiohttp, 8 conns): {fmt(rate['raw'])}/s",
        f"{rate['recv'] / rate['raw']:.0%}",
        ">= 70%",
        rate["recv"] / rate["raw"] >= 0.70,
        others_cores=usage["others_cores"],
    )
    bench.row(
        "new alerts: same, vs the kubernetes Python client (8 threads)",
        f"{fmt(rate['recv'])}/s",
        f"kubernetes client: {fmt(rate['py'])}/s",
        f"{rate['recv'] / rate['py']:.0%}",
        "(context)",
        None,
    )
    bench.check("unique: every 202 is a stored FalcoAlert", len(acked), len(acked & stored))
    bench.check(
        "unique: /metrics alerts_received delta = requests sent",
        sent,
        S.delta(after, before, "falco_reporter_alerts_received_total"),
    )
    bench.check(
        "unique: /metrics alerts_accepted{created} delta = 202s",
        len(acked),
        S.delta(after, before, "falco_reporter_alerts_accepted_total{outcome=created}"),
    )
    bench.check(
        "unique: /metrics flush_patches delta = 0 (no repeats, no status writes)",
        0,
        sum(S.delta(after, before, k) for k in after if k.startswith("falco_reporter_flush_patches_total")),
    )


def sequential(bench: Bench) -> None:
    print("\n[3] one request at a time (Falcosidekick's maxconcurrentrequests=1 behaviour)", flush=True)
    rec = bench.start_receiver()
    ns = bench.ns("seq")
    noop_port = S.free_port()
    noop = S.start_module("noop", "--port", str(noop_port))
    try:
        S.wait_http(f"http://127.0.0.1:{noop_port}/healthz")
        ref = bench.loadgen(
            f"http://127.0.0.1:{noop_port}", "dup", ns, bench.args.seq_count, concurrency=1, duration=30
        )
    finally:
        noop.terminate()
        noop.wait(10)
    before = rec.metrics()
    dup = bench.loadgen(
        rec.url, "dup", ns, bench.args.seq_count, concurrency=1, duration=30, run_id=f"{bench.run_id}q"
    )
    new = bench.loadgen(
        rec.url,
        "unique",
        ns,
        bench.args.seq_count // 3,
        concurrency=1,
        duration=60,
        run_id=f"{bench.run_id}n",
        record=True,
    )
    after = rec.metrics()
    acked = {name for _, name, _ in new.pop("acked")}
    stored = bench.kube.names(ns, "falcoalerts")
    lost = (dup["sent"] - dup["statuses"].get("202", 0)) + (new["sent"] - len(acked))
    bench.details["sequential"] = {"noop": strip_acked(ref), "repeats": strip_acked(dup), "new": new}
    bench.row(
        "proxy: sequential sender, repeats (1 conn, wait for each answer)",
        f"{fmt(dup['rate_per_s'])}/s, p99 {fmt(dup['latency_ms']['p99'], 2)} ms",
        f"same sender vs no-op server: {fmt(ref['rate_per_s'])}/s",
        f"{dup['rate_per_s'] / ref['rate_per_s']:.0%}",
        "zero loss",
        lost == 0,
    )
    bench.row(
        "proxy: sequential sender, new alerts",
        f"{fmt(new['rate_per_s'])}/s, p99 {fmt(new['latency_ms']['p99'], 1)} ms",
        f"no-op: {fmt(ref['rate_per_s'])}/s",
        f"{new['rate_per_s'] / ref['rate_per_s']:.0%}",
        "zero loss",
        lost == 0 and acked <= stored,
    )
    bench.check(
        "sequential: every request answered 202 (zero loss)",
        dup["sent"] + new["sent"],
        dup["statuses"].get("202", 0) + len(acked),
    )
    bench.check(
        "sequential: every 202 for a new alert is a stored FalcoAlert", len(acked), len(acked & stored)
    )
    bench.check(
        "sequential: /metrics alerts_received delta = requests sent",
        dup["sent"] + new["sent"],
        S.delta(after, before, "falco_reporter_alerts_received_total"),
    )
    bench.details["receiver_seq_alerts"] = len(stored)
