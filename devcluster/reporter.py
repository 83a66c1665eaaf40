"""Run the real falco-reporter process (operator and/or receiver) on loopback: demo, tests, bench."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .net import free_port, probe
from .procs import wait_healthy

__all__ = ["FalcoReporterProcess", "free_port", "post", "scrape", "wait_for"]


class FalcoReporterProcess:
    """``falco-reporter run|receiver`` as a child process, on a free loopback port."""

    def __init__(
        self,
        kubeconfig: str,
        *,
        mode: str = "run",
        extra: list[str] | None = None,
        log_dir: Path | None = None,
        port: int | None = None,
        health_port: int | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.mode = mode
        self.extra = extra or []
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # With --health-bind (needed under mutual TLS) probes and /metrics are plain HTTP there.
        self.health_port = health_port
        self.health_url = f"http://127.0.0.1:{health_port}" if health_port else self.url
        self.log_path = (
            log_dir or Path(tempfile.gettempdir())
        ) / f"falco-reporter-{self.mode}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool | None = None) -> FalcoReporterProcess:
        """Start; wait for /healthz unless told not to (there is none with --no-receiver)."""
        args = [
            sys.executable,
            "-m",
            "falco_reporter.cli",
            self.mode,
            "--kubeconfig",
            self.kubeconfig,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--flush-interval",
            "0.5",
            *self.extra,
        ]
        if self.health_port:
            args += ["--health-bind", f"127.0.0.1:{self.health_port}"]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if wait if wait is not None else "--no-receiver" not in self.extra:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        """Until /healthz answers; ProcessFailedError with the log tail if it exits or times out."""
        assert self.proc is not None
        url = f"{self.health_url}/healthz"
        wait_healthy(self.proc, f"falco-reporter {self.mode}", self.log_path, lambda: probe(url), timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.stop(signal.SIGKILL)

    def __enter__(self) -> FalcoReporterProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post(
    url: str,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str = "/v1/alerts",
    timeout: float = 10,
) -> tuple[int, dict[str, Any]]:
    """POST and return (status, decoded JSON body) whatever the status."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 - http(s) URLs of our own receiver
        url + path, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"{}")
        except ValueError:
            return exc.code, {"raw": raw.decode(errors="replace")}


def wait_for(predicate: Any, timeout: float = 20, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll until predicate() is truthy; return its value or fail with ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def scrape(url: str, timeout: float = 10) -> dict[str, float]:
    """Every sample of a Prometheus ``/metrics`` page as ``name{label=value,...}`` -> value.

    Labels are sorted, so a key can be written out by hand: ``..._total{outcome=created}``.
    """
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our loopback URL
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out
