"""Reference load: create objects directly through the API server, run as its own process.

    python bench/apiload.py --kubeconfig K --namespace NS --count 5000 --concurrency 8 \
        --client raw --out result.json

Creates exactly the FalcoAlert objects the receiver would create for the same unique alerts
(same ``Payloads``, same ``normalise`` and ``alert_object``), so the receiver's persisted rate can
be compared with what the API server does for a client with the same concurrency:

* ``--client raw``: aiohttp over HTTPS with keep-alive, one connection per concurrent sender: the
  API server's own rate, with the least client overhead Python can have.
* ``--client python``: the official synchronous ``kubernetes`` client from that many threads (what
  the receiver used before its kube layer moved to kubernetes_asyncio).

``--kind alertreport`` instead creates AlertReports for existing FalcoAlerts (``--owners FILE``:
JSON list of [namespace, name, uid]) in the built-in writer's shape, to fill the cluster fast.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.loadgen import LOOPBACK, Payloads, percentile
from falco_reporter.models.falco import normalise, object_name, parse_alert_body
from falco_reporter.receiver.ingest import alert_object

GROUP, VERSION = "falcoreporter.io", "v1alpha1"


def alert_bodies(namespace: str, run_id: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    payloads = Payloads("unique", namespace, run_id, start=start)
    out = []
    for i in range(count):
        spec = normalise(parse_alert_body(payloads.body(i)))
        out.append(alert_object(namespace, object_name(spec), spec))
    return out


def report_bodies(owners: list[list[str]]) -> list[dict[str, Any]]:
    """AlertReports in the built-in writer's shape, one per owner alert (rendered once, renamed)."""
    from falco_reporter.knowledge.base import load
    from falco_reporter.models.enrichment import Enrichment
    from falco_reporter.models.report import Occurrences
    from falco_reporter.reconciler.service import report_object
    from falco_reporter.reporting.service import ReportService

    service = ReportService(load())
    first_ns, first_name, _ = owners[0]
    payload = Payloads("unique", first_ns, "rss").body(0)
    spec = normalise(parse_alert_body(payload))
    ctx = service.context(
        spec,
        Enrichment(namespace=first_ns, pod=spec.subject.pod),
        name=first_name,
        namespace=first_ns,
        occurrences=Occurrences(),
    )
    report = service.write_builtin(ctx)
    template = report_object(first_ns, first_name, "uid", report)
    out = []
    for namespace, name, uid in owners:
        body = json.loads(json.dumps(template))
        body["metadata"]["name"] = name
        body["metadata"]["namespace"] = namespace
        body["metadata"]["ownerReferences"][0].update(name=name, uid=uid)
        body["spec"]["alertRef"] = {"name": name, "namespace": namespace, "uid": uid}
        out.append(body)
    return out


class ApiTarget:
    """Server URL and TLS/credentials from a kubeconfig (certs embedded or as files, or a token)."""

    def __init__(self, kubeconfig: str) -> None:
        cfg = yaml.safe_load(Path(kubeconfig).read_text(encoding="utf-8"))
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in cfg.get("users", []) if u["name"] == ctx.get("user")), {})
        self.server = cluster["server"].rstrip("/")
        host = self.server.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
        if host not in LOOPBACK:
            raise SystemExit(f"apiload: the benchmark only talks to a loopback API server, not {host}")
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-api-")
        self.ssl = ssl.create_default_context(cafile=self._file(cluster, "certificate-authority"))
        cert, key = self._file(user, "client-certificate"), self._file(user, "client-key")
        if cert and key:
            self.ssl.load_cert_chain(cert, key)
        self.headers = {"Content-Type": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"

    def _file(self, section: dict[str, Any], key: str) -> str | None:
        if section.get(f"{key}-data"):
            path = Path(self._tmp.name) / key
            path.write_bytes(base64.b64decode(section[f"{key}-data"]))
            return str(path)
        return section.get(key)

    def url(self, namespace: str, plural: str) -> str:
        return f"{self.server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"


async def create_raw(
    target: ApiTarget, plural: str, bodies: list[dict[str, Any]], concurrency: int, duration: float
) -> tuple[Counter[int], list[float], float]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    queue = iter(bodies)
    started = time.perf_counter()
    deadline = started + duration
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=target.ssl)
    async with aiohttp.ClientSession(connector=connector, headers=target.headers) as session:

        async def worker() -> None:
            for body in queue:
                if time.perf_counter() > deadline:
                    return
                data = json.dumps(body).encode()
                t0 = time.perf_counter()
                try:
                    async with session.post(
                        target.url(body["metadata"]["namespace"], plural), data=data
                    ) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                except aiohttp.ClientError:
                    statuses[0] += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, latencies, time.perf_counter() - started


def create_python(
    kubeconfig: str, plural: str, bodies: list[dict[str, Any]], concurrency: int, duration: float
) -> tuple[Counter[int], list[float], float]:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = concurrency
    api = client.CustomObjectsApi(client.ApiClient(cfg))
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + duration

    def one(body: dict[str, Any]) -> None:
        if time.perf_counter() > deadline:
            return
        t0 = time.perf_counter()
        try:
            api.create_namespaced_custom_object(
                GROUP, VERSION, body["metadata"]["namespace"], plural, body, _request_timeout=(3, 10)
            )
            status = 201
        except ApiException as exc:
            status = int(exc.status or 0)
        with lock:
            statuses[status] += 1
            latencies.append(time.perf_counter() - t0)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, bodies))
    return statuses, latencies, time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--run-id", default="raw")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--duration", type=float, default=120.0)
    p.add_argument("--client", choices=("raw", "python"), default="raw")
    p.add_argument("--kind", choices=("falcoalert", "alertreport"), default="falcoalert")
    p.add_argument("--owners", help="alertreport: JSON file of [namespace, name, uid] rows")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.kind == "falcoalert":
        plural, bodies = "falcoalerts", alert_bodies(args.namespace, args.run_id, args.count)
    else:
        plural, bodies = "alertreports", report_bodies(json.loads(Path(args.owners).read_text()))
    if args.client == "raw":
        statuses, latencies, elapsed = asyncio.run(
            create_raw(ApiTarget(args.kubeconfig), plural, bodies, args.concurrency, args.duration)
        )
    else:
        statuses, latencies, elapsed = create_python(
            args.kubeconfig, plural, bodies, args.concurrency, args.duration
        )
    created = statuses.get(201, 0)
    result = {
        "sent": sum(statuses.values()),
        "created": created,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "elapsed_s": elapsed,
        "rate_per_s": created / elapsed if elapsed else 0.0,
        "latency_ms": {"p50": percentile(latencies, 50) * 1000, "p99": percentile(latencies, 99) * 1000},
    }
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
