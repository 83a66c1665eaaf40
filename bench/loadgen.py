"""Load generator for the receiver: raw HTTP/1.1 keep-alive connections, run as its own process.

    python bench/loadgen.py --url http://127.0.0.1:PORT --pattern dup --count 50000 \
        --concurrency 8 --duration 20 --namespace bench-dup --out result.json

Every connection sends one request, waits for the whole answer, then sends the next (no
pipelining), like Falcosidekick does per worker. ``--rate`` paces the sends instead (open loop:
request i is due at start + i/rate). Bounded by ``--count`` and ``--duration``. Only loopback
URLs are accepted.

The result (JSON) has the status counts, latency percentiles, the achieved rate and, with
``--record``, every acknowledged object (namespace, name, send time) for the caller to check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")

# The shape Falcosidekick's webhook output posts (Falco's alert plus uuid), from a real 0.43 alert.
TEMPLATE: dict[str, Any] = {
    "uuid": "",
    "hostname": "worker-1",
    "output": "",
    "output_fields": {
        "container.id": "6bc1b4be90d6",
        "container.image.repository": "docker.io/library/alpine",
        "container.image.tag": "3.19",
        "container.name": "app",
        "evt.arg.flags": "EXE_WRITABLE|EXE_LOWER_LAYER",
        "evt.time.iso8601": 0,
        "evt.type": "execve",
        "k8s.ns.name": "",
        "k8s.pod.name": "",
        "proc.cmdline": "sh -lc echo hello-from-shell",
        "proc.exepath": "/bin/busybox",
        "proc.name": "sh",
        "proc.pname": "containerd-shim",
        "proc.tty": 34816,
        "user.loginuid": -1,
        "user.name": "root",
        "user.uid": 0,
    },
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "source": "syscall",
    "tags": ["T1059", "container", "maturity_stable", "mitre_execution", "shell"],
    "time": "",
}

# Storm patterns: (rule, image repository, command line). Each is one LLM answer-cache key.
STORM_RULES = (
    ("Terminal shell in container", "sh", "/bin/busybox"),
    ("Read sensitive file untrusted", "cat", "/bin/cat"),
    ("Drop and execute new binary in container", "payload", "/tmp/payload"),  # noqa: S108 - alert data
    ("Search Private Keys or Passwords", "find", "/usr/bin/find"),
)
STORM_IMAGES = (
    "docker.io/library/nginx",
    "ghcr.io/acme/api",
    "quay.io/acme/worker",
    "docker.io/library/redis",
    "registry.k8s.io/pause",
)


def storm_patterns(count: int = 20) -> list[tuple[str, str, str, str]]:
    """``count`` distinct (rule, image, process, cmdline) patterns."""
    out = []
    for i in range(count):
        rule, proc, exe = STORM_RULES[i % len(STORM_RULES)]
        image = STORM_IMAGES[(i // len(STORM_RULES)) % len(STORM_IMAGES)]
        out.append((rule, image, f"{exe}|{proc}", f"{proc} --pattern {i}"))
    return out


def _stamp(now: float) -> tuple[str, int]:
    ns = int(now * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{ns % 1_000_000_000:09d}Z", ns


class Payloads:
    """Request bodies: per-request time and uuid vary, like real repeats of one alert."""

    def __init__(
        self,
        pattern: str,
        namespace: str,
        run_id: str,
        *,
        pods: int = 50,
        patterns: int = 20,
        seed: int = 1,
        start: int = 0,
    ) -> None:
        self.pattern = pattern
        self.namespace = namespace
        self.run_id = run_id
        self.pods = pods
        self.start = start
        self.storm = storm_patterns(patterns)
        self.rng = random.Random(seed)  # noqa: S311 - test data, not secrets

    def body(self, i: int) -> bytes:
        alert = dict(TEMPLATE)
        fields = dict(TEMPLATE["output_fields"])
        alert["output_fields"] = fields
        stamp, ns = _stamp(time.time())
        alert["time"], fields["evt.time.iso8601"] = stamp, ns
        alert["uuid"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        fields["k8s.ns.name"] = self.namespace
        if self.pattern == "dup":
            pod = f"{self.run_id}-web-0"
        elif self.pattern == "unique":
            pod = f"{self.run_id}-pod-{self.start + i}"
        else:  # storm: i-th alert -> (pattern, pod) drawn so every pair appears
            pair = self.rng.randrange(len(self.storm) * self.pods) if i >= len(self.storm) * self.pods else i
            rule, image, proc, cmdline = self.storm[pair % len(self.storm)]
            pod = f"{self.run_id}-pod-{pair // len(self.storm)}"
            alert["rule"] = rule
            fields["container.image.repository"] = image
            fields["proc.exepath"], fields["proc.name"] = proc.split("|")
            fields["proc.cmdline"] = cmdline
        fields["k8s.pod.name"] = pod
        alert["output"] = (
            f"{stamp}: {alert['priority']} {alert['rule']} | user=root process={fields['proc.name']} "
            f"command={fields['proc.cmdline']} container_id={fields['container.id']} k8s_pod_name={pod} "
            f"k8s_ns_name={self.namespace}"
        )
        return json.dumps(alert, separators=(",", ":")).encode()


@dataclass
class Results:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    acked: list[tuple[str, str, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after an error."""

    def __init__(self, host: str, port: int, path: str, timeout: float) -> None:
        self.host, self.port, self.path, self.timeout = host, port, path, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            "Connection: keep-alive\r\n"
        ).encode()

    async def request(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run(
    url: str,
    make_body: Callable[[int], bytes],
    *,
    count: int,
    concurrency: int,
    duration: float,
    rate: float,
    timeout: float,
    record: bool,
) -> tuple[Results, float]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host not in LOOPBACK:
        raise SystemExit(f"loadgen: only loopback targets are allowed, not {host}")
    path = parts.path if parts.path and parts.path != "/" else "/v1/alerts"
    results = Results()
    next_index = 0
    started = time.perf_counter()
    deadline = started + duration

    async def worker() -> None:
        nonlocal next_index
        conn = Connection(host, parts.port or 80, path, timeout)
        while next_index < count and time.perf_counter() < deadline:
            i = next_index
            next_index += 1
            if rate:
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            body = make_body(i)
            sent_wall = time.time()
            t0 = time.perf_counter()
            results.sent += 1
            try:
                status, data = await asyncio.wait_for(conn.request(body), timeout)
            except TimeoutError:
                conn.close()
                results.statuses[-1] += 1
                results.errors["timeout"] += 1
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                # Not an acknowledgement: the request may or may not have arrived.
                conn.close()
                results.statuses[0] += 1
                results.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            results.latencies.append(time.perf_counter() - t0)
            results.statuses[status] += 1
            if record and status == 202:
                answer = json.loads(data)
                results.acked.append((answer["namespace"], answer["name"], sent_wall))
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(results: Results, elapsed: float) -> dict[str, Any]:
    lat = results.latencies
    ok = results.statuses.get(202, 0) + results.statuses.get(200, 0)
    return {
        "sent": results.sent,
        "elapsed_s": elapsed,
        "statuses": {str(k): v for k, v in sorted(results.statuses.items())},
        "errors": dict(results.errors),
        "ok": ok,
        "rate_per_s": ok / elapsed if elapsed else 0.0,
        "latency_ms": {
            "p50": percentile(lat, 50) * 1000,
            "p90": percentile(lat, 90) * 1000,
            "p99": percentile(lat, 99) * 1000,
            "max": max(lat) * 1000 if lat else float("nan"),
        },
        "acked": results.acked,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--pattern", choices=("dup", "unique", "storm"), default="dup")
    p.add_argument("--namespace", default="bench")
    p.add_argument("--run-id", default="b")
    p.add_argument("--start", type=int, default=0, help="first index of unique alerts")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--duration", type=float, default=60.0, help="stop sending after this many seconds")
    p.add_argument("--rate", type=float, default=0.0, help="paced sends per second (0: as fast as answered)")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--pods", type=int, default=50)
    p.add_argument("--patterns", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--record", action="store_true", help="return every acknowledged object")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    payloads = Payloads(
        args.pattern,
        args.namespace,
        args.run_id,
        pods=args.pods,
        patterns=args.patterns,
        seed=args.seed,
        start=args.start,
    )
    results, elapsed = asyncio.run(
        run(
            args.url,
            payloads.body,
            count=args.count,
            concurrency=args.concurrency,
            duration=args.duration,
            rate=args.rate,
            timeout=args.timeout,
            record=args.record,
        )
    )
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(summary(results, elapsed), out)


if __name__ == "__main__":
    main()
