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
        "--fallback-namespace",
        default=_env("NAMESPACE", "falco-reporter"),
        help="namespace for alerts that name no existing namespace (env FALCO_REPORTER_NAMESPACE)",
    )
    g.add_argument(
        "--flush-interval",
        type=float,
        default=float(_env("FLUSH_INTERVAL", "2")),
        help="seconds between writes of merged repeat counts (default %(default)s)",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, then in-cluster)"
    )
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"), help="DEBUG, INFO, WARNING or ERROR")


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
        default=[],
        help="watch only this namespace (repeatable); default: cluster-wide",
    )
    run.add_argument("--no-receiver", action="store_true", help="run the operator only")
    run.add_argument(
        "--peering",
        default=_env("PEERING"),
        help="kopf peering name for safe hand-over between replicas (default: standalone)",
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

    render = sub.add_parser(
        "render",
        help="render a report offline from an alert JSON file",
        description="Run the same pipeline offline: enrichment from a YAML file of objects "
        "instead of the API server, the built-in writer, no cluster needed.",
    )
    render.add_argument("alert", type=Path, help="a Falco alert JSON file ('-' for stdin)")
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

    sub.add_parser("crds", help="print the CustomResourceDefinitions (generated from the models)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "crds":
        return _crds()
    if args.command == "render":
        return _render(args)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from falco_reporter import runtime

    settings = runtime.RunSettings(
        kubeconfig=args.kubeconfig,
        namespaces=tuple(getattr(args, "namespace", ()) or ()),
        fallback_namespace=args.fallback_namespace,
        peering=getattr(args, "peering", ""),
        liveness=getattr(args, "liveness", ""),
        receiver=None if getattr(args, "no_receiver", False) else _receiver_settings(args),
        flush_interval=args.flush_interval,
    )
    if args.command == "receiver":
        asyncio.run(runtime.run_receiver(settings))
    else:
        asyncio.run(runtime.run_operator(settings))
    return 0


def _receiver_settings(args: argparse.Namespace) -> Any:
    from falco_reporter.receiver.http import ReceiverSettings

    host, _, port = args.bind.rpartition(":")
    token = Path(args.token_file).read_text(encoding="utf-8").strip() if args.token_file else ""
    return ReceiverSettings(
        host=host or "0.0.0.0",  # noqa: S104
        port=int(port),
        token=token,
        max_body=args.max_body,
        request_timeout=args.request_timeout,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )


def _crds() -> int:
    from falco_reporter.models.crds import build_crds

    sys.stdout.write(yaml.safe_dump_all(build_crds(), sort_keys=False, width=110))
    return 0


def _render(args: argparse.Namespace) -> int:
    from falco_reporter.offline import render_alert

    text = sys.stdin.buffer.read() if str(args.alert) == "-" else args.alert.read_bytes()
    objects: list[Any] = []
    if args.objects:
        objects = [d for d in yaml.safe_load_all(args.objects.read_text(encoding="utf-8")) if d]
    try:
        report = render_alert(text, objects, default_namespace=args.namespace)
    except ValueError as exc:
        print(f"falco-reporter render: {exc}", file=sys.stderr)
        return 2
    if args.format == "markdown":
        sys.stdout.write(report["spec"]["markdown"])
    elif args.format == "json":
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(report, sort_keys=False, width=110))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
