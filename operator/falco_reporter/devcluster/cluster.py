"""LocalCluster: etcd + kube-apiserver (+ kube-controller-manager) as child processes on loopback."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

import yaml

from . import procs
from .binaries import find_binary, optional_binary
from .certs import CertPaths, generate_certs
from .crds import apply_crds

__all__ = ["ClusterStartError", "LocalCluster", "Ports", "apply_crds", "free_port"]

STATE_FILE = "state.json"
CONTEXT = "falco-reporter-dev"
# Garbage collection of ownerReferences and namespace deletion; the token controller lets
# legacy ServiceAccount token Secrets work. Nothing else: there is no kubelet to schedule onto.
CONTROLLERS = "garbage-collector-controller,namespace-controller,serviceaccount-token-controller"


class ClusterStartError(procs.ProcessFailedError):
    """The control plane did not come up; the message carries the failing component's log tail."""


@dataclass
class Ports:
    """Loopback ports of the components (0: not running)."""

    etcd_client: int = 0
    etcd_peer: int = 0
    apiserver: int = 0
    controller_manager: int = 0


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _probe(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310 - loopback URL we built
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


class LocalCluster:
    """A throwaway control plane: ``with LocalCluster() as c: ... c.kubeconfig ...``.

    ``state_dir`` holds certs, etcd data, logs, kubeconfig and ``state.json``; when omitted a temp
    dir is used and removed on stop. ``detached`` children outlive this Python process (``devcluster
    up``) and are not stopped at exit.
    """

    def __init__(self, state_dir: Path | str | None = None, *, controller_manager: bool = True,
                 detached: bool = False, timeout: float = 60.0) -> None:
        self._owns_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="falco-reporter-cluster-")).resolve()
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.certs = CertPaths.in_dir(self.state_dir / "pki")
        self.logs = self.state_dir / "logs"
        self.ports = Ports()
        self.server = ""
        self.controller_manager = controller_manager
        self.detached = detached
        self.timeout = timeout
        self.startup_seconds: float | None = None
        self._procs: dict[str, procs.Popen] = {}

    # --- public ---------------------------------------------------------------------------------

    @property
    def kubectl(self) -> Path:
        """The kubectl binary next to the control-plane binaries."""
        return find_binary("kubectl")

    @property
    def pids(self) -> dict[str, int]:
        """Pid of each started component."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context that trusts the cluster CA and authenticates as admin (system:masters)."""
        context = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        context.load_cert_chain(str(self.certs.admin_cert), str(self.certs.admin_key))
        return context

    def start(self) -> LocalCluster:
        """Start every component, wait until each is healthy, write the kubeconfig and state file."""
        if self._procs:
            raise RuntimeError("cluster already started")
        began = time.monotonic()
        if not self.detached:
            procs.register(id(self), self.stop)
        try:
            self._prepare()
            self._start_etcd()
            self._start_apiserver()
            binary = optional_binary("kube-controller-manager") if self.controller_manager else None
            if binary is not None:
                self._start_controller_manager(binary)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        self._write_state()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the components (controller-manager and apiserver before etcd); idempotent."""
        procs.unregister(id(self))
        order = [n for n in ("kube-controller-manager", "kube-apiserver") if n in self._procs]
        procs.terminate([self._procs[n] for n in order], timeout)
        if "etcd" in self._procs:
            procs.terminate([self._procs["etcd"]], timeout)
        self._procs.clear()
        if self._owns_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- steps ----------------------------------------------------------------------------------

    def _prepare(self) -> None:
        # Every start is a fresh cluster: old etcd data would hold objects signed by an old CA.
        shutil.rmtree(self.state_dir / "etcd", ignore_errors=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        generate_certs(self.certs.ca_cert.parent)
        self.ports = Ports(free_port(), free_port(), free_port())
        self.server = f"https://127.0.0.1:{self.ports.apiserver}"
        self._write_kubeconfig(self.kubeconfig)

    def _spawn(self, name: str, binary: Path, args: list[str]) -> tuple[procs.Popen, Path]:
        log = self.logs / f"{name}.log"
        proc = procs.spawn([str(binary), *args], log, detached=self.detached)
        self._procs[name] = proc
        return proc, log

    def _wait(self, name: str, proc: procs.Popen, log: Path, url: str, context: ssl.SSLContext | None) -> None:
        try:
            procs.wait_healthy(proc, name, log, lambda: _probe(url, context), self.timeout)
        except procs.ProcessFailedError as exc:
            raise ClusterStartError(str(exc)) from None

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports.etcd_client}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        proc, log = self._spawn("etcd", find_binary("etcd"), [
            "--name=devcluster", f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=devcluster={peer}",
            # Test data is disposable: skipping fsync makes every write several times faster.
            "--unsafe-no-fsync=true", "--log-level=warn",
        ])
        self._wait("etcd", proc, log, f"{client}/health", None)

    def _start_apiserver(self) -> None:
        c = self.certs
        proc, log = self._spawn("kube-apiserver", find_binary("kube-apiserver"), [
            f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports.apiserver}",
            f"--cert-dir={self.state_dir / 'apiserver'}",
            f"--tls-cert-file={c.serving_cert}", f"--tls-private-key-file={c.serving_key}",
            f"--client-ca-file={c.ca_cert}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={c.sa_pub}", f"--service-account-signing-key-file={c.sa_key}",
            # Without a ServiceAccount controller there is no default SA for the plugin to inject.
            "--disable-admission-plugins=ServiceAccount",
            # Loopback only: no default route may exist, and nothing must reconcile a real endpoint.
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
        ])
        self._wait("kube-apiserver", proc, log, f"{self.server}/readyz", self.ssl_context())

    def _start_controller_manager(self, binary: Path) -> None:
        self.ports.controller_manager = free_port()
        config = self.state_dir / "controller-manager.kubeconfig"
        self._write_kubeconfig(config)
        proc, log = self._spawn("kube-controller-manager", binary, [
            f"--kubeconfig={config}", f"--controllers={CONTROLLERS}",
            "--use-service-account-credentials=false", "--leader-elect=false",
            f"--service-account-private-key-file={self.certs.sa_key}", f"--root-ca-file={self.certs.ca_cert}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports.controller_manager}",
            f"--cert-dir={self.state_dir / 'controller-manager'}",
        ])
        # Its serving cert is self-signed, and /healthz is on the always-allowed paths.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        url = f"https://127.0.0.1:{self.ports.controller_manager}/healthz"
        self._wait("kube-controller-manager", proc, log, url, insecure)

    def _write_kubeconfig(self, path: Path) -> None:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT, "preferences": {},
            "clusters": [{"name": CONTEXT, "cluster": {
                "server": self.server, "certificate-authority-data": b64(self.certs.ca_cert)}}],
            "users": [{"name": "admin", "user": {
                "client-certificate-data": b64(self.certs.admin_cert),
                "client-key-data": b64(self.certs.admin_key)}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "admin"}}],
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yaml.safe_dump(config, out, sort_keys=False)

    def _write_state(self) -> None:
        state = {"server": self.server, "kubeconfig": str(self.kubeconfig), "pids": self.pids,
                 "ports": asdict(self.ports), "detached": self.detached, "startup_seconds": self.startup_seconds}
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
