"""``falco-reporter eval``: the configured writer over real and crafted alerts, measured.

Each case goes through the same ReportService as in the operator. Per case and in total it records
whether the model's answer was accepted, accepted with sense findings (flagged), or rejected until
the built-in writer took over (fallback); the latency, the tokens and every finding. Providers:
``builtin`` (no model), ``fake`` (each crafted case's canned ``answers``, replayed by a LangChain
fake model) or any LLM provider of :class:`LLMConfig` (llamacpp, ollama, openai-compatible, ...).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from falco_reporter.knowledge.base import KnowledgeBase, load
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import normalise, parse_alert_body
from falco_reporter.models.report import Occurrences
from falco_reporter.reporting.context import ReportWriter
from falco_reporter.reporting.llm_config import LLMConfig
from falco_reporter.reporting.service import ReportService

OUTCOMES = ("accepted", "flagged", "fallback", "builtin", "skipped")


@dataclass
class Case:
    name: str
    payload: dict[str, Any]
    enrichment: dict[str, Any] = field(default_factory=dict)
    answers: list[Any] | None = None
    """Canned model replies for the fake provider (crafted cases only)."""
    expect: str = ""
    """The outcome a crafted case must have with its canned answers."""


@dataclass
class CaseResult:
    case: str
    outcome: str
    latency_ms: int = 0
    tokens: int = 0
    attempts: int = 0
    findings: list[str] = field(default_factory=list)
    fallback_reason: str = ""
    expect: str = ""
    answers: list[dict[str, Any]] = field(default_factory=list)
    """Each attempt's narrative fields and outcome, so a reader can judge what was accepted."""

    @property
    def unexpected(self) -> bool:
        return bool(self.expect) and self.outcome != self.expect


def load_cases(real_dir: Path | None, cases_dir: Path | None, limit: int = 0) -> list[Case]:
    """Real samples (no canned answers), then crafted cases; ``limit`` caps each group."""
    real = sorted(real_dir.glob("*.json")) if real_dir else []
    crafted = sorted(cases_dir.glob("*.json")) if cases_dir else []
    if limit:
        real, crafted = real[:limit], crafted[:limit]
    cases = [Case(name=f"real/{p.stem}", payload=parse_alert_body(p.read_bytes())) for p in real]
    for p in crafted:
        data = json.loads(p.read_text(encoding="utf-8"))
        cases.append(
            Case(
                name=f"crafted/{p.stem}",
                payload=data["alert"],
                enrichment=data.get("enrichment", {}),
                answers=data.get("answers"),
                expect=data.get("expect", ""),
            )
        )
    return cases


WriterFactory = Callable[[Case], ReportWriter | None]


def writer_factory(provider: str, kb: KnowledgeBase, config: LLMConfig | None = None) -> WriterFactory:
    """How each case gets its writer: none (builtin), a fake per case, or one shared model."""
    if provider == "builtin":
        return lambda case: None
    from falco_reporter.reporting.chain import LLMWriter

    if provider == "fake":
        from falco_reporter.reporting.chain.fakes import scripted_model

        fake_config = LLMConfig(provider="ollama", model="fake", timeout_s=30.0)

        def fake(case: Case) -> ReportWriter | None:
            if case.answers is None:
                raise LookupError("no canned answers")
            return LLMWriter(fake_config, kb, model=scripted_model(case.answers))

        return fake
    if config is None or not config.enabled:
        raise ValueError(f"provider {provider!r} needs an LLM configuration")
    shared = LLMWriter(config, kb)  # loaded once: a local model takes seconds to load
    return lambda case: shared


async def run_case(case: Case, writer: ReportWriter | None, kb: KnowledgeBase, timeout: float) -> CaseResult:
    service = ReportService(kb, writer, timeout=timeout)
    ctx = service.context(
        normalise(case.payload),
        Enrichment.model_validate(case.enrichment),
        name="eval",
        namespace="eval",
        occurrences=Occurrences(),
    )
    started = time.monotonic()
    spec = await service.write(ctx)
    latency = int((time.monotonic() - started) * 1000)
    review = getattr(writer, "last_review", None)
    attempts = review.attempts if review is not None else []
    findings = [f"attempt {i}: {p}" for i, a in enumerate(attempts, 1) for p in [*a.problems, *a.flags]]
    if writer is None:
        outcome = "builtin"
    elif spec.writer.backend == "builtin":
        outcome = "fallback"
    else:
        outcome = "flagged" if attempts and attempts[-1].flags else "accepted"
    return CaseResult(
        case=case.name,
        outcome=outcome,
        latency_ms=latency,
        tokens=sum(a.tokens for a in attempts) or spec.writer.tokens,
        attempts=len(attempts),
        findings=findings,
        fallback_reason=spec.writer.fallback_reason,
        expect=case.expect,
        answers=[{"outcome": a.outcome, **a.text} for a in attempts],
    )


async def run_eval(
    cases: list[Case],
    factory: WriterFactory,
    kb: KnowledgeBase | None = None,
    *,
    timeout: float = 600.0,
    progress: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    kb = kb or load()
    results = []
    for case in cases:
        try:
            writer = factory(case)
        except LookupError as exc:
            result = CaseResult(case=case.name, outcome="skipped", findings=[str(exc)])
        else:
            result = await run_case(case, writer, kb, timeout)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def totals(results: list[CaseResult]) -> dict[str, Any]:
    ran = [r for r in results if r.outcome != "skipped"]
    counts = Counter(r.outcome for r in ran)
    model = [r for r in ran if r.outcome in ("accepted", "flagged", "fallback")]
    return {
        "cases": len(ran),
        "skipped": len(results) - len(ran),
        **{o: counts.get(o, 0) for o in OUTCOMES[:4]},
        "acceptance_rate": round((counts["accepted"] + counts["flagged"]) / len(model), 3) if model else None,
        "mean_latency_ms": int(statistics.mean(r.latency_ms for r in ran)) if ran else 0,
        "tokens": sum(r.tokens for r in ran),
        "model_calls": sum(r.attempts for r in ran),
        "unexpected": [r.case for r in ran if r.unexpected],
    }


def line(r: CaseResult) -> str:
    shown = r.findings[0] if r.findings else r.fallback_reason
    first = f"  {shown[:110]}" if shown else ""
    more = f" (+{len(r.findings) - 1})" if len(r.findings) > 1 else ""
    mark = f" [expected {r.expect}]" if r.unexpected else ""
    return f"{r.case:<58} {r.outcome:<9}{mark} {r.latency_ms:>7} ms {r.tokens:>6} tok{first}{more}"


def summary_text(provider: str, total: dict[str, Any]) -> str:
    rate = "n/a" if total["acceptance_rate"] is None else f"{total['acceptance_rate']:.0%}"
    return (
        f"{provider}: {total['cases']} cases: {total['accepted']} accepted, {total['flagged']} flagged, "
        f"{total['fallback']} fell back, {total['builtin']} builtin, {total['skipped']} skipped; "
        f"acceptance {rate}; mean latency {total['mean_latency_ms']} ms; {total['tokens']} tokens in "
        f"{total['model_calls']} model calls; unexpected: {', '.join(total['unexpected']) or 'none'}"
    )


def write_results(path: Path, provider: str, model: str, results: list[CaseResult]) -> dict[str, Any]:
    total = totals(results)
    document = {"provider": provider, "model": model, "total": total, "cases": [asdict(r) for r in results]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return total
