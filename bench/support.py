"""Benchmark plumbing: processes, /proc readings, metric deltas, API watches and lists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from devcluster.net import free_port, probe
from devcluster.procs import wait_healthy
from devcluster.reporter import scrape, wait_for
from falco_reporter import API_GROUP, API_VERSION

ROOT = Path(__file__).resolve().parent.parent
GROUP, VERSION = API_GROUP, API_VERSION
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc -------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` value in kB (VmHWM: peak RSS, VmRSS: current)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MachineCpu:
    """Machine-wide CPU use between ``start()`` and ``stop()``, and how much of it was ours."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids

    @staticmethod
    def _total() -> tuple[float, float]:
        parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = parts[3] + parts[4]
        return sum(parts) / CLK_TCK, idle / CLK_TCK

    def start(self) -> MachineCpu:
        self._t0, self._i0 = self._total()
        self._ours0 = {pid: cpu_seconds(pid) for pid in self._pids()}
        self._self0 = _children_and_self()
        self._wall0 = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        t1, i1 = self._total()
        wall = time.monotonic() - self._wall0
        ours = sum(max(0.0, cpu_seconds(pid) - before) for pid, before in self._ours0.items())
        ours += _children_and_self() - self._self0
        busy = (t1 - self._t0) - (i1 - self._i0)  # CPU-seconds over all cores
        return {
            "wall_s": round(wall, 2),
            "machine_busy_pct": round(100 * busy / max(1e-9, t1 - self._t0), 1),
            "ours_cores": round(ours / max(1e-9, wall), 2),
            "others_cores": round(max(0.0, busy - ours) / max(1e-9, wall), 2),
        }


def _children_and_self() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --- processes ---------------------------------------------------------------------------------


class Reporter:
    """A real ``falco-reporter run|receiver`` process on loopback."""

    def __init__(
        self,
        kubeconfig: str,
        mode: str,
        log_dir: Path,
        *args: str,
        port: int | None = None,
        health_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health_url = f"http://127.0.0.1:{health_port}" if health_port else self.url
        argv = [
            sys.executable,
            "-m",
            "falco_reporter.cli",
            mode,
            "--kubeconfig",
            kubeconfig,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "WARNING",
            *args,
        ]
        if health_port:
            argv += ["--health-bind", f"127.0.0.1:{health_port}"]
        self.log_path = log_dir / f"{mode}-{self.port}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.pid = self.proc.pid

    def wait_healthy(self, timeout: float = 30) -> Reporter:
        url = f"{self.health_url}/healthz"
        wait_healthy(self.proc, "falco-reporter", self.log_path, lambda: probe(url), timeout)
        return self

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def metrics(self) -> dict[str, float]:
        return scrape(f"{self.health_url}/metrics")

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run_module(module: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``python -m bench.MODULE ... --out FILE`` as its own process and return its JSON result."""
    fd, name = tempfile.mkstemp(prefix=f"falco-reporter-bench-{module}-", suffix=".json")
    os.close(fd)
    out = Path(name)
    try:
        subprocess.run(
            [sys.executable, "-m", f"bench.{module}", *args, "--out", str(out)],
            cwd=ROOT,
            check=True,
            timeout=timeout,
        )
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    finally:
        out.unlink(missing_ok=True)


def start_module(module: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_http(url: str, timeout: float = 15) -> None:
    wait_for(lambda: probe(url), timeout=timeout, interval=0.1, what=url)


# --- Prometheus --------------------------------------------------------------------------------


def delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


# --- Kubernetes --------------------------------------------------------------------------------


class Kube:
    """The bench's cluster access (the synchronous client: the bench's threads are not an event loop)."""

    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def ensure_namespace(self, name: str) -> None:
        try:
            self.core.create_namespace({"metadata": {"name": name, "labels": {"falco-reporter-bench": "1"}}})
        except ApiException as exc:
            if exc.status != 409:
                raise

    def list(self, namespace: str, plural: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            page = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, limit=500, _continue=token or None
            )
            items += page.get("items", [])
            token = page.get("metadata", {}).get("continue") or ""
            if not token:
                return items

    def names(self, namespace: str, plural: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.list(namespace, plural)}

    def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def create_pods(self, namespace: str, names: list[str], image: str, *, replica_set: str = "") -> None:
        """Bare pods, or replicas of one ReplicaSet (one workload, as the answer cache is per workload)."""
        owners: list[dict[str, Any]] = []
        if replica_set:
            apps = client.AppsV1Api(self.core.api_client)
            rs = {
                "metadata": {"name": replica_set, "labels": {"app": "bench"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "bench"}},
                    "template": {
                        "metadata": {"labels": {"app": "bench"}},
                        "spec": {"containers": [{"name": "app", "image": image}]},
                    },
                },
            }
            try:
                created = apps.create_namespaced_replica_set(namespace, rs)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                created = apps.read_namespaced_replica_set(replica_set, namespace)
            owners = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": replica_set,
                    "uid": created.metadata.uid,
                    "controller": True,
                }
            ]
        for name in names:
            body = {
                "metadata": {"name": name, "labels": {"app": "bench"}, "ownerReferences": owners},
                "spec": {"containers": [{"name": "app", "image": image}]},
            }
            try:
                self.core.create_namespaced_pod(namespace, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise


class Watcher(threading.Thread):
    """Records when each object of a namespace is first seen (ADDED) through a watch."""

    def __init__(self, kubeconfig: str, namespace: str, plural: str) -> None:
        super().__init__(name=f"watch-{plural}", daemon=True)
        self.api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
        self.namespace, self.plural = namespace, plural
        self.seen: dict[str, float] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self._stop_flag = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        resource_version = ""
        while not self._stop_flag.is_set():
            w = watch.Watch()
            kwargs: dict[str, Any] = {"timeout_seconds": 5, "allow_watch_bookmarks": True}
            if resource_version:
                kwargs["resource_version"] = resource_version
            try:
                self.ready.set()
                for event in w.stream(
                    self.api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    self.plural,
                    **kwargs,
                ):
                    now = time.time()
                    obj = event["object"]
                    resource_version = obj.get("metadata", {}).get("resourceVersion", resource_version)
                    if event["type"] == "ADDED":
                        name = obj["metadata"]["name"]
                        self.seen.setdefault(name, now)
                        self.objects[name] = obj
                    if self._stop_flag.is_set():
                        break
            except ApiException as exc:
                if (
                    exc.status == 410
                ):  # expired: start over (ADDED again for every object, setdefault keeps the first)
                    resource_version = ""
                else:
                    time.sleep(0.5)
            except Exception:
                time.sleep(0.5)

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(10)
