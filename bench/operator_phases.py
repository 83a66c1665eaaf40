"""Phases 4 and 6, a real operator process: alert -> report latency, and peak RSS with 10,000 objects."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

from bench import support as S
from bench.harness import CONCURRENCY, FLUSH, Bench, fmt, strip_acked, wait_until
from bench.loadgen import percentile


def latency(bench: Bench) -> None:
    print(
        "\n[4] POST -> AlertReport latency at a steady 50 alerts/s (and 20/s), built-in writer",
        flush=True,
    )
    if bench.receiver is not None:
        bench.note_receiver_memory()
        bench.receiver.stop()
    runs, op = _measure(
        bench, "latency", ((20, bench.args.latency_count * 2 // 5), (50, bench.args.latency_count))
    )
    bench.details["latency"] = runs
    bench.details["operator_embedded_hwm_kb"] = S.status_kb(op.pid, "VmHWM")
    op.stop()
    # The same 50/s run without incident correlation, for its cost side by side.
    plain, op_plain = _measure(bench, "nocorr", ((50, bench.args.latency_count),), "--incident-window", "0")
    op_plain.stop()
    bench.details["latency_without_correlation"] = plain
    low, high = runs[20], runs[50]
    pct = high["report_s"]
    cost = f"; per alert: operator {high['operator_ms_per_alert']} ms CPU" + (
        f", kube-apiserver {high['apiserver_ms_per_alert']} ms CPU" if high["apiserver_ms_per_alert"] else ""
    )
    bench.row(
        "alert -> AlertReport latency p50 / p95 / p99 (50/s, built-in writer)",
        f"{pct[50]:.2f} / {pct[95]:.2f} / {pct[99]:.2f} s"
        + (f", {high['missing']} reports missing" if high["missing"] else ""),
        f"same at 20/s: {low['report_s'][50]:.2f} / {low['report_s'][95]:.2f} / "
        f"{low['report_s'][99]:.2f} s; POST->202 p50 {fmt(high['ack']['latency_ms']['p50'], 0)} ms" + cost,
        "",
        "p95 < 1 s",
        pct[95] < 1.0 and high["missing"] == 0,
        machine_busy_pct=high["machine"]["machine_busy_pct"],
        others_cores=high["machine"]["others_cores"],
    )
    plain_pct = plain[50]["report_s"]
    bench.row(
        "cost of incident correlation: p95 alert -> AlertReport at 50/s, with / without",
        f"{pct[95]:.2f} / {plain_pct[95]:.2f} s",
        f"p50 {pct[50]:.2f} / {plain_pct[50]:.2f} s; operator CPU per alert {high['operator_ms_per_alert']} / "
        f"{plain[50]['operator_ms_per_alert']} ms",
        "",
        "p95 < 1 s with correlation",
        pct[95] < 1.0,
    )
    for rate, run in [*runs.items(), *((f"{r} without correlation", v) for r, v in plain.items())]:
        bench.check(
            f"latency {rate}/s: every 202 got exactly one AlertReport",
            run["names"],
            run["names"] - run["missing"],
        )
        bench.check(
            f"latency {rate}/s: /metrics reports_written delta = alerts acknowledged",
            run["names"],
            run["written"],
        )
        bench.check(
            f"latency {rate}/s: /metrics alerts_accepted{{created}} delta = 202s",
            run["names"],
            run["created"],
        )


def _measure(
    bench: Bench, label: str, rates: tuple[tuple[int, int], ...], *extra: str
) -> tuple[dict[int, dict[str, Any]], S.Reporter]:
    """Start an operator (with ``extra`` flags), send unique alerts at each rate, time each report."""
    ns = bench.ns(label)
    op = S.Reporter(
        bench.kubeconfig,
        "run",
        bench.work,
        "--namespace",
        ns,
        "--fallback-namespace",
        ns,
        "--flush-interval",
        str(FLUSH),
        *extra,
    )
    op.wait_healthy()
    bench.pids.append(op.pid)
    if label == "latency":
        bench.details["operator_rss_start_kb"] = S.status_kb(op.pid, "VmRSS")
    watcher = S.Watcher(bench.kubeconfig, ns, "alertreports")
    watcher.start()
    watcher.ready.wait(10)
    time.sleep(1)
    apiserver = bench.cluster.pids.get("kube-apiserver") if bench.cluster is not None else None
    runs: dict[int, dict[str, Any]] = {}
    try:
        warm = bench.loadgen(
            op.url, "unique", ns, 20, rate=10, run_id=f"{bench.run_id}w{label[0]}", record=True
        )
        wait_until(lambda: len(watcher.seen) >= len(warm["acked"]), 60)
        for rate, count in rates:
            before = op.metrics()
            cpu0, api0 = S.cpu_seconds(op.pid), S.cpu_seconds(apiserver) if apiserver else 0.0
            machine = bench.machine().start()
            res = bench.loadgen(
                op.url,
                "unique",
                ns,
                count,
                rate=rate,
                duration=count / rate + 30,
                run_id=f"{bench.run_id}{label[0]}{rate}",
                record=True,
            )
            names = {name: sent for _, name, sent in res.pop("acked")}
            wait_until(lambda names=names: all(n in watcher.seen for n in names), 120)
            usage = machine.stop()
            time.sleep(1)
            after = op.metrics()
            latencies = [watcher.seen[n] - t for n, t in names.items() if n in watcher.seen]
            runs[rate] = {
                "ack": strip_acked(res),
                "names": len(names),
                "missing": len(names) - len(latencies),
                "report_s": {q: percentile(latencies, q) for q in (50, 95, 99)},
                "machine": usage,
                "operator_ms_per_alert": round(1000 * (S.cpu_seconds(op.pid) - cpu0) / max(1, len(names)), 1),
                "apiserver_ms_per_alert": round(
                    1000 * (S.cpu_seconds(apiserver) - api0) / max(1, len(names)), 1
                )
                if apiserver
                else None,
                "written": sum(
                    S.delta(after, before, k)
                    for k in after
                    if k.startswith("falco_reporter_reports_written_total")
                ),
                "created": S.delta(after, before, "falco_reporter_alerts_accepted_total{outcome=created}"),
            }
    finally:
        watcher.stop()
    return runs, op


def memory(bench: Bench) -> None:
    print("\n[6] peak RSS with 10,000 FalcoAlerts and 10,000 AlertReports present (twice)", flush=True)
    ns = f"bench-unique-{bench.run_id}"
    alerts = bench.kube.list(ns, "falcoalerts")
    owners = [[ns, a["metadata"]["name"], a["metadata"]["uid"]] for a in alerts]
    owners_file = bench.work / "owners.json"
    owners_file.write_text(json.dumps(owners))
    made = S.run_module(
        "apiload",
        "--kubeconfig",
        bench.kubeconfig,
        "--namespace",
        ns,
        "--kind",
        "alertreport",
        "--owners",
        str(owners_file),
        "--concurrency",
        str(CONCURRENCY),
        timeout=900,
    )
    # First start: every alert is pending (report exists -> status Reported).
    hwm, rss, busy_s, metrics = _until_idle(bench, ns)
    alerts = bench.kube.list(ns, "falcoalerts")
    reports = bench.kube.list(ns, "alertreports")
    reported = sum(
        1
        for a in alerts
        if any(
            c.get("type") == "Reported" and c.get("status") == "True"
            for c in (a.get("status") or {}).get("conditions", [])
        )
    )
    # Second start: the steady state after a restart (everything reported, nothing to write).
    hwm2, _, busy2_s, metrics2 = _until_idle(bench, ns)
    bench.details["memory"] = {
        "alerts": len(alerts),
        "reports": len(reports),
        "reports_created": made,
        "resume_seconds": round(busy_s, 1),
        "operator_hwm_kb": hwm,
        "operator_rss_end_kb": rss,
        "alerts_reported": reported,
        "restart_hwm_kb": hwm2,
        "restart_seconds": round(busy2_s, 1),
    }
    op_start = bench.details.get("operator_rss_start_kb", 0)
    # The operator lists every FalcoAlert but only the AlertReports reviewed as false positives.
    decoded = _decoded_kb(alerts) * len(alerts) / 1024
    bench.details["memory"]["decoded_alerts_mb"] = round(decoded)
    bench.row(
        f"operator peak RSS ({len(alerts):,} FalcoAlerts pending + {len(reports):,} AlertReports)",
        f"{hwm / 1024:.0f} MB",
        f"empty namespace: {op_start / 1024:.0f} MB; the {len(alerts):,} FalcoAlerts decoded as Python "
        f"dicts: {decoded:.0f} MB (reports are not listed)",
        "",
        "< 250 MB",
        hwm / 1024 < 250,
        resumed=reported,
        resume_seconds=round(busy_s, 1),
    )
    bench.row(
        f"operator peak RSS, restarted with the same {len(alerts):,} alerts all reported",
        f"{hwm2 / 1024:.0f} MB",
        f"idle again after {busy2_s:.0f} s",
        "",
        "< 250 MB",
        hwm2 / 1024 < 250,
    )
    rec_hwm = bench.details.get("receiver_hwm_kb", 0)
    rec_start = bench.details.get("receiver_rss_start_kb", 0)
    bench.row(
        f"receiver peak RSS (after {bench.details.get('receiver_seq_alerts', 0) + len(alerts):,} new "
        f"alerts + {bench.args.dup_count:,} repeats)",
        f"{rec_hwm / 1024:.0f} MB",
        f"at start: {rec_start / 1024:.0f} MB",
        "",
        "< 250 MB",
        0 < rec_hwm / 1024 < 250,
    )
    bench.check("memory: every FalcoAlert resumed as Reported", len(alerts), reported)
    bench.check(
        "memory: no report written twice (reports_written delta 0, one report per alert)",
        len(alerts),
        len(reports)
        + sum(v for k, v in metrics.items() if k.startswith("falco_reporter_reports_written_total")),
    )
    bench.check(
        "memory: the restart wrote nothing (reports_written delta 0)",
        0,
        sum(v for k, v in metrics2.items() if k.startswith("falco_reporter_reports_written_total")),
    )


def _until_idle(bench: Bench, ns: str) -> tuple[int, int, float, dict[str, float]]:
    """Run the operator on ``ns`` until its CPU goes idle: (peak RSS kB, RSS kB, seconds, metrics)."""
    op = S.Reporter(
        bench.kubeconfig, "run", bench.work, "--no-receiver", "--namespace", ns, health_port=S.free_port()
    )
    op.wait_healthy()
    bench.pids.append(op.pid)
    started = time.monotonic()
    idle, last = 0, S.cpu_seconds(op.pid)
    while time.monotonic() - started < bench.args.memory_timeout and idle < 3:
        time.sleep(2)
        now = S.cpu_seconds(op.pid)
        idle = idle + 1 if now - last < 0.1 and time.monotonic() - started > 10 else 0
        last = now
    busy_s = time.monotonic() - started
    hwm, rss = S.status_kb(op.pid, "VmHWM"), S.status_kb(op.pid, "VmRSS")
    metrics = op.metrics()
    op.stop()
    return hwm, rss, busy_s, metrics


def _decoded_kb(objects: list[dict[str, Any]], sample: int = 200) -> float:
    """Average size of one object decoded from JSON into Python dicts (what kopf holds per event)."""
    if not objects:
        return 0.0
    texts = [json.dumps(o) for o in objects[:sample]]
    tracemalloc.start()
    decoded = [json.loads(t) for t in texts]
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del decoded
    return size / len(texts) / 1024
