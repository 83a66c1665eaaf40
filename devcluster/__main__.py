"""``python -m devcluster up|down|status``: a detached dev cluster for ``make cluster-up``.

``up`` prints ``export KUBECONFIG=...`` on stdout (so ``eval "$(... up)"`` works) and everything
else on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from . import procs
from .binaries import REPO_ROOT, BinaryNotFoundError
from .certs import CertPaths
from .cluster import STATE_FILE, ClusterStartError, LocalCluster
from .crds import CrdApplyError, apply_crds
from .net import admin_context, probe
from .node import NodeStartError
from .node import cleanup as node_cleanup

DEFAULT_STATE_DIR = REPO_ROOT / ".devcluster"
COMPONENTS = ("kube-controller-manager", "kube-apiserver", "etcd")  # stop order
# What LocalCluster writes into a state dir; ``down`` removes only these, never a whole user dir.
STATE_ENTRIES = (
    STATE_FILE,
    "kubeconfig",
    "controller-manager.kubeconfig",
    "pki",
    "etcd",
    "logs",
    "apiserver",
    "controller-manager",
    "node",
)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_processes(state_dir: Path) -> dict[int, str]:
    """Live control-plane processes whose command line points into ``state_dir``: pid -> component."""
    return procs.processes_under(state_dir, COMPONENTS)


def _running(state_dir: Path, state: dict[str, Any]) -> bool:
    """True if every recorded process is alive and the API server answers /readyz."""
    live = find_processes(state_dir)
    pids = {int(pid): name for name, pid in state.get("pids", {}).items()}
    if not pids or any(live.get(pid) != name for pid, name in pids.items()):
        return False
    try:
        context = admin_context(CertPaths.in_dir(state_dir / "pki"))
    except (OSError, ssl.SSLError):
        return False
    # An etcd that was sent SIGTERM lingers while the apiserver holds watches open: alive, not usable.
    return probe(f"{state['server']}/readyz", context)


def down(state_dir: Path) -> int:
    """Stop the cluster in ``state_dir`` (verified via /proc) and remove its state."""
    # The node first (containers, kubelet, containerd, mounts, bridge, iptables), while the API is up.
    node_dir = state_dir / "node"
    for done in node_cleanup(node_dir, state_dir / "kubeconfig") if node_dir.exists() else []:
        _err(done)
    live = find_processes(state_dir)
    # Without etcd the apiserver's graceful shutdown hangs, and there is nothing left to save.
    grace = 10.0 if "etcd" in live.values() else 2.0
    for component in COMPONENTS:
        for pid in (p for p, name in live.items() if name == component):
            _err(f"stopping {component} (pid {pid})")
            procs.kill_pid(pid, grace)
    for name in STATE_ENTRIES:
        path = state_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if state_dir.is_dir() and not any(state_dir.iterdir()):
        state_dir.rmdir()
    _err(f"devcluster in {state_dir} is down" if live else f"no devcluster running in {state_dir}")
    return 0


def up(state_dir: Path, crd_dir: Path, controller_manager: bool, node: bool = False) -> int:
    """Start a detached cluster in ``state_dir`` unless one runs there; (re)apply the CRDs."""
    state = _read_state(state_dir)
    if (
        state is not None
        and _running(state_dir, state)
        and node == (state_dir / "node" / "node.json").exists()
    ):
        kubeconfig = Path(state["kubeconfig"])
        _err(f"devcluster already running: {state['server']}")
    else:
        if state is not None or find_processes(state_dir):
            _err("cleaning up a stale devcluster first")
            down(state_dir)
        try:
            cluster = LocalCluster(
                state_dir, controller_manager=controller_manager, detached=True, node=node
            ).start()
        except (ClusterStartError, NodeStartError, BinaryNotFoundError) as exc:
            _err(f"error: {exc}")
            return 1
        kubeconfig = cluster.kubeconfig
        _err(
            f"devcluster up in {cluster.startup_seconds:.1f}s: {cluster.server} "
            f"(pids {cluster.pids}, logs in {cluster.logs})"
        )
    started = time.monotonic()
    try:
        names = apply_crds(kubeconfig, crd_dir)
    except CrdApplyError as exc:
        _err(f"error: {exc}\nthe cluster is still running; fix the CRDs and run `up` again")
        return 1
    if names:
        _err(f"applied {len(names)} CRDs from {crd_dir} in {time.monotonic() - started:.1f}s")
    print(f"export KUBECONFIG={kubeconfig}")
    return 0


def status(state_dir: Path) -> int:
    """Print what runs in ``state_dir``; exit 0 only if the cluster is complete."""
    state = _read_state(state_dir)
    live = find_processes(state_dir)
    if state is None:
        _err(f"no devcluster state in {state_dir}" + (f"; stray processes: {live}" if live else ""))
        return 1
    for name, pid in state.get("pids", {}).items():
        print(f"{name:<24} pid {pid:<8} {'running' if live.get(int(pid)) == name else 'NOT RUNNING'}")
    ready = _running(state_dir, state)
    print(f"server      {state['server']} ({'ready' if ready else 'NOT READY'})")
    print(f"kubeconfig  {state['kubeconfig']}")
    return 0 if ready else 1


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down", "status"):
        cmd = sub.add_parser(name)
        cmd.add_argument(
            "--state-dir",
            type=Path,
            default=Path(os.environ.get("FALCO_REPORTER_DEVCLUSTER_DIR") or DEFAULT_STATE_DIR),
        )
        if name == "up":
            cmd.add_argument("--crds", type=Path, default=REPO_ROOT / "crds", help="CRD directory to apply")
            cmd.add_argument("--no-controller-manager", action="store_true")
            cmd.add_argument(
                "--node", action="store_true", help="also a node: containerd, kubelet, kube-proxy"
            )
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    if args.command == "up":
        return up(state_dir, args.crds, not args.no_controller_manager, args.node)
    if args.command == "down":
        return down(state_dir)
    return status(state_dir)


if __name__ == "__main__":
    sys.exit(main())
