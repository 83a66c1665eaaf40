"""The ``falco-reporter`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from falco_reporter import __version__
from falco_reporter.reporting.incidents import DEFAULT_WINDOW as DEFAULT_INCIDENT_WINDOW


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"FALCO_REPORTER_{name}", default)


def _add_receiver_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("receiver")
    g.add_argument(
        "--bind",
        default=_env("BIND", "0.0.0.0:8080"),
        help="host:port the receiver listens on (env FALCO_REPORTER_BIND; default %(default)s)",
    )
    g.add_argument(
        "--token-file",
        default=_env("TOKEN_FILE"),
        help="file holding the shared bearer token; requests without it get 401 "
        "(env FALCO_REPORTER_TOKEN_FILE; default: no auth)",
    )
    g.add_argument(
        "--max-body",
        type=int,
        default=int(_env("MAX_BODY", str(1024 * 1024))),
        help="largest accepted body in bytes, larger gets 413 (default %(default)s)",
    )
    g.add_argument(
        "--request-timeout",
        type=float,
        default=float(_env("REQUEST_TIMEOUT", "5")),
        help="answer every request within this many seconds, 503 if the alert could not be stored",
    )
    g.add_argument("--tls-cert", default=_env("TLS_CERT"), help="serve HTTPS with this certificate (PEM)")
    g.add_argument("--tls-key", default=_env("TLS_KEY"), help="private key of --tls-cert (PEM)")
    g.add_argument(
        "--tls-client-ca",
        default=_env("TLS_CLIENT_CA"),
        help="require client certificates signed by this CA (mutual TLS)",
    )
    g.add_argument(
        "--tls-client-subject",
        action="append",
        default=[s for s in _env("TLS_CLIENT_SUBJECTS").split(",") if s],
        help="with --tls-client-ca: accept only client certificates with this common name (or "
        "whole subject, CN=..,O=..); repeatable (env FALCO_REPORTER_TLS_CLIENT_SUBJECTS, comma-separated)",
    )
    g.add_argument(
        "--metrics-token-file",
        default=_env("METRICS_TOKEN_FILE"),
        help="require this bearer token on /metrics (env FALCO_REPORTER_METRICS_TOKEN_FILE; default: open)",
    )
    g.add_argument(
        "--fallback-namespace",
        default=_env("NAMESPACE", "falco-reporter"),
        help="namespace for alerts that name no existing namespace (env FALCO_REPORTER_NAMESPACE)",
    )
    g.add_argument(
        "--health-bind",
        default=_env("HEALTH_BIND"),
        help="also serve /healthz, /readyz and /metrics on this host:port over plain HTTP, e.g. "
        "0.0.0.0:8081: probes and scraping under mutual TLS, and the only metrics of "
        "'run --no-receiver' (env FALCO_REPORTER_HEALTH_BIND; default: none)",
    )
    g.add_argument(
        "--journal-dir",
        default=_env("JOURNAL_DIR"),
        help="keep a durable journal here and answer 202 once an alert is in it; a drainer stores "
        "it while the API server may be away (env FALCO_REPORTER_JOURNAL_DIR; default: none, "
        "answer 202 only once stored)",
    )
    g.add_argument(
        "--journal-sync",
        choices=("fsync", "process"),
        default=_env("JOURNAL_SYNC", "fsync"),
        help="fsync: each group of appends is fsynced before its 202 (survives a node crash on a "
        "persistent volume); process: written to the OS before the 202 and fsynced at checkpoints "
        "(survives a crash of the receiver, not of the node) (default %(default)s)",
    )
    g.add_argument(
        "--journal-max-entries",
        type=int,
        default=int(_env("JOURNAL_MAX_ENTRIES", "100000")),
        help="journal limit in alerts; when full, 503 with Retry-After (default %(default)s)",
    )
    g.add_argument(
        "--journal-max-bytes",
        type=int,
        default=int(_env("JOURNAL_MAX_BYTES", str(256 * 1024 * 1024))),
        help="journal limit in bytes of alerts; when full, 503 with Retry-After (default %(default)s)",
    )
    g.add_argument(
        "--flush-interval",
        type=float,
        default=float(_env("FLUSH_INTERVAL", "2")),
        help="seconds between writes of merged repeat counts (default %(default)s)",
    )


def _namespaces_env() -> list[str]:
    return [n.strip() for n in _env("NAMESPACES").split(",") if n.strip()]


def _add_llm_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "LLM writer",
        "default: the built-in writer only; FALCO_REPORTER_LLM_* variables apply, these flags override",
    )
    g.add_argument(
        "--llm-provider",
        help="none, llamacpp, ollama, openai, openai-compatible, anthropic, azure_openai, bedrock, google",
    )
    g.add_argument("--llm-model", help="model name (llamacpp: taken from --llm-model-path)")
    g.add_argument("--llm-base-url", help="endpoint (ollama, OpenAI-compatible servers, azure_openai)")
    g.add_argument("--llm-model-path", help="GGUF model file for llamacpp")


def _llm_config(args: argparse.Namespace) -> Any:
    from falco_reporter.reporting.llm_config import PREFIX, LLMConfig

    env = dict(os.environ)
    for flag, name in (
        ("llm_provider", "PROVIDER"),
        ("llm_model", "MODEL"),
        ("llm_base_url", "BASE_URL"),
        ("llm_model_path", "MODEL_PATH"),
    ):
        if value := getattr(args, flag, None):
            env[PREFIX + name] = value
    return LLMConfig.from_env(env)


def _kubeconfig(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, then in-cluster)"
    )


def _common(p: argparse.ArgumentParser) -> None:
    _kubeconfig(p)
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"), help="DEBUG, INFO, WARNING or ERROR")


def _scope(p: argparse.ArgumentParser, what: str) -> None:
    """--namespace NS or -A (the default), as kubectl spells them."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--namespace", "-n", help=f"{what} of this namespace only")
    group.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        help=f"{what} of every namespace (the default when --namespace is not given)",
    )
    _kubeconfig(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="falco-reporter",
        description="Turn Falco alerts into enriched, validated AlertReports in Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"falco-reporter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run the operator with the receiver embedded",
        description="Run the kopf operator and, unless --no-receiver, the HTTP receiver.",
    )
    _common(run)
    _add_receiver_flags(run)
    run.add_argument(
        "--namespace",
        action="append",
        default=_namespaces_env(),
        help="watch only this namespace (repeatable; env FALCO_REPORTER_NAMESPACES, comma-separated); "
        "default: cluster-wide",
    )
    _add_llm_flags(run)
    run.add_argument("--no-receiver", action="store_true", help="run the operator only")
    run.add_argument(
        "--peering",
        default=_env("PEERING"),
        help="kopf peering name for safe hand-over between replicas (default: standalone)",
    )
    run.add_argument(
        "--peering-priority",
        type=int,
        default=int(_env("PEERING_PRIORITY", "0")),
        help="kopf peering priority: of two live operators the higher one works and the other "
        "pauses; equal priorities pause both (env FALCO_REPORTER_PEERING_PRIORITY; default %(default)s)",
    )
    run.add_argument(
        "--peering-lifetime",
        type=int,
        default=int(_env("PEERING_LIFETIME", "60")),
        help="seconds after its last keep-alive that a silent peer counts as dead and a paused "
        "operator takes over (env FALCO_REPORTER_PEERING_LIFETIME; default %(default)s)",
    )
    run.add_argument(
        "--max-workers",
        type=int,
        default=int(_env("MAX_WORKERS", "128")),
        help="objects handled at once; the rest wait as raw events, which bounds memory when "
        "thousands of alerts are pending at start-up (env FALCO_REPORTER_MAX_WORKERS; default %(default)s)",
    )
    run.add_argument(
        "--export-dir",
        default=_env("EXPORT_DIR", ""),
        help="keep this directory in sync with the reports (Markdown, YAML, index), as `export` writes "
        "it, for a git-committing sidecar (env FALCO_REPORTER_EXPORT_DIR; default: off)",
    )
    run.add_argument(
        "--export-interval",
        type=float,
        default=float(_env("EXPORT_INTERVAL", "30")),
        help="seconds between --export-dir syncs (env FALCO_REPORTER_EXPORT_INTERVAL; default %(default)s)",
    )
    run.add_argument(
        "--incident-window",
        type=int,
        default=int(_env("INCIDENT_WINDOW", str(DEFAULT_INCIDENT_WINDOW))),
        help="seconds: one pod's (container's, host's) alerts within one window form an incident whose "
        "timeline every report of it carries; 0 turns correlation off "
        "(env FALCO_REPORTER_INCIDENT_WINDOW; default %(default)s)",
    )
    run.add_argument(
        "--liveness",
        default=_env("LIVENESS", ""),
        help="kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz",
    )

    rec = sub.add_parser(
        "receiver",
        help="run the HTTP receiver alone",
        description="Run only the receiver, so it can scale as its own Deployment.",
    )
    _common(rec)
    _add_receiver_flags(rec)
    rec.add_argument(
        "--namespace",
        action="append",
        default=_namespaces_env(),
        help="namespaced install: store alerts only in these namespaces (repeatable), others go to "
        "the fallback namespace",
    )

    render = sub.add_parser(
        "render",
        help="render a report offline from an alert JSON file",
        description="Run the same pipeline offline: enrichment from a YAML file of objects "
        "instead of the API server, the built-in writer, no cluster needed.",
    )
    render.add_argument(
        "alert",
        type=Path,
        nargs="+",
        help="Falco alert JSON files ('-' for stdin); several are correlated into incidents and "
        "printed as one Kubernetes List (json/yaml) or the incident timeline and each report (markdown)",
    )
    render.add_argument(
        "--incident-window",
        type=int,
        default=DEFAULT_INCIDENT_WINDOW,
        help="seconds: alerts of one subject within one window form an incident; 0 turns it off "
        "(default %(default)s)",
    )
    render.add_argument(
        "--objects",
        type=Path,
        help="YAML file (multi-document or a List) of Pods, ReplicaSets, "
        "Deployments, ServiceAccounts, ... to enrich from",
    )
    render.add_argument(
        "--format",
        choices=("markdown", "yaml", "json"),
        default="markdown",
        help="markdown (the report), or the AlertReport object as yaml or json",
    )
    render.add_argument(
        "--namespace",
        default="falco-reporter",
        help="namespace of the report when the alert names none (default %(default)s)",
    )

    exp = sub.add_parser(
        "export",
        help="write AlertReports as Markdown and YAML files for review in git",
        description="Export AlertReports to DIR/<namespace>/<report>.md and .yaml (clean, re-appliable "
        "manifests), Kubernetes remediation manifests as <report>.remediation-<n>.yaml, and an index "
        "DIR/README.md by severity and verdict. Output is deterministic: exporting twice with no change "
        "rewrites nothing. Files of reports that no longer exist are removed; other files in DIR are "
        "left alone.",
    )
    exp.add_argument("--dir", required=True, type=Path, help="directory to write (created if missing)")
    _scope(exp, "export reports")
    exp.add_argument(
        "--since", help="only reports whose last occurrence is within this duration, e.g. 24h, 7d"
    )
    exp.add_argument(
        "--format", default="markdown,yaml", help="comma-separated: markdown, yaml (default %(default)s)"
    )

    sup = sub.add_parser(
        "suppressions",
        help="print every accepted false positive as one Falco rules file",
        description="Collect the Falco exceptions the operator produced for AlertReports reviewed as "
        "false-positive, merge them per rule, and print one rules file ready for the Falco chart's "
        "customRules (load it after the upstream rules).",
    )
    _scope(sup, "accepted false positives")

    sub.add_parser("crds", help="print the CustomResourceDefinitions (generated from the models)")

    ev = sub.add_parser(
        "eval",
        help="measure a writer over the real samples and crafted cases",
        description="Run the writer over real alerts and crafted cases; print per case and in total "
        "accepted / flagged (accepted with sense findings) / fell back, latency, tokens and findings; "
        "write the results as JSON. FALCO_REPORTER_LLM_* variables apply, these flags override.",
    )
    ev.add_argument(
        "--provider",
        required=True,
        help="builtin, fake (the crafted cases' canned answers), or an LLM provider (llamacpp, ollama, "
        "openai, openai-compatible, anthropic, ...)",
    )
    ev.add_argument("--model", dest="llm_model", help="model name")
    ev.add_argument("--model-path", dest="llm_model_path", help="GGUF model file for llamacpp")
    ev.add_argument("--base-url", dest="llm_base_url", help="endpoint (OpenAI-compatible servers, ollama)")
    ev.add_argument("--real", type=Path, default=Path("tests/data/real"), help="real alert samples")
    ev.add_argument("--cases", type=Path, default=Path("tests/data/eval"), help="crafted cases")
    ev.add_argument("--limit", type=int, default=0, help="at most N real samples and N crafted cases")
    ev.add_argument("--out", type=Path, default=Path("eval/results.json"), help="results file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "crds":
        return _crds()
    if args.command == "eval":
        return _eval(args)
    if args.command == "render":
        return _render(args)
    if args.command == "export":
        return _export(args)
    if args.command == "suppressions":
        from falco_reporter import runtime

        sys.stdout.write(runtime.suppressions_file(args.kubeconfig, namespace=args.namespace))
        return 0
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from falco_reporter import runtime
    from falco_reporter.reporting.llm_config import LLMConfig, LLMConfigError

    try:
        llm = _llm_config(args) if args.command == "run" else LLMConfig()
    except LLMConfigError as exc:
        print(f"falco-reporter: {exc}", file=sys.stderr)
        return 2
    from falco_reporter.receiver.secrets import SecretFileError

    try:
        receiver = None if getattr(args, "no_receiver", False) else _receiver_settings(args)
    except SecretFileError as exc:
        print(f"falco-reporter: {exc}", file=sys.stderr)
        return 2
    settings = runtime.RunSettings(
        kubeconfig=args.kubeconfig,
        namespaces=tuple(getattr(args, "namespace", ()) or ()),
        fallback_namespace=args.fallback_namespace,
        peering=getattr(args, "peering", ""),
        liveness=getattr(args, "liveness", ""),
        receiver=receiver,
        flush_interval=args.flush_interval,
        export_dir=getattr(args, "export_dir", "") or "",
        export_interval=getattr(args, "export_interval", 30.0),
        llm=llm,
        health_bind=args.health_bind,
        peering_priority=getattr(args, "peering_priority", 0),
        peering_lifetime=getattr(args, "peering_lifetime", 60),
        max_workers=getattr(args, "max_workers", 128),
        incident_window=getattr(args, "incident_window", DEFAULT_INCIDENT_WINDOW),
        journal=_journal_config(args),
    )
    try:
        if args.command == "receiver":
            asyncio.run(runtime.run_receiver(settings))
        else:
            asyncio.run(runtime.run_operator(settings))
    except LLMConfigError as exc:  # e.g. the provider's package is not installed
        print(f"falco-reporter: {exc}", file=sys.stderr)
        return 2
    return 0


def _journal_config(args: argparse.Namespace) -> Any:
    if not args.journal_dir or getattr(args, "no_receiver", False):
        return None
    from falco_reporter.receiver.journal import JournalConfig

    return JournalConfig(
        Path(args.journal_dir),
        args.journal_max_entries,
        args.journal_max_bytes,
        fsync=args.journal_sync == "fsync",
    )


def _receiver_settings(args: argparse.Namespace) -> Any:
    from falco_reporter.receiver.http import ReceiverSettings
    from falco_reporter.receiver.secrets import FileSecret

    host, _, port = args.bind.rpartition(":")
    for path in (args.token_file, args.metrics_token_file):
        if path:
            FileSecret(path)  # raises SecretFileError when missing or empty: refuse to start
    return ReceiverSettings(
        host=host or "0.0.0.0",  # noqa: S104
        port=int(port),
        token_file=args.token_file,
        metrics_token_file=args.metrics_token_file,
        client_subjects=tuple(args.tls_client_subject or ()),
        max_body=args.max_body,
        request_timeout=args.request_timeout,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )


def _export(args: argparse.Namespace) -> int:
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


def _crds() -> int:
    from falco_reporter.models.crds import build_crds

    sys.stdout.write(yaml.safe_dump_all(build_crds(), sort_keys=False, width=110))
    return 0


def _render(args: argparse.Namespace) -> int:
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


def _eval(args: argparse.Namespace) -> int:
    from falco_reporter import evaluation
    from falco_reporter.knowledge.base import load
    from falco_reporter.reporting.llm_config import LLMConfigError

    kb = load()
    config = None
    try:
        if args.provider not in ("builtin", "fake"):
            args.llm_provider = args.provider
            config = _llm_config(args)
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


if __name__ == "__main__":
    raise SystemExit(main())
