"""The commands other than ``run`` and ``receiver``: export, crds, render, eval."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import yaml

from falco_reporter.cli.flags import settings_from_args


def export(args: argparse.Namespace) -> int:
    from falco_reporter import runtime
    from falco_reporter.exporting.files import FORMATS
    from falco_reporter.exporting.service import parse_duration

    formats = frozenset(f.strip() for f in args.format.split(",") if f.strip())
    if not formats or not formats <= FORMATS:
        print(f"falco-reporter export: --format takes {', '.join(sorted(FORMATS))}", file=sys.stderr)
        return 2
    try:
        since = parse_duration(args.since) if args.since else None
    except ValueError as exc:
        print(f"falco-reporter export: {exc}", file=sys.stderr)
        return 2
    # Progress for people at a terminal; nothing on stderr when piped or in CI logs.
    progress = (lambda line: print(line, file=sys.stderr)) if sys.stderr.isatty() else None
    result = runtime.export_reports(
        args.kubeconfig, args.dir, namespace=args.namespace, since=since, formats=formats, progress=progress
    )
    return 0 if result is not None else 1


def crds() -> int:
    from falco_reporter.models.crds import build_crds

    sys.stdout.write(yaml.safe_dump_all(build_crds(), sort_keys=False, width=110))
    return 0


def render(args: argparse.Namespace) -> int:
    from falco_reporter.offline import render_alerts

    bodies = [sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes() for path in args.alert]
    objects: list[Any] = []
    if args.objects:
        objects = [d for d in yaml.safe_load_all(args.objects.read_text(encoding="utf-8")) if d]
    try:
        reports = render_alerts(
            bodies, objects, default_namespace=args.namespace, window=args.incident_window
        )
    except ValueError as exc:
        print(f"falco-reporter render: {exc}", file=sys.stderr)
        return 2
    single = len(reports) == 1
    document: Any = reports[0] if single else {"apiVersion": "v1", "kind": "List", "items": reports}
    if args.format == "markdown":
        sys.stdout.write(reports[0]["spec"]["markdown"] if single else _incidents_markdown(reports))
    elif args.format == "json":
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, width=110))
    return 0


def _incidents_markdown(reports: list[dict[str, Any]]) -> str:
    """Each incident's timeline, then every report (in time order)."""
    out: list[str] = []
    seen: set[str] = set()
    for report in reports:
        incident = report["spec"].get("incident") or {}
        if incident.get("id") and incident["id"] not in seen and incident.get("alerts", 1) > 1:
            seen.add(incident["id"])
            out.append(f"# Incident {incident['id']}: {incident['verdict']}, {incident['severity']}\n")
            out.append(
                f"{incident['subject']}, window from {incident['windowStart']}. {incident['reason']}\n"
            )
            out += [
                f"- {e['time']} {e['rule']} ({e.get('tactic') or '-'}): {e['alert']}"
                for e in incident["timeline"]
            ]
            out.append("")
    out += [report["spec"]["markdown"] for report in reports]
    return "\n".join(out)


def evaluate(args: argparse.Namespace) -> int:
    from falco_reporter import evaluation
    from falco_reporter.knowledge.base import load
    from falco_reporter.reporting.llm_config import LLMConfig, LLMConfigError

    kb = load()
    config = None
    try:
        if args.provider not in ("builtin", "fake"):
            config = LLMConfig.from_settings(settings_from_args(args, llm_provider=args.provider))
        factory = evaluation.writer_factory(args.provider, kb, config)
    except (LLMConfigError, ValueError) as exc:
        print(f"falco-reporter: {exc}", file=sys.stderr)
        return 2
    real = args.real if args.real.is_dir() else None
    cases = evaluation.load_cases(real, args.cases if args.cases.is_dir() else None, args.limit)
    if args.provider != "fake":  # a crafted case's expected outcome is about its canned answers
        for case in cases:
            case.expect = ""

    model = config.model if config else args.provider
    done: list[Any] = []

    def show(result: Any) -> None:
        print(evaluation.line(result), flush=True)
        done.append(result)  # written as it goes: a long run stopped early keeps what it measured
        evaluation.write_results(args.out, args.provider, model, done)

    results = asyncio.run(evaluation.run_eval(cases, factory, kb, progress=show))
    total = evaluation.write_results(args.out, args.provider, model, results)
    print(evaluation.summary_text(args.provider, total))
    print(f"results: {args.out}")
    return 1 if total["unexpected"] else 0
