"""Prometheus metrics shared by the receiver, the operator and the report writers.

One module-level registry so ``/metrics`` shows everything the process does; the benchmark
reads its counts from here and checks them against what it sent.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

ALERTS_RECEIVED = Counter("falco_reporter_alerts_received", "Alert requests received", registry=REGISTRY)
ALERTS_ACCEPTED = Counter(
    "falco_reporter_alerts_accepted", "Alerts acknowledged with 202", ["outcome"], registry=REGISTRY
)
ALERTS_REJECTED = Counter(
    "falco_reporter_alerts_rejected", "Alert requests refused, by reason", ["reason"], registry=REGISTRY
)
ACK_LATENCY = Histogram(
    "falco_reporter_ack_latency_seconds",
    "Time to acknowledge an accepted alert",
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PENDING_REPEATS = Gauge(
    "falco_reporter_pending_repeat_objects",
    "FalcoAlerts with repeat counts waiting to be flushed",
    registry=REGISTRY,
)
FLUSHES = Counter(
    "falco_reporter_flush_patches", "Occurrence patches written, by result", ["result"], registry=REGISTRY
)
INGEST_DROPPED = Counter(
    "falco_reporter_ingest_dropped",
    "Acknowledged alerts or repeat counts given up on after bounded retries, by reason (also logged)",
    ["reason"],
    registry=REGISTRY,
)
JOURNAL_DEPTH = Gauge("falco_reporter_journal_entries", "Journal entries not yet stored", registry=REGISTRY)
JOURNAL_BYTES = Gauge(
    "falco_reporter_journal_bytes", "Bytes of journal entries not yet stored", registry=REGISTRY
)
JOURNAL_OLDEST_AGE = Gauge(
    "falco_reporter_journal_oldest_entry_age_seconds",
    "Age of the oldest journal entry not yet stored",
    registry=REGISTRY,
)
JOURNAL_APPENDED = Counter(
    "falco_reporter_journal_appended", "Entries appended to the journal", registry=REGISTRY
)
JOURNAL_DRAINED = Counter(
    "falco_reporter_journal_drained",
    "Journal entries written to FalcoAlerts (rate() = drain rate)",
    registry=REGISTRY,
)
JOURNAL_FULL = Counter(
    "falco_reporter_journal_full_rejections",
    "Alerts refused (503) because the journal was full",
    registry=REGISTRY,
)
JOURNAL_CORRUPT = Counter(
    "falco_reporter_journal_corrupt", "Journal records or files found damaged and skipped", registry=REGISTRY
)
JOURNAL_FSYNC = Histogram(
    "falco_reporter_journal_fsync_seconds",
    "Time of one group commit (fsync of the write-ahead log)",
    registry=REGISTRY,
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
REPORTS = Counter(
    "falco_reporter_reports_written",
    "AlertReports created, by writer and verdict",
    ["writer", "verdict"],
    registry=REGISTRY,
)
REPORT_LATENCY = Histogram(
    "falco_reporter_report_seconds",
    "Time from handler start to report created",
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ENRICHMENT_GAPS = Counter(
    "falco_reporter_enrichment_missing_objects",
    "Objects enrichment looked up but did not find",
    ["kind"],
    registry=REGISTRY,
)
LLM_CALLS = Counter("falco_reporter_llm_calls", "Model calls, by result", ["result"], registry=REGISTRY)
LLM_ANSWERS = Counter(
    "falco_reporter_llm_answers",
    "Model answers by provider and outcome: accepted, flagged (accepted with sense findings), rejected "
    "(unparseable or failing the checks), timeout, error (no answer), unsupported (the server refused the "
    "structured-output method)",
    ["provider", "outcome"],
    registry=REGISTRY,
)
LLM_FALLBACKS = Counter(
    "falco_reporter_llm_fallbacks",
    "Reports the built-in writer wrote after the model's answers were rejected, per provider",
    ["provider"],
    registry=REGISTRY,
)
LLM_TOKENS = Counter("falco_reporter_llm_tokens", "Tokens used by model calls", registry=REGISTRY)
LLM_CACHE_HITS = Counter(
    "falco_reporter_llm_cache_hits", "Reports answered from the LLM answer cache", registry=REGISTRY
)
LLM_BUDGET_REJECTIONS = Counter(
    "falco_reporter_llm_budget_rejections", "Reports not sent to the model: over budget", registry=REGISTRY
)
LLM_LATENCY = Histogram(
    "falco_reporter_llm_seconds",
    "Model call latency",
    registry=REGISTRY,
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 40, 80, 160),
)


def exposition() -> bytes:
    """The text exposition format of every metric."""
    return generate_latest(REGISTRY)


INCIDENT_REFRESHES = Counter(
    "falco_reporter_incident_refreshes", "Coalesced re-reads of an incident's reports", registry=REGISTRY
)
INCIDENT_UPDATES = Counter(
    "falco_reporter_incident_updates",
    "Reports patched because their incident changed (verdict, severity or timeline)",
    registry=REGISTRY,
)
