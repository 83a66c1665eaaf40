"""The ``falco-reporter`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from falco_reporter import __version__
from falco_reporter.cli import commands
from falco_reporter.cli.flags import add_setting_flags, settings_from_args
from falco_reporter.settings import DEFAULTS, Settings, describe_errors


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
    p.add_argument("--kubeconfig", default=None, help=Settings.model_fields["kubeconfig"].description)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="falco-reporter",
        description="Turn Falco alerts into enriched, validated AlertReports in Kubernetes. Flags "
        "override FALCO_REPORTER_* environment variables, which override the defaults.",
    )
    parser.add_argument("--version", action="version", version=f"falco-reporter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run the operator with the receiver embedded",
        description="Run the kopf operator and, unless --no-receiver, the HTTP receiver.",
    )
    add_setting_flags(run, "common", "receiver", "operator", "llm")
    rec = sub.add_parser(
        "receiver",
        help="run the HTTP receiver alone",
        description="Run only the receiver, so it can scale as its own Deployment.",
    )
    add_setting_flags(rec, "common", "receiver")

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
        default=DEFAULTS.incident_window,
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
        default=DEFAULTS.fallback_namespace,
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
    # Named as the run flags' settings, so the LLM configuration is read the same way.
    for flag, name in (
        ("--model", "llm_model"),
        ("--model-path", "llm_model_path"),
        ("--base-url", "llm_base_url"),
    ):
        ev.add_argument(
            flag, dest=name, default=argparse.SUPPRESS, help=Settings.model_fields[name].description
        )
    ev.add_argument("--real", type=Path, default=Path("tests/data/real"), help="real alert samples")
    ev.add_argument("--cases", type=Path, default=Path("tests/data/eval"), help="crafted cases")
    ev.add_argument("--limit", type=int, default=0, help="at most N real samples and N crafted cases")
    ev.add_argument("--out", type=Path, default=Path("eval/results.json"), help="results file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "crds":
        return commands.crds()
    if args.command == "eval":
        return commands.evaluate(args)
    if args.command == "render":
        return commands.render(args)
    if args.command == "export":
        return commands.export(args)
    if args.command == "suppressions":
        from falco_reporter import runtime

        sys.stdout.write(runtime.suppressions_file(args.kubeconfig, namespace=args.namespace))
        return 0
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    """``run`` or ``receiver``: settings from flags, environment and defaults, then the event loop."""
    import logging

    from falco_reporter import runtime
    from falco_reporter.receiver.secrets import SecretFileError
    from falco_reporter.reporting.llm_config import LLMConfigError

    receiver_only = args.command == "receiver"
    try:
        settings = settings_from_args(args, **({"receiver": True} if receiver_only else {}))
        run_settings = runtime.RunSettings.from_settings(settings, llm=not receiver_only)
    except ValidationError as exc:
        print(f"falco-reporter: {describe_errors(exc)}", file=sys.stderr)
        return 2
    except (LLMConfigError, SecretFileError) as exc:
        print(f"falco-reporter: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if receiver_only:
            asyncio.run(runtime.run_receiver(run_settings))
        else:
            asyncio.run(runtime.run_operator(run_settings))
    except LLMConfigError as exc:  # e.g. the provider's package is not installed
        print(f"falco-reporter: {exc}", file=sys.stderr)
        return 2
    return 0
