#!/usr/bin/env python3
"""Which asyncio Kubernetes client for the kube layer: per-request latency and CPU, measured.

    python -m bench.kube_clients --kubeconfig K [--count 300] [--concurrency 1,8]

For each client, ``--count`` FalcoAlerts are created, read back and merge-patched (status) in a
fresh namespace of the loopback API server, ``--concurrency`` requests in flight, in one event
loop. CPU is this process's (user + system) seconds per request, so the API server's share is
not counted; latency is per request. Clients:

* ``sync+threads``: the synchronous ``kubernetes`` client's raw call path from
  ``asyncio.to_thread`` (what the kube layer did before);
* ``kubernetes_asyncio``: our kube layer (``falco_reporter.kube``: its raw JSON request path);
* ``kr8s``: kr8s's asyncio API (httpx), raw ``call_api`` requests (not a project dependency:
  ``pip install kr8s`` to include it; skipped when missing);
* ``kopf``: kopf's own aiohttp API access (``kopf._cogs.clients.api``, a private module).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bench.apiload import alert_bodies
from falco_reporter import API_GROUP, API_VERSION
from falco_reporter.kube.client import connect

Obj = dict[str, Any]
Call = Callable[[str, str, str, Obj | None, str], Awaitable[Any]]  # method, namespace, path tail, body, type
MERGE = "application/merge-patch+json"
BASE = f"/apis/{API_GROUP}/{API_VERSION}/namespaces"


async def sync_threads(kubeconfig: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = 32
    api = client.ApiClient(cfg)

    def send(method: str, path: str, payload: Obj | None, ctype: str) -> Any:
        request = api.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Accept": "application/json", "Content-Type": ctype},
            auth_settings=["BearerToken"],
        )
        response = api.call_api(request[0], request[1], request[2], payload, _request_timeout=(3, 10))
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{response.status}: {data[:200]!r}")
        return json.loads(data)

    async def call(method: str, ns: str, tail: str, payload: Obj | None, ctype: str) -> Any:
        return await asyncio.to_thread(send, method, f"{BASE}/{ns}/falcoalerts{tail}", payload, ctype)

    async def close() -> None:
        api.close()

    return call, close


async def kubernetes_asyncio(kubeconfig: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    kube = connect(kubeconfig)

    async def call(method: str, ns: str, tail: str, payload: Obj | None, ctype: str) -> Any:
        return await kube.request(method, f"{BASE}/{ns}/falcoalerts{tail}", payload, content_type=ctype)

    return call, kube.close


async def kr8s_api(kubeconfig: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import kr8s.asyncio

    api = await kr8s.asyncio.api(kubeconfig=kubeconfig)

    async def call(method: str, ns: str, tail: str, payload: Obj | None, ctype: str) -> Any:
        content = json.dumps(payload) if payload is not None else None
        async with api.call_api(
            method,
            version=API_VERSION,
            base=f"/apis/{API_GROUP}",
            namespace=ns,
            url=f"falcoalerts{tail}",
            content=content,
            headers={"Content-Type": ctype},
        ) as response:
            return response.json()

    async def close() -> None:
        if api._session is not None:
            await api._session.aclose()

    return call, close


async def kopf_api(kubeconfig: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import kopf
    from kopf._cogs.clients import api as kapi
    from kopf._cogs.clients import auth
    from kopf._cogs.structs import credentials

    os.environ["KUBECONFIG"] = kubeconfig
    vault = credentials.Vault()
    settings = kopf.OperatorSettings()
    logger = logging.getLogger("bench")
    info = kopf.login_with_kubeconfig(logger=logger, settings=settings)
    assert info is not None
    await vault.populate({"bench": info})
    auth.vault_var.set(vault)

    async def call(method: str, ns: str, tail: str, payload: Obj | None, ctype: str) -> Any:
        response = await kapi.request(
            method,
            f"{BASE}/{ns}/falcoalerts{tail}",
            payload=payload,
            headers={"Content-Type": ctype},
            settings=settings,
            logger=logger,
        )
        async with response:
            return await response.json()

    async def close() -> None:
        return None  # kopf keeps its sessions in the vault's cached contexts

    return call, close


CLIENTS = {
    "sync+threads": sync_threads,
    "kubernetes_asyncio": kubernetes_asyncio,
    "kr8s": kr8s_api,
    "kopf": kopf_api,
}


async def _worker(one: Callable[[str], Awaitable[Any]], queue: list[str], latencies: list[float]) -> None:
    while queue:
        name = queue.pop()
        t0 = time.perf_counter()
        await one(name)
        latencies.append(time.perf_counter() - t0)


async def measure(call: Call, namespace: str, count: int, concurrency: int) -> dict[str, Any]:
    # The FalcoAlerts the receiver would create for unique alerts, and its repeat-count patch.
    bodies = {b["metadata"]["name"]: b for b in alert_bodies(namespace, uuid.uuid4().hex[:8], count)}
    names = list(bodies)
    when = "2026-11-20T09:10:11.000000000Z"
    occurrences = {"status": {"occurrences": {"count": 2, "firstSeen": when, "lastSeen": when}}}
    out: dict[str, Any] = {}
    steps: dict[str, Callable[[str], Awaitable[Any]]] = {
        "create": lambda n: call("POST", namespace, "", bodies[n], "application/json"),
        "get": lambda n: call("GET", namespace, f"/{n}", None, "application/json"),
        "patch": lambda n: call("PATCH", namespace, f"/{n}/status", occurrences, MERGE),
    }
    for step, one in steps.items():
        latencies: list[float] = []
        queue = list(names)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(_worker(one, queue, latencies) for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        latencies.sort()
        out[step] = {
            "cpu_ms_per_request": round(1000 * cpu / count, 3),
            "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 2),
            "per_s": round(count / wall, 1),
        }
    return out


async def run_one(name: str, kubeconfig: str, namespace: str, count: int, concurrency: int) -> dict[str, Any]:
    call, close = await CLIENTS[name](kubeconfig)
    try:
        await measure(call, namespace, 20, concurrency)  # warm-up: connections, discovery, imports
        return await measure(call, namespace, count, concurrency)
    finally:
        await close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG"), required="KUBECONFIG" not in os.environ
    )
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--concurrency", default="1,8")
    p.add_argument("--clients", default=",".join(CLIENTS))
    p.add_argument("--namespace", default="kube-clients-bench", help="must exist")
    p.add_argument("--out", default="")
    args = p.parse_args()
    results: dict[str, Any] = {"loadavg_start": os.getloadavg()}
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        for name in args.clients.split(","):
            if name == "kr8s" and importlib.util.find_spec("kr8s") is None:
                print("kr8s is not installed: skipped", flush=True)
                continue
            result = asyncio.run(run_one(name, args.kubeconfig, args.namespace, args.count, concurrency))
            results[f"{name} c={concurrency}"] = result
            cells = "  ".join(
                f"{step}: {r['cpu_ms_per_request']:.2f} ms CPU, p50 {r['p50_ms']:.1f} / p95 {r['p95_ms']:.1f} ms, "
                f"{r['per_s']:.0f}/s"
                for step, r in result.items()
            )
            print(f"{name:>18} c={concurrency}  {cells}", flush=True)
    results["loadavg_end"] = os.getloadavg()
    print(f"load average start {results['loadavg_start'][0]:.1f}, end {results['loadavg_end'][0]:.1f}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
