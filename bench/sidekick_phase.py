"""Phase 3b: through a real Falcosidekick, into the receiver vs into a no-op server, same run.

Falcosidekick answers its input at once and delivers each alert later from its webhook output, one
request at a time (its default ``maxconcurrentrequests``), on a new connection each time (it does not
read the answer's body, so Go cannot reuse the connection). The rate that matters is deliveries per
second: from the first POST to Falcosidekick until its own ``outputs_total`` counter has every alert.
Rounds alternate between the two targets, so background load on the shared machine hits both alike.
"""

from __future__ import annotations

import time
from typing import Any

from bench import support as S
from bench.harness import Bench, fmt, strip_acked, wait_until
from bench.loadgen import Payloads
from devcluster.sidekick import Falcosidekick, Webhook

ROUNDS = 2


def _through(bench: Bench, target: str, pattern: str, ns: str, count: int, run_id: str) -> dict[str, Any]:
    """Send ``count`` alerts to a fresh Falcosidekick aimed at ``target``; time until all are delivered."""
    with Falcosidekick(Webhook(f"{target}/v1/alerts"), bench.work) as fsk:
        # Warm-up (not timed): the target's first answers, e.g. the receiver creating the FalcoAlert.
        for i in range(20):
            fsk.post(Payloads(pattern, ns, f"{run_id}w").body(i))
        bench.pids.append(fsk.pid)
        if not wait_until(lambda: fsk.deliveries("ok") + fsk.deliveries("error") >= 20, 60):
            raise RuntimeError(f"falcosidekick warm-up not delivered: {fsk.log_text()}")
        base_ok, base_err = fsk.deliveries("ok"), fsk.deliveries("error")
        started = time.monotonic()
        sent = bench.loadgen(fsk.url, pattern, ns, count, concurrency=1, duration=120, run_id=run_id)
        taken = sent["statuses"].get("200", 0)
        deadline = started + 300
        done = ok = 0.0
        while time.monotonic() < deadline:
            ok, err = fsk.deliveries("ok") - base_ok, fsk.deliveries("error") - base_err
            done = ok + err
            if done >= taken:
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        errors = [line for line in fsk.log_text().splitlines() if "ERROR" in line][:5]
    return {
        "posted": sent["sent"],
        "taken": taken,
        "delivered_ok": ok,
        "delivered_error": done - ok,
        "elapsed_s": round(elapsed, 3),
        "rate_per_s": ok / elapsed,
        "input": strip_acked(sent),
        "errors": errors,
    }


def _sum(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds added up; the rate is all deliveries over all the time spent delivering."""
    out: dict[str, Any] = {"rounds": runs}
    for key in ("posted", "taken", "delivered_ok", "delivered_error", "elapsed_s"):
        out[key] = sum(r[key] for r in runs)
    out["rate_per_s"] = out["delivered_ok"] / out["elapsed_s"]
    out["errors"] = [e for r in runs for e in r["errors"]]
    return out


def sidekick(bench: Bench) -> None:
    print("\n[3b] through a real Falcosidekick (webhook output, 1 request at a time)", flush=True)
    rec = bench.start_receiver()
    count = bench.args.fsk_count
    noop_port = S.free_port()
    noop = S.start_module("noop", "--port", str(noop_port))
    results: dict[str, dict[str, Any]] = {}
    try:
        S.wait_http(f"http://127.0.0.1:{noop_port}/healthz")
        bench.pids.append(noop.pid)
        noop_url = f"http://127.0.0.1:{noop_port}"
        for pattern in ("dup", "unique"):
            ns = bench.ns(f"fsk-{pattern}")
            runs: dict[str, list[dict[str, Any]]] = {"noop": [], "recv": []}
            received = accepted = 0.0
            for r in range(ROUNDS):
                for kind in ("noop", "recv") if r % 2 == 0 else ("recv", "noop"):
                    run_id = f"{bench.run_id}{kind[0]}{pattern[0]}{r}"
                    if kind == "noop":
                        runs[kind].append(_through(bench, noop_url, pattern, ns, count, run_id))
                        continue
                    before = rec.metrics()
                    runs[kind].append(_through(bench, rec.url, pattern, ns, count, run_id))
                    after = rec.metrics()
                    # The warm-up's 20 alerts per round count too.
                    received += S.delta(after, before, "falco_reporter_alerts_received_total") - 20
                    accepted += (
                        sum(
                            S.delta(after, before, f"falco_reporter_alerts_accepted_total{{outcome={o}}}")
                            for o in ("created", "merged")
                        )
                        - 20
                    )
            results[f"noop-{pattern}"] = _sum(runs["noop"])
            results[pattern] = _sum(runs["recv"]) | {
                "receiver_received": received,
                "receiver_accepted": accepted,
            }
    finally:
        noop.terminate()
        noop.wait(10)
    bench.details["falcosidekick"] = results
    for pattern, label in (("dup", "repeats"), ("unique", "new alerts")):
        res, ref = results[pattern], results[f"noop-{pattern}"]
        lost = res["posted"] - res["delivered_ok"]
        ratio = res["rate_per_s"] / ref["rate_per_s"]
        bench.row(
            f"through a real Falcosidekick 2.34.1, {label}",
            f"{fmt(res['rate_per_s'])}/s, {fmt(lost)} lost",
            f"Falcosidekick into a no-op server: {fmt(ref['rate_per_s'])}/s",
            f"{ratio:.0%}",
            ">= 95%, zero loss" if pattern == "dup" else "zero loss",
            (ratio >= 0.95 if pattern == "dup" else True) and lost == 0,
        )
        bench.check(f"falcosidekick {label}: every POST taken (200)", res["posted"], res["taken"])
        bench.check(f"falcosidekick {label}: its webhook errors = 0", 0, res["delivered_error"])
        bench.check(
            f"falcosidekick {label}: receiver /metrics received = delivered",
            res["delivered_ok"],
            res["receiver_received"],
        )
        bench.check(
            f"falcosidekick {label}: receiver /metrics accepted = delivered",
            res["delivered_ok"],
            res["receiver_accepted"],
        )
    new = bench.kube.names(bench.ns("fsk-unique"), "falcoalerts")
    # Each receiver round's new alerts plus its 20 warm-up alerts.
    bench.check(
        "falcosidekick new alerts: every delivery is a stored FalcoAlert", ROUNDS * (count + 20), len(new)
    )
