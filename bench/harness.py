"""The benchmark's shared state and tools: cluster setup, the receiver, load generators, rows and checks.

Each phase (bench.receiver_phases, bench.operator_phases, bench.storm_phase) is a function of a
:class:`Bench`, which collects the table rows, the metric checks and the details for results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import support as S

ROOT = S.ROOT
CONCURRENCY = 8
FLUSH = 2.0


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:5]
        self.work = Path(tempfile.mkdtemp(prefix="falco-reporter-bench-"))
        self.rows: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.details: dict[str, Any] = {}
        self.cluster: Any = None
        self.kubeconfig = ""
        self.kube: S.Kube
        self.pids: list[int] = []
        self.receiver: S.Reporter | None = None
        self.profiles: dict[str, list[str]] = {}

    # --- helpers ---------------------------------------------------------------------------

    def ns(self, what: str) -> str:
        name = f"bench-{what}-{self.run_id}"
        self.kube.ensure_namespace(name)
        return name

    def row(
        self,
        measure: str,
        figure: str,
        reference: str = "",
        ratio: str = "",
        target: str = "",
        met: bool | None = None,
        **data: Any,
    ) -> None:
        self.rows.append(
            {
                "measure": measure,
                "figure": figure,
                "reference": reference,
                "ratio": ratio,
                "target": target,
                "met": met,
                **data,
            }
        )
        mark = {True: "met", False: "MISSED", None: ""}[met]
        print(
            f"  {measure}: {figure}  [ref {reference or '-'}; ratio {ratio or '-'}; target {target or '-'}] {mark}",
            flush=True,
        )

    def check(self, what: str, expected: float, actual: float, *, at_least: bool = False) -> bool:
        ok = actual >= expected if at_least else actual == expected
        self.checks.append(
            {
                "check": what,
                "expected": expected,
                "actual": actual,
                "ok": ok,
                "rule": ">=" if at_least else "==",
            }
        )
        return ok

    def machine(self) -> S.MachineCpu:
        return S.MachineCpu(lambda: [p for p in self.pids if Path(f"/proc/{p}").exists()])

    def loadgen(
        self,
        url: str,
        pattern: str,
        namespace: str,
        count: int,
        *,
        concurrency: int = CONCURRENCY,
        duration: float = 120,
        rate: float = 0,
        run_id: str = "",
        start: int = 0,
        record: bool = False,
        timeout: float = 600,
    ) -> dict[str, Any]:
        args = [
            "--url",
            url,
            "--pattern",
            pattern,
            "--namespace",
            namespace,
            "--count",
            str(count),
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
            "--rate",
            str(rate),
            "--run-id",
            run_id or self.run_id,
            "--start",
            str(start),
        ]
        return S.run_module("loadgen", *args, *(["--record"] if record else []), timeout=timeout)

    @contextlib.contextmanager
    def profile(self, pid: int, name: str, seconds: float) -> Iterator[None]:
        """py-spy (GIL-holding samples only) of ``pid`` while the block runs, with --profile."""
        spy = str(Path(sys.executable).parent / "py-spy")
        if self.args.profile and not Path(spy).exists():
            print("installing py-spy into the venv for --profile", flush=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True, timeout=300
            )
        proc = None
        if self.args.profile:
            out = self.work / f"profile-{name}.txt"
            proc = subprocess.Popen(
                [
                    spy,
                    "record",
                    "-p",
                    str(pid),
                    "-d",
                    str(int(seconds)),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "--gil",
                    "--nonblocking",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        try:
            yield
        finally:
            if proc is not None:
                proc.wait(seconds + 30)
                self.profiles[name] = _top_frames(out) if out.exists() else ["py-spy wrote no profile"]

    # --- setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        from devcluster.cluster import LocalCluster, apply_crds

        existing = os.environ.get("KUBECONFIG")
        if existing and not self.args.own_cluster:
            self.kubeconfig = existing
            print(f"using the cluster of KUBECONFIG={existing}", flush=True)
        else:
            started = time.monotonic()
            self.cluster = LocalCluster().start()
            self.kubeconfig = str(self.cluster.kubeconfig)
            self.pids += list(self.cluster.pids.values())
            print(
                f"LocalCluster up in {time.monotonic() - started:.1f}s (etcd + kube-apiserver on loopback)",
                flush=True,
            )
        apply_crds(self.kubeconfig, ROOT / "crds")
        self.kube = S.Kube(self.kubeconfig)
        host = self.kube.api.configuration.host.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"bench: the API server must be on loopback, not {host}")
        self.kube.ensure_namespace("falco-reporter")

    def teardown(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
        if self.cluster is not None:
            self.cluster.stop()
        elif self.kubeconfig:  # someone else's cluster: remove what we created
            for ns in self.kube.core.list_namespace(label_selector="falco-reporter-bench=1").items:
                if ns.metadata.name.endswith(self.run_id):
                    self.kube.core.delete_namespace(ns.metadata.name)
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    def note_receiver_memory(self) -> None:
        if self.receiver is not None and self.receiver.proc.poll() is None:
            hwm = S.status_kb(self.receiver.pid, "VmHWM")
            self.details["receiver_hwm_kb"] = max(hwm, self.details.get("receiver_hwm_kb", 0))

    def start_receiver(self) -> S.Reporter:
        if self.receiver is None:
            rec = self.receiver = S.Reporter(
                self.kubeconfig, "receiver", self.work, "--flush-interval", str(FLUSH)
            )
            rec.wait_healthy()
            self.pids.append(rec.pid)
            self.details["receiver_rss_start_kb"] = S.status_kb(rec.pid, "VmRSS")
        return self.receiver


def strip_acked(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k != "acked"}


def _top_frames(path: Path, count: int = 25) -> list[str]:
    """The functions with most samples on their stack (inclusive %), from a py-spy raw profile."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        total += int(samples)
        for frame in {
            re.sub(r"\(.*/|:\d+\)$", lambda m: "(" if m.group(0).startswith("(") else ")", f)
            for f in stack.split(";")
        }:
            inclusive[frame] += int(samples)
    return [f"{100 * n / max(1, total):.1f}% {frame}" for frame, n in inclusive.most_common(count)]


def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False
