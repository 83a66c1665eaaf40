"""Phase 5, the LLM storm: 20 patterns x 50 pods through the operator in-process with a fake model."""

from __future__ import annotations

import logging
import time
from collections import Counter

from bench import support as S
from bench.harness import Bench, strip_acked, wait_until
from bench.loadgen import percentile


def storm(bench: Bench) -> None:
    # Imported here: it loads the operator runtime and LangChain, which no other phase needs.
    from bench.storm import InProcessOperator, metric_total

    print(
        f"\n[5] LLM storm: {bench.args.storm_count:,} alerts = 20 patterns x 50 pods x 10 repeats, "
        f"fake model {bench.args.llm_delay}s/call, operator in-process",
        flush=True,
    )
    ns = bench.ns("storm")
    run_id = f"{bench.run_id}s"
    patterns, pods = 20, 50
    # Replicas of one workload: the answer cache is scoped per namespace and workload.
    bench.kube.create_pods(
        ns,
        [f"{run_id}-pod-{i}" for i in range(pods)],
        "docker.io/library/nginx:1.27",
        replica_set=f"{run_id}-rs",
    )
    port = S.free_port()
    # kopf logs into this process's logging: keep it in a file, not on the benchmark's terminal.
    logging.basicConfig(filename=bench.work / "in-process-operator.log", level=logging.INFO, force=True)
    op = InProcessOperator(bench.kubeconfig, ns, port, delay=bench.args.llm_delay)
    calls0, hits0 = (
        metric_total("falco_reporter_llm_calls"),
        metric_total("falco_reporter_llm_cache_hits"),
    )
    watcher = S.Watcher(bench.kubeconfig, ns, "alertreports")
    watcher.start()
    watcher.ready.wait(10)
    op.start()
    try:
        res = bench.loadgen(
            op.url, "storm", ns, bench.args.storm_count, run_id=run_id, record=True, duration=120
        )
        first: dict[str, float] = {}
        for _, name, sent in res.pop("acked"):
            first[name] = min(sent, first.get(name, sent))
        wait_until(lambda: len(watcher.seen) >= len(first), bench.args.storm_timeout)
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
    bench.details["storm"] = {
        "send": strip_acked(res),
        "fingerprints_acked": len(first),
        "reports_seen": len(watcher.seen),
        "fake_calls": fake["calls"],
        "fake_narrative_calls": fake.get("narratives", 0),
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
    narratives = fake.get("narratives", 0)
    report_calls = fake["calls"] - narratives
    bench.row(
        f"LLM storm{tag}: model calls for reports (fake's count)",
        f"{report_calls} calls (+{narratives} incident narratives)",
        f"{patterns} answer-cache keys (rule+image+cmdline); {pods} incidents",
        f"{report_calls / patterns:.1f}x",
        f"= {patterns}",
        report_calls == patterns,
    )
    bench.row(
        f"LLM storm{tag}: cache hits / reports",
        f"{op.writer.cache.hits} / {len(watcher.seen)}",
        f"expected {expected_reports - patterns} / {expected_reports}",
        "",
        f"= {expected_reports - patterns}",
        op.writer.cache.hits == expected_reports - patterns,
        writers=dict(writers),
    )
    bench.row(
        f"LLM storm{tag}: report latency p50 / p95 / p99 (first POST -> report)",
        f"{pct[50]:.1f} / {pct[95]:.1f} / {pct[99]:.1f} s",
        f"{patterns} calls x {bench.args.llm_delay}s serial = {patterns * bench.args.llm_delay:.0f}s",
        "",
        "(context)",
        None,
    )
    bench.check(f"storm{tag}: one report per fingerprint", expected_reports, len(watcher.seen))
    bench.check(f"storm{tag}: metrics LLM_CALLS = fake's calls", fake["calls"], calls_metric)
    bench.check(f"storm{tag}: metrics LLM_CACHE_HITS = writer cache hits", op.writer.cache.hits, hits_metric)
