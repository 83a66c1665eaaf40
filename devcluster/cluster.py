"""LocalCluster: etcd + kube-apiserver (+ kube-controller-manager) as child processes on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from . import procs
from .binaries import find_binary, optional_binary
from .certs import CertPaths, generate_certs
from .crds import apply_crds
from .net import (
    admin_context,
    free_port,
    free_ports,
    host_address,
    probe,
    unverified_context,
    write_kubeconfig,
)
from .node import LocalNode

__all__ = ["ClusterStartError", "LocalCluster", "Ports", "apply_crds", "free_port"]

STATE_FILE = "state.json"
_ATTEMPTS = 2
# Garbage collection of ownerReferences and namespace deletion; the token controller lets
# legacy ServiceAccount token Secrets work. Nothing else: there is no kubelet to schedule onto.
CONTROLLERS = (
    "garbage-collector-controller,namespace-controller,serviceaccount-token-controller,"
    "clusterrole-aggregation-controller"
)
# With a node, workloads and Services work as in a real cluster.
NODE_CONTROLLERS = (
    "node-lifecycle-controller,deployment-controller,replicaset-controller,endpointslice-controller,"
    "serviceaccount-controller,root-ca-certificate-publisher-controller"
)


class ClusterStartError(procs.ProcessFailedError):
    """The control plane did not come up; the message carries the failing component's log tail."""


@dataclass
class Ports:
    """Loopback ports of the components (0: not running)."""

    etcd_client: int = 0
    etcd_peer: int = 0
    apiserver: int = 0
    controller_manager: int = 0


class LocalCluster:
    """A throwaway control plane: ``with LocalCluster() as c: ... c.kubeconfig ...``.

    ``state_dir`` holds certs, etcd data, logs, kubeconfig and ``state.json``; when omitted a temp
    dir is used and removed on stop. ``detached`` children outlive this Python process (``devcluster
    up``) and are not stopped at exit.
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        controller_manager: bool = True,
        detached: bool = False,
        timeout: float = 60.0,
        node: bool = False,
    ) -> None:
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
        self.host_ip: str | None = None
        self.node: LocalNode | None = (
            LocalNode(self.state_dir / "node", self.kubeconfig, detached=detached) if node else None
        )

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
        return admin_context(self.certs)

    def start(self) -> LocalCluster:
        """Start every component, wait until each is healthy, write the kubeconfig and state file."""
        if self._procs:
            raise RuntimeError("cluster already started")
        began = time.monotonic()
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self._start_components()
                break
            except ClusterStartError as exc:
                self.stop()
                # A port found free can be taken by someone else before our child binds it.
                if attempt == _ATTEMPTS or "address already in use" not in str(exc):
                    raise
            except BaseException:
                self.stop()
                raise
        self.startup_seconds = time.monotonic() - began
        self._write_state()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node (if any), then controller-manager and apiserver before etcd; idempotent."""
        procs.unregister(id(self))
        if self.node is not None:
            self.node.stop()
        with contextlib.suppress(RuntimeError, ProcessLookupError, PermissionError):
            self.freeze_apiserver(False)  # a frozen API server would sit out its SIGTERM until killed
        order = [n for n in ("kube-controller-manager", "kube-apiserver") if n in self._procs]
        etcd = self._procs.get("etcd")
        # Without etcd the apiserver's graceful shutdown hangs, and there is nothing left to save.
        grace = timeout if etcd is not None and etcd.poll() is None else min(timeout, 2.0)
        procs.terminate([self._procs[n] for n in order], grace)
        if "etcd" in self._procs:
            procs.terminate([self._procs["etcd"]], timeout)
        self._procs.clear()
        if self._owns_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def stop_apiserver(self) -> None:
        """Kill the API server as a crash would (SIGKILL); etcd keeps every object. For outage tests."""
        proc = self._procs.pop("kube-apiserver", None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def freeze_apiserver(self, frozen: bool) -> None:
        """SIGSTOP (``frozen``) or SIGCONT the API server: its connections stay open but nothing is
        answered until it is thawed, as on an overloaded control plane. For slowness tests."""
        proc = self._procs.get("kube-apiserver")
        if proc is None or proc.poll() is not None:
            raise RuntimeError("the API server is not running")
        os.killpg(proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def start_apiserver(self) -> None:
        """Start the API server again after :meth:`stop_apiserver`: same port, flags and certificates."""
        if "kube-apiserver" in self._procs:
            raise RuntimeError("the API server is running")
        self._start_apiserver()
        self._write_state()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- steps ----------------------------------------------------------------------------------

    def _start_components(self) -> None:
        if not self.detached:
            procs.register(id(self), self.stop)
        self._prepare()
        self._start_etcd()
        self._start_apiserver()
        binary = optional_binary("kube-controller-manager") if self.controller_manager else None
        if binary is not None:
            self._start_controller_manager(binary)
        else:
            self.ports.controller_manager = 0
        if self.node is not None:
            self.node.start()

    def _prepare(self) -> None:
        # Every start is a fresh cluster: old etcd data would hold objects signed by an old CA.
        shutil.rmtree(self.state_dir / "etcd", ignore_errors=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Pods reach the API server through the `kubernetes` Service, whose endpoint must be an
        # address routable from their network: the host's, when there is a node.
        self.host_ip = host_address() if self.node is not None else None
        if self.node is not None:
            self.node.client_ca = self.certs.ca_cert
            self.node.node_ip = self.host_ip or self.node.node_ip
        generate_certs(self.certs.ca_cert.parent, (self.host_ip,) if self.host_ip else ())
        self.ports = Ports(*free_ports(4))
        self.server = f"https://127.0.0.1:{self.ports.apiserver}"
        write_kubeconfig(self.kubeconfig, self.server, self.certs)

    def _spawn(self, name: str, binary: Path, args: list[str]) -> tuple[procs.Popen, Path]:
        log = self.logs / f"{name}.log"
        proc = procs.spawn([str(binary), *args], log, detached=self.detached)
        self._procs[name] = proc
        return proc, log

    def _wait(
        self, name: str, proc: procs.Popen, log: Path, url: str, context: ssl.SSLContext | None
    ) -> None:
        try:
            procs.wait_healthy(proc, name, log, lambda: probe(url, context), self.timeout)
        except procs.ProcessFailedError as exc:
            raise ClusterStartError(str(exc)) from None

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports.etcd_client}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        proc, log = self._spawn(
            "etcd",
            find_binary("etcd"),
            [
                "--name=devcluster",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=devcluster={peer}",
                # Test data is disposable: skipping fsync makes every write several times faster.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                # A lone member still waits one election timeout before leading: 100 ms instead of 1 s.
                "--heartbeat-interval=10",
                "--election-timeout=100",
            ],
        )
        self._wait("etcd", proc, log, f"{client}/health", None)

    def _start_apiserver(self) -> None:
        c = self.certs
        proc, log = self._spawn(
            "kube-apiserver",
            find_binary("kube-apiserver"),
            [
                f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
                f"--secure-port={self.ports.apiserver}",
                f"--cert-dir={self.state_dir / 'apiserver'}",
                f"--tls-cert-file={c.serving_cert}",
                f"--tls-private-key-file={c.serving_key}",
                f"--client-ca-file={c.ca_cert}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={c.sa_pub}",
                f"--service-account-signing-key-file={c.sa_key}",
                *self._reach_args(),
            ],
        )
        self._wait("kube-apiserver", proc, log, f"{self.server}/readyz", self.ssl_context())

    def _reach_args(self) -> list[str]:
        """Who can reach the API server, and whether pods get ServiceAccount tokens."""
        if self.host_ip is None:
            return [
                "--bind-address=127.0.0.1",
                # Without a ServiceAccount controller there is no default SA for the plugin to inject.
                "--disable-admission-plugins=ServiceAccount",
                # Loopback only: no default route may exist, and nothing must reconcile a real endpoint.
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
            ]
        # A node's pods use in-cluster config: the `kubernetes` Service points at the host address
        # (the serving certificate names it), and the ServiceAccount plugin projects their tokens.
        return [
            "--bind-address=0.0.0.0",  # loopback for us, the host address for pods
            f"--advertise-address={self.host_ip}",
            "--endpoint-reconciler-type=lease",
            # Logs and exec: the kubelet at its address, trusting our CA's admin certificate.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={self.certs.admin_cert}",
            f"--kubelet-client-key={self.certs.admin_key}",
        ]

    def _start_controller_manager(self, binary: Path) -> None:
        config = self.state_dir / "controller-manager.kubeconfig"
        write_kubeconfig(config, self.server, self.certs)
        proc, log = self._spawn(
            "kube-controller-manager",
            binary,
            [
                f"--kubeconfig={config}",
                f"--controllers={CONTROLLERS}" + (f",{NODE_CONTROLLERS}" if self.node else ""),
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                f"--service-account-private-key-file={self.certs.sa_key}",
                f"--root-ca-file={self.certs.ca_cert}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.controller_manager}",
                f"--cert-dir={self.state_dir / 'controller-manager'}",
            ],
        )
        # Its serving cert is self-signed, and /healthz is on the always-allowed paths.
        url = f"https://127.0.0.1:{self.ports.controller_manager}/healthz"
        self._wait("kube-controller-manager", proc, log, url, unverified_context())

    def _write_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "pids": self.pids,
            "ports": asdict(self.ports),
            "detached": self.detached,
            "startup_seconds": self.startup_seconds,
        }
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
