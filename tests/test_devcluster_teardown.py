"""No control-plane process outlives its owner: interrupted parents, failed starts, `devcluster up`/`down`."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devcluster.binaries import BinaryNotFoundError, find_binary
from devcluster.cluster import ClusterStartError, LocalCluster
from devcluster.net import probe

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), str(ROOT / "operator"), os.environ.get("PYTHONPATH")])
    ),
}
COMPONENTS = {"etcd", "kube-apiserver", "kube-controller-manager"}

# Starts a cluster in a temp dir without a `with` block, so only atexit, signal handling and
# PR_SET_PDEATHSIG can clean up after it.
CHILD = """
import time
from devcluster.cluster import LocalCluster
cluster = LocalCluster().start()
print("READY", cluster.state_dir, flush=True)
time.sleep(600)
"""


def control_plane_processes(state_dir: Path) -> dict[int, str]:
    """Live etcd/kube-* processes whose command line mentions ``state_dir`` (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = Path(argv[0].decode(errors="replace")).name
        if name in COMPONENTS and any(f"{state_dir}/".encode() in arg for arg in argv[1:]):
            found[int(entry.name)] = name
    return found


def wait_until_gone(state_dir: Path, timeout: float) -> dict[int, str]:
    """Poll until no process points at ``state_dir``; return what is left after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := control_plane_processes(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_leftovers(state_dir: Path) -> None:
    """Safety net so a failing test does not leak a control plane."""
    for pid in control_plane_processes(state_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def devcluster(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devcluster", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )


@pytest.mark.cluster
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_interrupted_parent_leaves_no_control_plane(tmp_path, sig):
    """A Python process killed by Ctrl-C, SIGTERM or even SIGKILL takes etcd and kube-* down with it."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**ENV, "TMPDIR": str(tmp_path)},
        text=True,
    )
    state = tmp_path  # LocalCluster's temp dir is created in here
    try:
        ready, _, _ = select.select([child.stdout], [], [], 90)
        line = child.stdout.readline() if ready else ""
        assert line.startswith("READY "), (
            f"child did not start: {line!r} {'' if ready else child.stderr.read()}"
        )
        state = Path(line.split(maxsplit=1)[1].strip())
        before = control_plane_processes(state)
        assert {"etcd", "kube-apiserver"} <= set(before.values()), before
        child.send_signal(sig)
        assert child.wait(timeout=30) == -sig
        if sig == signal.SIGKILL:
            # No Python code runs: the kernel's PR_SET_PDEATHSIG kills the children, asynchronously.
            assert wait_until_gone(state, timeout=5) == {}
        else:
            # Handled in Python: the children were stopped in order and the temp dir removed.
            assert control_plane_processes(state) == {}
            assert not state.exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        kill_leftovers(state)


@pytest.mark.cluster
def test_cli_up_is_idempotent_and_down_leaves_nothing(tmp_path):
    """`up` starts a detached cluster (twice is a no-op), `status` sees it, `down` stops it and removes the state."""
    state, crds = tmp_path / "devcluster", tmp_path / "no-crds"
    crds.mkdir()
    try:
        first = devcluster("up", "--state-dir", str(state), "--crds", str(crds))
        assert first.returncode == 0, first.stderr
        assert first.stdout == f"export KUBECONFIG={state / 'kubeconfig'}\n"
        pids = json.loads((state / "state.json").read_text())["pids"]
        assert set(control_plane_processes(state)) == set(pids.values())

        kubectl = [str(ROOT / "bin" / "kubectl"), "--kubeconfig", str(state / "kubeconfig")]
        assert (
            subprocess.run(
                [*kubectl, "get", "namespace", "default", "-o", "name"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            == "namespace/default"
        )

        again = devcluster("up", "--state-dir", str(state), "--crds", str(crds))
        assert again.returncode == 0, again.stderr
        assert again.stdout == first.stdout
        assert "already running" in again.stderr
        assert json.loads((state / "state.json").read_text())["pids"] == pids
        assert devcluster("status", "--state-dir", str(state)).returncode == 0

        down = devcluster("down", "--state-dir", str(state))
        assert down.returncode == 0, down.stderr
        assert control_plane_processes(state) == {}
        assert not state.exists()
        assert devcluster("status", "--state-dir", str(state)).returncode == 1
    finally:
        kill_leftovers(state)


@pytest.mark.cluster
def test_cli_up_replaces_a_broken_cluster(tmp_path):
    """`up` over a cluster whose etcd died starts a fresh one instead of reporting it as running."""
    state, crds = tmp_path / "devcluster", tmp_path / "no-crds"
    crds.mkdir()
    try:
        assert devcluster("up", "--state-dir", str(state), "--crds", str(crds)).returncode == 0
        old = json.loads((state / "state.json").read_text())["pids"]
        os.kill(old["etcd"], signal.SIGKILL)
        again = devcluster("up", "--state-dir", str(state), "--crds", str(crds))
        assert again.returncode == 0, again.stderr
        assert "stale" in again.stderr
        new = json.loads((state / "state.json").read_text())["pids"]
        assert set(new.values()).isdisjoint(old.values())
        assert set(control_plane_processes(state)) == set(new.values())
        assert devcluster("status", "--state-dir", str(state)).returncode == 0
        assert devcluster("down", "--state-dir", str(state)).returncode == 0
        assert control_plane_processes(state) == {}
    finally:
        kill_leftovers(state)


def test_down_never_kills_a_process_that_is_not_ours(tmp_path):
    """`down` checks /proc before killing: a recorded pid that now belongs to another program survives."""
    state = tmp_path / "devcluster"
    state.mkdir()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (state / "state.json").write_text(
            json.dumps(
                {
                    "server": "https://127.0.0.1:1",
                    "kubeconfig": str(state / "kubeconfig"),
                    "pids": {"etcd": bystander.pid, "kube-apiserver": bystander.pid},
                }
            )
        )
        assert devcluster("down", "--state-dir", str(state)).returncode == 0
        assert bystander.poll() is None
        assert not state.exists()
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.cluster
def test_failed_start_reports_the_log_and_stops_what_started(tmp_path, monkeypatch):
    """If kube-apiserver dies at startup, the error shows its log and the already running etcd is stopped."""
    bins = tmp_path / "bin"
    bins.mkdir()
    (bins / "etcd").symlink_to(find_binary("etcd"))
    fake = bins / "kube-apiserver"
    fake.write_text("#!/bin/sh\necho 'E0101 boom: refusing these flags' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("FALCO_REPORTER_BIN_DIR", str(bins))
    state = tmp_path / "state"
    with pytest.raises(ClusterStartError) as err:
        LocalCluster(state, controller_manager=False).start()
    assert "kube-apiserver exited with code 3" in str(err.value)
    assert "boom: refusing these flags" in str(err.value)
    assert control_plane_processes(state) == {}
    assert (state / "logs" / "etcd.log").exists()


def test_missing_binaries_say_how_to_build_them(tmp_path, monkeypatch):
    """Without binaries, starting a cluster fails with a hint to run `make cluster-bins`."""
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("FALCO_REPORTER_BIN_DIR", str(tmp_path))
    with pytest.raises(BinaryNotFoundError, match="make cluster-bins"):
        LocalCluster(tmp_path / "state").start()


@pytest.mark.cluster
def test_frozen_api_server_answers_nothing_and_stop_still_ends_it_with_sigterm(tmp_path):
    """A frozen API server answers nothing until thawed, and stop() thaws one still frozen, so it
    exits on SIGTERM instead of being killed after the grace period."""
    cluster = LocalCluster(tmp_path / "state", controller_manager=False).start()
    try:
        apiserver = cluster._procs["kube-apiserver"]
        readyz = f"{cluster.server}/readyz"
        cluster.freeze_apiserver(True)
        assert not probe(readyz, cluster.ssl_context())
        cluster.freeze_apiserver(False)
        assert probe(readyz, cluster.ssl_context())
        cluster.freeze_apiserver(True)
        cluster.stop(timeout=60)
        assert apiserver.returncode != -signal.SIGKILL, "the frozen API server was killed, not stopped"
    finally:
        cluster.stop()
        kill_leftovers(tmp_path / "state")
