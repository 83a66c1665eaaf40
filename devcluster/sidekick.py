"""A real Falcosidekick (built by ``make cluster-bins``) on loopback, its webhook output aimed at a receiver.

Configured the way the Falco chart configures it, through environment variables only (no file):
``WEBHOOK_ADDRESS``, ``WEBHOOK_CUSTOMHEADERS`` for the bearer token, ``WEBHOOK_MUTUALTLS`` with the
``MUTUALTLSCLIENT_*`` files, ``WEBHOOK_CHECKCERT``, ``WEBHOOK_MAXCONCURRENTREQUESTS``.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .binaries import find_binary
from .certs import MutualTlsPaths
from .net import free_port, probe
from .reporter import scrape

# Falcosidekick's Prometheus counters (its own names): alerts taken in, and webhook deliveries.
INPUTS = "falcosecurity_falcosidekick_inputs_total"
OUTPUTS = "falcosecurity_falcosidekick_outputs_total"


@dataclass(frozen=True)
class Webhook:
    """Where and how Falcosidekick's webhook output delivers."""

    address: str
    token: str = ""
    # Client certificate, its key, and the CA that signed the receiver's certificate.
    mutual_tls: MutualTlsPaths | None = None
    check_cert: bool = True
    max_concurrent: int = 1  # Falcosidekick's own default


def version(binary: Path | None = None) -> str:
    """``falcosidekick --version`` output."""
    out = subprocess.run(
        [str(binary or find_binary("falcosidekick")), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout + out.stderr


class Falcosidekick:
    """``with Falcosidekick(Webhook(...), log_dir) as fsk: fsk.post(alert_bytes)``."""

    def __init__(self, webhook: Webhook, log_dir: Path, *, port: int | None = None) -> None:
        self.webhook = webhook
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"falcosidekick-{self.port}.log"
        self._proc: procs.Popen | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("falcosidekick is not running")
        return self._proc.pid

    def environment(self) -> dict[str, str]:
        """The whole environment of the process: nothing inherited that its config loader could read."""
        w = self.webhook
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LISTENADDRESS": "127.0.0.1",
            "LISTENPORT": str(self.port),
            "WEBHOOK_ADDRESS": w.address,
            "WEBHOOK_CHECKCERT": str(w.check_cert).lower(),
            "WEBHOOK_MAXCONCURRENTREQUESTS": str(w.max_concurrent),
        }
        if w.token:
            env["WEBHOOK_CUSTOMHEADERS"] = f"Authorization:Bearer {w.token}"
        if w.mutual_tls is not None:
            env |= {
                "WEBHOOK_MUTUALTLS": "true",
                "MUTUALTLSCLIENT_CERTFILE": str(w.mutual_tls.client_cert),
                "MUTUALTLSCLIENT_KEYFILE": str(w.mutual_tls.client_key),
                "MUTUALTLSCLIENT_CACERTFILE": str(w.mutual_tls.ca_cert),
            }
        return env

    def start(self, timeout: float = 30) -> Falcosidekick:
        """Start it and wait for its /healthz."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                [str(find_binary("falcosidekick"))],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.environment(),
            )
        procs.wait_healthy(
            self._proc, "falcosidekick", self.log, lambda: probe(f"{self.url}/healthz"), timeout
        )
        return self

    def post(self, body: bytes, timeout: float = 10) -> int:
        """POST one alert to Falcosidekick's input; its HTTP status (200 = taken, forwarded later)."""
        req = urllib.request.Request(  # noqa: S310 - loopback URL we built
            f"{self.url}/", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                resp.read()
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def metrics(self) -> dict[str, float]:
        """Its /metrics page (see :func:`devcluster.reporter.scrape` for the keys)."""
        return scrape(f"{self.url}/metrics")

    def deliveries(self, status: str) -> float:
        """Webhook deliveries with Falcosidekick's outcome ``status`` ("ok" or "error")."""
        return self.metrics().get(f"{OUTPUTS}{{destination=webhook,status={status}}}", 0.0)

    def log_text(self) -> str:
        return procs.log_tail(self.log, 60)

    def stop(self) -> None:
        if self._proc is not None:
            procs.terminate([self._proc])
            self._proc = None

    def __enter__(self) -> Falcosidekick:
        return self if self._proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
