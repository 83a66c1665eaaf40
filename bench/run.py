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
   receiver vs no-op server; Falcosidekick itself cannot be built here;
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
import contextlib
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import support as S  # noqa: E402
from bench.loadgen import Payloads, percentile  # noqa: E402
from falco_reporter.models.falco import normalise, object_name, parse_alert_body  # noqa: E402

CONCURRENCY = 8
FLUSH = 2.0


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:5]
        self.work = Path(tempfile.mkdtemp(prefix="falco-reporter-bench-"))
        self.rows: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.details: dict[str, Any] = {}
        self.cluster: Any = None
        self.kubeconfig = ""
        self.kube: S.Kube
        self.pids: list[int] = []
        self.receiver: S.Reporter | None = None
        self.profiles: dict[str, list[str]] = {}

    # --- helpers ---------------------------------------------------------------------------

    def ns(self, what: str) -> str:
        name = f"bench-{what}-{self.run_id}"
        self.kube.ensure_namespace(name)
        return name

    def row(
        self,
        measure: str,
        figure: str,
        reference: str = "",
        ratio: str = "",
        target: str = "",
        met: bool | None = None,
        **data: Any,
    ) -> None:
        self.rows.append(
            {
                "measure": measure,
                "figure": figure,
                "reference": reference,
                "ratio": ratio,
                "target": target,
                "met": met,
                **data,
            }
        )
        mark = {True: "met", False: "MISSED", None: ""}[met]
        print(
            f"  {measure}: {figure}  [ref {reference or '-'}; ratio {ratio or '-'}; target {target or '-'}] {mark}",
            flush=True,
        )

    def check(self, what: str, expected: float, actual: float, *, at_least: bool = False) -> bool:
        ok = actual >= expected if at_least else actual == expected
        self.checks.append(
            {
                "check": what,
                "expected": expected,
                "actual": actual,
                "ok": ok,
                "rule": ">=" if at_least else "==",
            }
        )
        return ok

    def machine(self) -> S.MachineCpu:
        return S.MachineCpu(lambda: [p for p in self.pids if Path(f"/proc/{p}").exists()])

    def loadgen(
        self,
        url: str,
        pattern: str,
        namespace: str,
        count: int,
        *,
        concurrency: int = CONCURRENCY,
        duration: float = 120,
        rate: float = 0,
        run_id: str = "",
        start: int = 0,
        record: bool = False,
        timeout: float = 600,
    ) -> dict[str, Any]:
        args = [
            "--url",
            url,
            "--pattern",
            pattern,
            "--namespace",
            namespace,
            "--count",
            str(count),
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
            "--rate",
            str(rate),
            "--run-id",
            run_id or self.run_id,
            "--start",
            str(start),
        ]
        return S.run_module("loadgen", *args, *(["--record"] if record else []), timeout=timeout)

    @contextlib.contextmanager
    def profile(self, pid: int, name: str, seconds: float) -> Iterator[None]:
        """py-spy (GIL-holding samples only) of ``pid`` while the block runs, with --profile."""
        spy = str(Path(sys.executable).parent / "py-spy")
        if self.args.profile and not Path(spy).exists():
            print("installing py-spy into the venv for --profile", flush=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True, timeout=300
            )
        proc = None
        if self.args.profile:
            out = self.work / f"profile-{name}.txt"
            proc = subprocess.Popen(
                [
                    spy,
                    "record",
                    "-p",
                    str(pid),
                    "-d",
                    str(int(seconds)),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "--gil",
                    "--nonblocking",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        try:
            yield
        finally:
            if proc is not None:
                proc.wait(seconds + 30)
                self.profiles[name] = _top_frames(out) if out.exists() else ["py-spy wrote no profile"]

    # --- setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        from falco_reporter.devcluster.cluster import LocalCluster, apply_crds

        existing = os.environ.get("KUBECONFIG")
        if existing and not self.args.own_cluster:
            self.kubeconfig = existing
            print(f"using the cluster of KUBECONFIG={existing}", flush=True)
        else:
            started = time.monotonic()
            self.cluster = LocalCluster().start()
            self.kubeconfig = str(self.cluster.kubeconfig)
            self.pids += list(self.cluster.pids.values())
            print(
                f"LocalCluster up in {time.monotonic() - started:.1f}s (etcd + kube-apiserver on loopback)",
                flush=True,
            )
        apply_crds(self.kubeconfig, ROOT / "crds")
        self.kube = S.Kube(self.kubeconfig)
        host = self.kube.api.configuration.host.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"bench: the API server must be on loopback, not {host}")
        self.kube.ensure_namespace("falco-reporter")

    def teardown(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
        if self.cluster is not None:
            self.cluster.stop()
        elif self.kubeconfig:  # someone else's cluster: remove what we created
            for ns in self.kube.core.list_namespace(label_selector="falco-reporter-bench=1").items:
                if ns.metadata.name.endswith(self.run_id):
                    self.kube.core.delete_namespace(ns.metadata.name)
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    def note_receiver_memory(self) -> None:
        if self.receiver is not None and self.receiver.proc.poll() is None:
            hwm = S.status_kb(self.receiver.pid, "VmHWM")
            self.details["receiver_hwm_kb"] = max(hwm, self.details.get("receiver_hwm_kb", 0))

    def start_receiver(self) -> S.Reporter:
        if self.receiver is None:
            rec = self.receiver = S.Reporter(
                self.kubeconfig, "receiver", self.work, "--flush-interval", str(FLUSH)
            )
            rec.wait_healthy()
            self.pids.append(rec.pid)
            self.details["receiver_rss_start_kb"] = S.status_kb(rec.pid, "VmRSS")
        return self.receiver

    # --- 1. repeats of one alert --------------------------------------------------------------

    def dup(self) -> None:
        print("\n[1] repeats of one alert (one fingerprint), one receiver process", flush=True)
        ns = self.ns("dup")
        rec = self.start_receiver()
        warm = self.loadgen(rec.url, "dup", ns, 2000)
        noop_port = S.free_port()
        noop = S.start_module("noop", "--port", str(noop_port))
        try:
            S.wait_http(f"http://127.0.0.1:{noop_port}/healthz")
            self.pids.append(noop.pid)
            ref = self.loadgen(
                f"http://127.0.0.1:{noop_port}",
                "dup",
                ns,
                self.args.dup_count,
                duration=self.args.dup_seconds / 2,
            )
        finally:
            noop.terminate()
            noop.wait(10)
        before = rec.metrics()
        cpu0 = S.cpu_seconds(rec.pid)
        machine = self.machine().start()
        with self.profile(rec.pid, "dup", self.args.dup_seconds * 0.8):
            res = self.loadgen(rec.url, "dup", ns, self.args.dup_count, duration=self.args.dup_seconds)
        usage = machine.stop()
        receiver_cores = (S.cpu_seconds(rec.pid) - cpu0) / res["elapsed_s"]
        time.sleep(2 * FLUSH + 1)
        after = rec.metrics()
        spec = normalise(parse_alert_body(Payloads("dup", ns, self.run_id).body(0)))
        obj = self.kube.get(ns, "falcoalerts", object_name(spec)) or {}
        stored = int(((obj.get("status") or {}).get("occurrences") or {}).get("count") or (1 if obj else 0))
        acked = res["statuses"].get("202", 0)
        lat = res["latency_ms"]
        self.details["dup"] = {
            "result": _strip(res),
            "reference_noop": _strip(ref),
            "warmup": _strip(warm),
            "receiver_cores": round(receiver_cores, 2),
            "machine": usage,
        }
        self.row(
            "repeats: sustained rate (1 receiver, 8 keep-alive conns)",
            f"{fmt(res['rate_per_s'])} alerts/s",
            f"no-op aiohttp server: {fmt(ref['rate_per_s'])}/s",
            f"{res['rate_per_s'] / ref['rate_per_s']:.0%}",
            ">= 5,000/s",
            res["rate_per_s"] >= 5000,
            receiver_cores=round(receiver_cores, 2),
            others_cores=usage["others_cores"],
        )
        self.row(
            "repeats: ack latency p50 / p99",
            f"{fmt(lat['p50'], 2)} / {fmt(lat['p99'], 2)} ms",
            f"no-op: {fmt(ref['latency_ms']['p50'], 2)} / {fmt(ref['latency_ms']['p99'], 2)} ms",
            "",
            "p99 < 20 ms",
            lat["p99"] < 20,
        )
        sent = res["sent"]
        self.check(
            "dup: /metrics alerts_received delta = requests sent",
            sent,
            S.delta(after, before, "falco_reporter_alerts_received_total"),
        )
        self.check(
            "dup: /metrics alerts_accepted{merged} delta = 202s",
            acked,
            S.delta(after, before, "falco_reporter_alerts_accepted_total{outcome=merged}"),
        )
        self.check(
            "dup: /metrics alerts_rejected delta = 0",
            0,
            sum(
                S.delta(after, before, k)
                for k in after
                if k.startswith("falco_reporter_alerts_rejected_total")
            ),
        )
        self.check(
            "dup: /metrics flush_patches{ok} delta >= 1",
            1,
            S.delta(after, before, "falco_reporter_flush_patches_total{result=ok}"),
            at_least=True,
        )
        self.check(
            "dup: stored status.occurrences.count = every 202 (warm-up + run)",
            warm["statuses"].get("202", 0) + acked,
            stored,
        )

    # --- 2. new alerts ----------------------------------------------------------------------

    def unique(self) -> None:
        print(
            "\n[2] new alerts: FalcoAlerts persisted/s vs direct API creates (same concurrency)", flush=True
        )
        rec = self.start_receiver()
        ns_recv, ns_raw, ns_py = self.ns("unique"), self.ns("raw"), self.ns("pyclient")
        per, rounds = self.args.unique_count // self.args.unique_rounds, self.args.unique_rounds
        totals: dict[str, list[float]] = {"recv": [0, 0], "raw": [0, 0], "py": [0, 0]}
        acked: set[str] = set()
        sent = 0
        before = rec.metrics()
        cpu0 = S.cpu_seconds(rec.pid)
        machine = self.machine().start()
        runs: list[dict[str, Any]] = []
        for r in range(rounds):
            order = ["raw", "recv", "py"] if r % 2 == 0 else ["py", "recv", "raw"]
            for kind in order:
                if kind == "recv":
                    with self.profile(rec.pid, f"unique-{r}", 5):
                        res = self.loadgen(rec.url, "unique", ns_recv, per, start=r * per, record=True)
                    acked |= {name for _, name, _ in res.pop("acked")}
                    sent += res["sent"]
                    done = res["statuses"].get("202", 0)
                else:
                    target = ns_raw if kind == "raw" else ns_py
                    res = S.run_module(
                        "apiload",
                        "--kubeconfig",
                        self.kubeconfig,
                        "--namespace",
                        target,
                        "--run-id",
                        f"{self.run_id}{kind}{r}",
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
        stored = self.kube.names(ns_recv, "falcoalerts")
        self.details["unique"] = {
            "runs": runs,
            "rates": rate,
            "machine": usage,
            "receiver_cores_while_receiving": round(receiver_cores, 2),
        }
        self.row(
            "new alerts: FalcoAlerts persisted/s via receiver",
            f"{fmt(rate['recv'])}/s",
            f"direct API creates (aiohttp, 8 conns): {fmt(rate['raw'])}/s",
            f"{rate['recv'] / rate['raw']:.0%}",
            ">= 70%",
            rate["recv"] / rate["raw"] >= 0.70,
            others_cores=usage["others_cores"],
        )
        self.row(
            "new alerts: same, vs the kubernetes Python client (8 threads)",
            f"{fmt(rate['recv'])}/s",
            f"kubernetes client: {fmt(rate['py'])}/s",
            f"{rate['recv'] / rate['py']:.0%}",
            "(context)",
            None,
        )
        self.check("unique: every 202 is a stored FalcoAlert", len(acked), len(acked & stored))
        self.check(
            "unique: /metrics alerts_received delta = requests sent",
            sent,
            S.delta(after, before, "falco_reporter_alerts_received_total"),
        )
        self.check(
            "unique: /metrics alerts_accepted{created} delta = 202s",
            len(acked),
            S.delta(after, before, "falco_reporter_alerts_accepted_total{outcome=created}"),
        )
        self.check(
            "unique: /metrics flush_patches delta = 0 (no repeats, no status writes)",
            0,
            sum(
                S.delta(after, before, k) for k in after if k.startswith("falco_reporter_flush_patches_total")
            ),
        )

    # --- 3. sequential sender ----------------------------------------------------------------

    def sequential(self) -> None:
        print("\n[3] one request at a time (Falcosidekick's maxconcurrentrequests=1 behaviour)", flush=True)
        rec = self.start_receiver()
        self.row(
            "through a real Falcosidekick", "blocked: falcosidekick cannot be built here", "", "", "", None
        )
        ns = self.ns("seq")
        noop_port = S.free_port()
        noop = S.start_module("noop", "--port", str(noop_port))
        try:
            S.wait_http(f"http://127.0.0.1:{noop_port}/healthz")
            ref = self.loadgen(
                f"http://127.0.0.1:{noop_port}", "dup", ns, self.args.seq_count, concurrency=1, duration=30
            )
        finally:
            noop.terminate()
            noop.wait(10)
        before = rec.metrics()
        dup = self.loadgen(
            rec.url, "dup", ns, self.args.seq_count, concurrency=1, duration=30, run_id=f"{self.run_id}q"
        )
        new = self.loadgen(
            rec.url,
            "unique",
            ns,
            self.args.seq_count // 3,
            concurrency=1,
            duration=60,
            run_id=f"{self.run_id}n",
            record=True,
        )
        after = rec.metrics()
        acked = {name for _, name, _ in new.pop("acked")}
        stored = self.kube.names(ns, "falcoalerts")
        lost = (dup["sent"] - dup["statuses"].get("202", 0)) + (new["sent"] - len(acked))
        self.details["sequential"] = {"noop": _strip(ref), "repeats": _strip(dup), "new": new}
        self.row(
            "proxy: sequential sender, repeats (1 conn, wait for each answer)",
            f"{fmt(dup['rate_per_s'])}/s, p99 {fmt(dup['latency_ms']['p99'], 2)} ms",
            f"same sender vs no-op server: {fmt(ref['rate_per_s'])}/s",
            f"{dup['rate_per_s'] / ref['rate_per_s']:.0%}",
            "zero loss",
            lost == 0,
        )
        self.row(
            "proxy: sequential sender, new alerts",
            f"{fmt(new['rate_per_s'])}/s, p99 {fmt(new['latency_ms']['p99'], 1)} ms",
            f"no-op: {fmt(ref['rate_per_s'])}/s",
            f"{new['rate_per_s'] / ref['rate_per_s']:.0%}",
            "zero loss",
            lost == 0 and acked <= stored,
        )
        self.check(
            "sequential: every request answered 202 (zero loss)",
            dup["sent"] + new["sent"],
            dup["statuses"].get("202", 0) + len(acked),
        )
        self.check(
            "sequential: every 202 for a new alert is a stored FalcoAlert", len(acked), len(acked & stored)
        )
        self.check(
            "sequential: /metrics alerts_received delta = requests sent",
            dup["sent"] + new["sent"],
            S.delta(after, before, "falco_reporter_alerts_received_total"),
        )
        self.details["receiver_seq_alerts"] = len(stored)

    # --- 4. alert -> report latency ----------------------------------------------------------

    def latency(self) -> None:
        print(
            "\n[4] POST -> AlertReport latency at a steady 50 alerts/s (and 20/s), built-in writer",
            flush=True,
        )
        if self.receiver is not None:
            self.note_receiver_memory()
            self.receiver.stop()
        ns = self.ns("latency")
        op = S.Reporter(
            self.kubeconfig,
            "run",
            self.work,
            "--namespace",
            ns,
            "--fallback-namespace",
            ns,
            "--flush-interval",
            str(FLUSH),
        )
        op.wait_healthy()
        self.pids.append(op.pid)
        self.details["operator_rss_start_kb"] = S.status_kb(op.pid, "VmRSS")
        watcher = S.Watcher(self.kubeconfig, ns, "alertreports")
        watcher.start()
        watcher.ready.wait(10)
        time.sleep(1)
        apiserver = self.cluster.pids.get("kube-apiserver") if self.cluster is not None else None
        runs: dict[int, dict[str, Any]] = {}
        try:
            warm = self.loadgen(op.url, "unique", ns, 20, rate=10, run_id=f"{self.run_id}w", record=True)
            _wait(lambda: len(watcher.seen) >= len(warm["acked"]), 60)
            for rate, count in ((20, self.args.latency_count * 2 // 5), (50, self.args.latency_count)):
                before = op.metrics()
                cpu0, api0 = S.cpu_seconds(op.pid), S.cpu_seconds(apiserver) if apiserver else 0.0
                machine = self.machine().start()
                res = self.loadgen(
                    op.url,
                    "unique",
                    ns,
                    count,
                    rate=rate,
                    duration=count / rate + 30,
                    run_id=f"{self.run_id}l{rate}",
                    record=True,
                )
                names = {name: sent for _, name, sent in res.pop("acked")}
                _wait(lambda names=names: all(n in watcher.seen for n in names), 120)
                usage = machine.stop()
                time.sleep(1)
                after = op.metrics()
                latencies = [watcher.seen[n] - t for n, t in names.items() if n in watcher.seen]
                runs[rate] = {
                    "ack": _strip(res),
                    "names": len(names),
                    "missing": len(names) - len(latencies),
                    "report_s": {q: percentile(latencies, q) for q in (50, 95, 99)},
                    "machine": usage,
                    "operator_ms_per_alert": round(
                        1000 * (S.cpu_seconds(op.pid) - cpu0) / max(1, len(names)), 1
                    ),
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
                    "created": S.delta(
                        after, before, "falco_reporter_alerts_accepted_total{outcome=created}"
                    ),
                }
        finally:
            watcher.stop()
        self.details["latency"] = runs
        self.details["operator_embedded_hwm_kb"] = S.status_kb(op.pid, "VmHWM")
        op.stop()
        low, high = runs[20], runs[50]
        pct = high["report_s"]
        cost = f"; per alert: operator {high['operator_ms_per_alert']} ms CPU" + (
            f", kube-apiserver {high['apiserver_ms_per_alert']} ms CPU"
            if high["apiserver_ms_per_alert"]
            else ""
        )
        self.row(
            "alert -> AlertReport latency p50 / p95 / p99 (50/s, built-in writer)",
            f"{pct[50]:.2f} / {pct[95]:.2f} / {pct[99]:.2f} s"
            + (f", {high['missing']} reports missing" if high["missing"] else ""),
            f"same at 20/s: {low['report_s'][50]:.2f} / {low['report_s'][95]:.2f} / "
            f"{low['report_s'][99]:.2f} s; POST->202 p50 {fmt(high['ack']['latency_ms']['p50'], 0)} ms"
            + cost,
            "",
            "p95 < 1 s",
            pct[95] < 1.0 and high["missing"] == 0,
            machine_busy_pct=high["machine"]["machine_busy_pct"],
            others_cores=high["machine"]["others_cores"],
        )
        for rate, run in runs.items():
            self.check(
                f"latency {rate}/s: every 202 got exactly one AlertReport",
                run["names"],
                run["names"] - run["missing"],
            )
            self.check(
                f"latency {rate}/s: /metrics reports_written delta = alerts acknowledged",
                run["names"],
                run["written"],
            )
            self.check(
                f"latency {rate}/s: /metrics alerts_accepted{{created}} delta = 202s",
                run["names"],
                run["created"],
            )

    # --- 5. LLM storm ------------------------------------------------------------------------

    def storm(self) -> None:
        from bench.storm import InProcessOperator, metric_total

        print(
            f"\n[5] LLM storm: {self.args.storm_count:,} alerts = 20 patterns x 50 pods x 10 repeats, "
            f"fake model {self.args.llm_delay}s/call, operator in-process",
            flush=True,
        )
        ns = self.ns("storm")
        run_id = f"{self.run_id}s"
        patterns, pods = 20, 50
        self.kube.create_pods(ns, [f"{run_id}-pod-{i}" for i in range(pods)], "docker.io/library/nginx:1.27")
        port = S.free_port()
        # kopf logs into this process's logging: keep it in a file, not on the benchmark's terminal.
        logging.basicConfig(filename=self.work / "in-process-operator.log", level=logging.INFO, force=True)
        op = InProcessOperator(
            self.kubeconfig, ns, port, delay=self.args.llm_delay
        )
        calls0, hits0 = (
            metric_total("falco_reporter_llm_calls"),
            metric_total("falco_reporter_llm_cache_hits"),
        )
        watcher = S.Watcher(self.kubeconfig, ns, "alertreports")
        watcher.start()
        watcher.ready.wait(10)
        op.start()
        try:
            res = self.loadgen(
                op.url, "storm", ns, self.args.storm_count, run_id=run_id, record=True, duration=120
            )
            first: dict[str, float] = {}
            for _, name, sent in res.pop("acked"):
                first[name] = min(sent, first.get(name, sent))
            _wait(lambda: len(watcher.seen) >= len(first), self.args.storm_timeout)
            time.sleep(1)
        finally:
            op.stop()
            watcher.stop()
        fake = op.model.counter
        latencies = [watcher.seen[n] - t for n, t in first.items() if n in watcher.seen]
        writers: Counter[str] = Counter()
        for obj in watcher.objects.values():
            w = obj["spec"].get("writer", {})
            if w.get("fallbackReason"):
                writers["builtin fallback: " + w["fallbackReason"].split(":")[0][:60]] += 1
            elif w.get("cacheHit"):
                writers["llm (cache hit)"] += 1
            else:
                writers[f"{w.get('backend')} (model call)"] += 1
        pct = {q: percentile(latencies, q) for q in (50, 95, 99)}
        calls_metric = metric_total("falco_reporter_llm_calls") - calls0
        hits_metric = metric_total("falco_reporter_llm_cache_hits") - hits0
        expected_reports = patterns * pods
        self.details["storm"] = {
            "send": _strip(res),
            "fingerprints_acked": len(first),
            "reports_seen": len(watcher.seen),
            "fake_calls": fake["calls"],
            "fake_max_in_flight": fake["max_in_flight"],
            "writer_model_calls": op.writer.model_calls,
            "writer_cache_hits": op.writer.cache.hits,
            "metric_llm_calls": calls_metric,
            "metric_llm_cache_hits": hits_metric,
            "writers": dict(writers),
            "report_latency_s": pct,
            "config": {
                "concurrency": op.config.concurrency,
                "calls_per_hour": op.config.calls_per_hour,
                "cache_size": op.config.cache_size,
                "timeout_s": op.config.timeout_s,
            },
        }
        tag = ""
        self.row(
            f"LLM storm{tag}: model calls (fake's count)",
            f"{fake['calls']} calls",
            f"{patterns} answer-cache keys (rule+image+cmdline)",
            f"{fake['calls'] / patterns:.1f}x",
            f"= {patterns}",
            fake["calls"] == patterns,
        )
        self.row(
            f"LLM storm{tag}: cache hits / reports",
            f"{op.writer.cache.hits} / {len(watcher.seen)}",
            f"expected {expected_reports - patterns} / {expected_reports}",
            "",
            f"= {expected_reports - patterns}",
            op.writer.cache.hits == expected_reports - patterns,
            writers=dict(writers),
        )
        self.row(
            f"LLM storm{tag}: report latency p50 / p95 / p99 (first POST -> report)",
            f"{pct[50]:.1f} / {pct[95]:.1f} / {pct[99]:.1f} s",
            f"{patterns} calls x {self.args.llm_delay}s serial = {patterns * self.args.llm_delay:.0f}s",
            "",
            "(context)",
            None,
        )
        self.check(f"storm{tag}: one report per fingerprint", expected_reports, len(watcher.seen))
        self.check(f"storm{tag}: metrics LLM_CALLS = fake's calls", fake["calls"], calls_metric)
        self.check(
            f"storm{tag}: metrics LLM_CACHE_HITS = writer cache hits", op.writer.cache.hits, hits_metric
        )

    # --- 6. memory ---------------------------------------------------------------------------

    def memory(self) -> None:
        print("\n[6] peak RSS with 10,000 FalcoAlerts and 10,000 AlertReports present", flush=True)
        ns = f"bench-unique-{self.run_id}"
        alerts = self.kube.list(ns, "falcoalerts")
        owners = [[ns, a["metadata"]["name"], a["metadata"]["uid"]] for a in alerts]
        owners_file = self.work / "owners.json"
        owners_file.write_text(json.dumps(owners))
        made = S.run_module(
            "apiload",
            "--kubeconfig",
            self.kubeconfig,
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
        health = S.free_port()
        op = S.Reporter(
            self.kubeconfig, "run", self.work, "--no-receiver", "--namespace", ns, health_port=health
        )
        op.wait_healthy()
        self.pids.append(op.pid)
        started = time.monotonic()
        # The operator resumes every alert (report exists -> status Reported). Done when it goes idle.
        idle, last = 0, S.cpu_seconds(op.pid)
        while time.monotonic() - started < self.args.memory_timeout and idle < 3:
            time.sleep(2)
            now = S.cpu_seconds(op.pid)
            idle = idle + 1 if now - last < 0.1 and time.monotonic() - started > 10 else 0
            last = now
        busy_s = time.monotonic() - started
        hwm, rss = S.status_kb(op.pid, "VmHWM"), S.status_kb(op.pid, "VmRSS")
        metrics = op.metrics()
        alerts = self.kube.list(ns, "falcoalerts")
        reports = self.kube.list(ns, "alertreports")
        op.stop()
        reported = sum(
            1
            for a in alerts
            if any(
                c.get("type") == "Reported" and c.get("status") == "True"
                for c in (a.get("status") or {}).get("conditions", [])
            )
        )
        self.details["memory"] = {
            "alerts": len(alerts),
            "reports": len(reports),
            "reports_created": made,
            "resume_seconds": round(busy_s, 1),
            "operator_hwm_kb": hwm,
            "operator_rss_end_kb": rss,
            "alerts_reported": reported,
        }
        op_start = self.details.get("operator_rss_start_kb", 0)
        decoded = (_decoded_kb(alerts) * len(alerts) + _decoded_kb(reports) * len(reports)) / 1024
        self.details["memory"]["decoded_objects_mb"] = round(decoded)
        self.row(
            f"operator peak RSS ({len(alerts):,} FalcoAlerts + {len(reports):,} AlertReports, all resumed)",
            f"{hwm / 1024:.0f} MB",
            f"empty namespace: {op_start / 1024:.0f} MB; the {len(alerts) + len(reports):,} objects "
            f"decoded as Python dicts: {decoded:.0f} MB",
            "",
            "< 250 MB",
            hwm / 1024 < 250,
            resumed=reported,
            resume_seconds=round(busy_s, 1),
        )
        rec_hwm = self.details.get("receiver_hwm_kb", 0)
        rec_start = self.details.get("receiver_rss_start_kb", 0)
        self.row(
            f"receiver peak RSS (after {self.details.get('receiver_seq_alerts', 0) + len(alerts):,} new "
            f"alerts + {self.args.dup_count:,} repeats)",
            f"{rec_hwm / 1024:.0f} MB",
            f"at start: {rec_start / 1024:.0f} MB",
            "",
            "< 250 MB",
            0 < rec_hwm / 1024 < 250,
        )
        self.check("memory: every FalcoAlert resumed as Reported", len(alerts), reported)
        self.check(
            "memory: no report written twice (reports_written delta 0, one report per alert)",
            len(alerts),
            len(reports)
            + sum(v for k, v in metrics.items() if k.startswith("falco_reporter_reports_written_total")),
        )

    # --- output ------------------------------------------------------------------------------

    def table(self) -> str:
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
            for r in self.rows
        ]
        widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
        lines = [" | ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
        lines.append("")
        lines.append("metric checks (Prometheus /metrics and stored objects vs what was sent):")
        for c in self.checks:
            lines.append(
                f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}: expected {c['rule']} {fmt(c['expected'])}, "
                f"got {fmt(c['actual'])}"
            )
        return "\n".join(lines)

    def write(self, started: float) -> None:
        result = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "duration_s": round(time.monotonic() - started, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg_end": os.getloadavg(),
            },
            "args": vars(self.args),
            "rows": self.rows,
            "checks": self.checks,
            "details": self.details,
            "profiles": self.profiles,
        }
        out = Path(self.args.out)
        out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"\nwrote {out}", flush=True)


def _strip(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k != "acked"}


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


def _top_frames(path: Path, count: int = 25) -> list[str]:
    """The functions with most samples on their stack (inclusive %), from a py-spy raw profile."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        total += int(samples)
        for frame in {re.sub(r"\(.*/|:\d+\)$", lambda m: "(" if m.group(0).startswith("(") else ")", f)
                      for f in stack.split(";")}:
            inclusive[frame] += int(samples)
    return [f"{100 * n / max(1, total):.1f}% {frame}" for frame, n in inclusive.most_common(count)]


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small counts, a smoke run of every phase (~2 min)")
    p.add_argument(
        "--own-cluster", action="store_true", help="start a LocalCluster even if KUBECONFIG is set"
    )
    p.add_argument("--profile", action="store_true", help="record py-spy profiles of the receiver")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, profiles)")
    p.add_argument("--phases", default="dup,unique,sequential,latency,storm,memory")
    p.add_argument("--dup-count", type=int, default=200_000)
    p.add_argument("--dup-seconds", type=float, default=20)
    p.add_argument("--unique-count", type=int, default=10_000)
    p.add_argument("--unique-rounds", type=int, default=4)
    p.add_argument("--seq-count", type=int, default=3000)
    p.add_argument("--latency-count", type=int, default=1500)
    p.add_argument("--storm-count", type=int, default=10_000)
    p.add_argument("--storm-timeout", type=float, default=240)
    p.add_argument("--llm-delay", type=float, default=0.5)
    p.add_argument("--memory-timeout", type=float, default=300)
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = p.parse_args()
    if args.quick:
        args.dup_count, args.dup_seconds, args.unique_count, args.unique_rounds = 20_000, 5, 1000, 2
        args.seq_count, args.latency_count, args.storm_count = 600, 250, 2000
    started = time.monotonic()
    bench = Bench(args)
    phases = args.phases.split(",")
    try:
        bench.setup()
        if "dup" in phases or "unique" in phases or "sequential" in phases:
            for phase in ("dup", "unique", "sequential"):
                if phase in phases:
                    getattr(bench, phase)()
                    bench.note_receiver_memory()
        if "latency" in phases:
            bench.latency()
        if "storm" in phases:
            bench.storm()
        if "memory" in phases and "unique" in phases:
            bench.memory()
    finally:
        bench.teardown()
    print(
        f"\nfalco-reporter benchmark ({time.monotonic() - started:.0f}s, {os.cpu_count()} cores, "
        f"load average at end {os.getloadavg()[0]:.1f})\n",
        flush=True,
    )
    print(bench.table(), flush=True)
    bench.write(started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
