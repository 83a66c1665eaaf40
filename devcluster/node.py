"""A real node on the local control plane: containerd (CRI), CNI bridge, kubelet, kube-proxy, kube-scheduler.

Everything lives under one directory (config, containerd root and state, runc root, kubelet root, pod
logs, CNI config and IP allocations), so teardown knows exactly what to remove: the processes whose
command line points into it, the mounts below it, the CNI bridge and the iptables chains the node
created. Needs root and Debian's containerd, runc and CNI plugins (``hack/node-deps.sh``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from . import procs
from .binaries import find_binary
from .images import import_image, pause_image
from .net import free_ports, probe
from .node_config import (
    BRIDGE,
    NODE_NAME,
    POD_SUBNET,
    NodePaths,
    cni_config,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)

__all__ = [
    "BRIDGE",
    "NODE_NAME",
    "POD_SUBNET",
    "LocalNode",
    "NodeStartError",
    "cleanup",
    "node_processes",
    "pod_netns",
]

# Stop order: the scheduler and kube-proxy first, then the kubelet, containerd, and its shims.
COMPONENTS = ("kube-scheduler", "kube-proxy", "kubelet", "containerd", "containerd-shim-runc-v2")


class NodeStartError(procs.ProcessFailedError):
    """The node did not come up; the message carries the failing component's log tail."""


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


class LocalNode:
    """The node's processes, started in order and stopped in reverse by :meth:`stop`."""

    def __init__(self, root: Path, kubeconfig: Path, *, detached: bool = False, timeout: float = 90) -> None:
        self.paths = NodePaths(root)
        self.kubeconfig = kubeconfig
        self.detached = detached
        self.timeout = timeout
        self._procs: dict[str, procs.Popen] = {}
        # The address the node registers and its kubelet serves on (logs, exec): the host's when
        # there is one, so the API server can reach it and pods can reach the API server.
        self.node_ip = "127.0.0.1"
        self.client_ca: Path | None = None

    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self._procs.items()}

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``ctr`` against this node's containerd, in the CRI namespace."""
        return _run(["ctr", "--address", str(self.paths.socket), "-n", "k8s.io", *args], timeout)

    def start(self) -> LocalNode:
        """containerd, the pause image, then kube-scheduler, kubelet and kube-proxy; waits for Ready."""
        cleanup(self.paths.root)  # whatever an earlier run left behind
        p = self.paths
        for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "logs", "config", "images"):
            (p.root / sub).mkdir(parents=True, exist_ok=True)
        kubelet_port, kubelet_healthz, proxy_healthz, proxy_metrics, sched_port = free_ports(5)
        image = pause_image(find_binary("pause"), p.root / "images")
        (p.root / "config" / "containerd.toml").write_text(containerd_config(p, image.name))
        (p.root / "cni" / "net.d" / "10-falco-reporter.conflist").write_text(
            json.dumps(cni_config(p), indent=1)
        )
        self._spawn(
            "containerd",
            Path(shutil.which("containerd") or "containerd"),
            ["--config", str(p.root / "config" / "containerd.toml")],
        )
        self._wait("containerd", lambda: self.ctr("version", timeout=5).returncode == 0)
        import_image(self.ctr, image)
        self._spawn(
            "kube-scheduler",
            find_binary("kube-scheduler"),
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={sched_port}",
                f"--cert-dir={p.root / 'scheduler'}",
            ],
        )
        kubelet_yaml = p.root / "config" / "kubelet.yaml"
        kubelet_yaml.write_text(
            yaml.safe_dump(kubelet_config(p, self.node_ip, kubelet_port, kubelet_healthz, self.client_ca))
        )
        self._spawn(
            "kubelet",
            find_binary("kubelet"),
            [
                f"--config={kubelet_yaml}",
                f"--kubeconfig={self.kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--root-dir={p.root / 'kubelet'}",
                f"--cert-dir={p.root / 'kubelet-pki'}",
                f"--node-ip={self.node_ip}",
            ],
        )
        self._wait("kubelet", lambda: probe(f"http://127.0.0.1:{kubelet_healthz}/healthz"))
        proxy_yaml = p.root / "config" / "kube-proxy.yaml"
        proxy_yaml.write_text(
            yaml.safe_dump(kube_proxy_config(self.kubeconfig, proxy_healthz, proxy_metrics))
        )
        self._spawn("kube-proxy", find_binary("kube-proxy"), [f"--config={proxy_yaml}"])
        self._wait("kube-proxy", lambda: probe(f"http://127.0.0.1:{proxy_healthz}/healthz"))
        self._wait("kubelet", self._ready, "node Ready")
        (p.root / "node.json").write_text(json.dumps({"pids": self.pids, "image": image.name}) + "\n")
        return self

    def stop(self) -> None:
        """Drain pods, stop every process, remove mounts, netns, bridge and chains (:func:`cleanup`)."""
        self._procs.clear()
        cleanup(self.paths.root, self.kubeconfig)

    # --- steps ----------------------------------------------------------------------------------

    def _spawn(self, name: str, binary: Path, args: list[str]) -> None:
        self._procs[name] = procs.spawn(
            [str(binary), *args], self.paths.logs / f"{name}.log", detached=self.detached
        )

    def _wait(self, component: str, check: Callable[[], bool], what: str = "") -> None:
        """Wait for ``check`` while ``component`` runs; its log tail explains a failure."""
        log = self.paths.logs / f"{component}.log"
        try:
            procs.wait_healthy(self._procs[component], what or component, log, check, self.timeout)
        except procs.ProcessFailedError as exc:
            raise NodeStartError(str(exc)) from None

    def _ready(self) -> bool:
        out = _run(
            [
                str(find_binary("kubectl")),
                f"--kubeconfig={self.kubeconfig}",
                "get",
                "node",
                NODE_NAME,
                "-o",
                "json",
            ],
            10,
        )
        if out.returncode != 0:
            return False
        conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


# --- teardown (also used by ``devcluster down``) ------------------------------------------------


def node_processes(root: Path) -> dict[int, str]:
    """Live node processes whose command line points into ``root``: pid -> component."""
    return procs.processes_under(root, COMPONENTS)


def _kill_containers(runc_root: Path) -> None:
    """Kill every container runc runs under our root (pods, sandboxes); their shims then exit."""
    for namespace_root in runc_root.glob("*"):
        out = _run(["runc", "--root", str(namespace_root), "list", "-q"], 30)
        for container in out.stdout.split():
            _run(["runc", "--root", str(namespace_root), "kill", "--all", container, "KILL"], 30)
            _run(["runc", "--root", str(namespace_root), "delete", "--force", container], 30)


def _mounts_under(root: Path) -> list[str]:
    marker = f"{root.resolve()}/"
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(marker):
                points.append(point)
    return sorted(points, key=lambda m: m.count("/"), reverse=True)


def _iptables_chains(table: str) -> list[str]:
    out = _run(["iptables", "-t", table, "-S"], 30)
    return [line.split()[1] for line in out.stdout.splitlines() if line.startswith("-N ")]


def _remove_chains(prefixes: tuple[str, ...]) -> list[str]:
    """Delete the rules jumping to chains named with ``prefixes``, then the chains; returns their names."""
    removed: list[str] = []
    for table in ("filter", "nat", "mangle"):
        ours = [c for c in _iptables_chains(table) if c.startswith(prefixes)]
        if not ours:
            continue
        rules = _run(["iptables", "-t", table, "-S"], 30).stdout.splitlines()
        for rule in rules:
            parts = shlex.split(rule)  # comments are quoted and hold spaces
            if parts[:1] == ["-A"] and "-j" in parts and parts[parts.index("-j") + 1] in ours:
                _run(["iptables", "-t", table, "-D", *parts[1:]], 30)
        for chain in ours:
            _run(["iptables", "-t", table, "-F", chain], 30)
        for chain in ours:
            _run(["iptables", "-t", table, "-X", chain], 30)
        removed += [f"{table}/{c}" for c in ours]
    return removed


def _drain(root: Path, kubeconfig: Path) -> None:
    """Delete the node's pods through the API so the kubelet tears each sandbox down (CNI DEL)."""
    kubelet_alive = any(name == "kubelet" for name in node_processes(root).values())
    if not kubelet_alive or not kubeconfig.exists():
        return
    kubectl = [str(find_binary("kubectl")), f"--kubeconfig={kubeconfig}", "--request-timeout=5s"]
    selector = f"--field-selector=spec.nodeName={NODE_NAME}"
    _run([*kubectl, "delete", "pods", "-A", selector, "--grace-period=1", "--timeout=40s"], 60)
    runc = NodePaths(root).runc_root
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(
        _run(["runc", "--root", str(ns), "list", "-q"], 10).stdout.strip() for ns in runc.glob("*")
    ):
        time.sleep(0.2)


def pod_netns() -> list[str]:
    """Network namespaces containerd pinned under /run/netns that hold an address of our pod subnet."""
    subnet = ipaddress.ip_network(POD_SUBNET)
    ours = []
    for pinned in Path("/run/netns").glob("cni-*"):
        out = _run(["ip", "netns", "exec", pinned.name, "ip", "-o", "-4", "addr", "show"], 10).stdout
        addresses = [word.split("/")[0] for word in out.split() if "/" in word and word[0].isdigit()]
        if any(ipaddress.ip_address(a) in subnet for a in addresses):
            ours.append(pinned.name)
    return ours


def cleanup(root: Path, kubeconfig: Path | None = None) -> list[str]:
    """Remove everything a node under ``root`` created; returns what was done (idempotent).

    With ``kubeconfig`` (API still up) its pods are deleted first, so the kubelet removes their
    sandboxes cleanly; what is left after that is killed and swept below either way.
    """
    done: list[str] = []
    if kubeconfig is not None:
        _drain(root, kubeconfig)
    if root.exists():
        _kill_containers(NodePaths(root).runc_root)
    live = node_processes(root)
    for component in COMPONENTS:
        for pid in (p for p, name in live.items() if name == component):
            procs.kill_pid(pid, 10.0)
            done.append(f"stopped {component} (pid {pid})")
    for point in _mounts_under(root):
        if _run(["umount", point], 30).returncode != 0:
            _run(["umount", "-l", point], 30)
        done.append(f"unmounted {point}")
    for name in pod_netns():
        _run(["ip", "netns", "delete", name], 30)
        done.append(f"deleted pod network namespace {name}")
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        _run(["ip", "link", "delete", BRIDGE], 30)
        done.append(f"deleted bridge {BRIDGE}")
    if shutil.which("iptables"):
        # kube-proxy's KUBE-* chains, the kubelet's KUBE-* canaries, and the CNI plugins' CNI-* chains.
        removed = _remove_chains(("CNI-", "KUBE-"))
        if removed:
            done.append(f"removed iptables chains {', '.join(removed)}")
    return done
