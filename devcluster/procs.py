"""Child-process hygiene: spawn, wait for health, stop, and clean up on exit or signals."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from types import FrameType

Popen = subprocess.Popen[bytes]

# Runs between fork and the real binary: asks the kernel to SIGKILL the child when its parent dies
# (even by SIGKILL, where no Python cleanup can run), then execs in place so the pid is the binary's.
# The getppid check closes the race where the parent died before prctl took effect.
_PDEATHSIG_WRAPPER = (
    "import ctypes,os,sys\n"
    "ctypes.CDLL(None,use_errno=True).prctl(1,9,0,0,0)\n"  # PR_SET_PDEATHSIG, SIGKILL
    "if os.getppid()!=int(sys.argv[1]): sys.exit(70)\n"
    "os.execv(sys.argv[2],sys.argv[2:])\n"
)


class ProcessFailedError(RuntimeError):
    """A child exited or never became healthy; the message carries its log tail."""


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' if there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def spawn(argv: list[str], log: Path, *, detached: bool = False) -> Popen:
    """Start ``argv`` in its own session with output in ``log``.

    Unless ``detached``, the child is tied to this process with PR_SET_PDEATHSIG. The kernel ties it
    to the calling *thread*, so the wrapper is only used from the main thread; a worker thread that
    exits would otherwise take the control plane with it.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    if not detached and sys.platform == "linux" and threading.current_thread() is threading.main_thread():
        argv = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_WRAPPER, str(os.getpid()), *argv]
    with log.open("ab") as out:
        # A session of its own keeps a terminal's Ctrl-C away from the child: the parent stops it
        # in order instead of everything dying at once mid-request.
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def wait_healthy(proc: Popen, name: str, log: Path, probe: Callable[[], bool], timeout: float) -> None:
    """Poll ``probe`` until it is true; fail early with the log tail if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ProcessFailedError(
                f"{name} exited with code {proc.returncode}; last lines of {log}:\n{log_tail(log)}"
            )
        if probe():
            return
        if time.monotonic() > deadline:
            raise ProcessFailedError(
                f"{name} not healthy after {timeout:.0f}s; last lines of {log}:\n{log_tail(log)}"
            )
        time.sleep(0.05)


def _signal(proc: Popen, sig: int) -> None:
    if proc.returncode is not None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the group, in case a binary ever forks helpers


def terminate(procs: list[Popen], timeout: float = 10.0) -> None:
    """SIGTERM all of ``procs``, SIGKILL whatever is left after ``timeout``, and reap them.

    Every wait is bounded, so this is safe to call again from a signal handler that interrupted it.
    """
    for proc in procs:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


# --- processes that are not our children (``devcluster down``) ---------------------------------


def cmdline(pid: int) -> list[str]:
    """argv of ``pid`` from /proc ([] if gone, a zombie, or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def processes_under(root: Path, components: Collection[str]) -> dict[int, str]:
    """Live processes named one of ``components`` whose arguments point into ``root``: pid -> name.

    Scanning /proc instead of trusting a pid file means a recycled pid is never killed, and a
    half-finished start that wrote no state file is still cleaned up.
    """
    marker = f"{root.resolve()}/"
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = cmdline(int(entry.name))
        if argv and Path(argv[0]).name in components and any(marker in arg for arg in argv[1:]):
            found[int(entry.name)] = Path(argv[0]).name
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM ``pid``, SIGKILL it after ``timeout``, and wait until it is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            return


# --- cleanup on interpreter exit and fatal signals ---------------------------------------------

_live: dict[int, Callable[[], None]] = {}
_installed: set[str] = set()  # "atexit" and "signals", each installed once
_FATAL = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def stop_all() -> None:
    """Stop every registered cluster (atexit and signal handlers call this)."""
    for stop in list(_live.values()):
        with contextlib.suppress(Exception):
            stop()


def _on_fatal_signal(signum: int, frame: FrameType | None) -> None:
    stop_all()
    # Die of the same signal afterwards, so the exit status is what the sender expects.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def register(key: int, stop: Callable[[], None]) -> None:
    """Have ``stop`` run at interpreter exit or on SIGTERM/SIGHUP, until :func:`unregister`.

    SIGINT keeps Python's KeyboardInterrupt (the stack unwinds, then atexit runs); a handler is only
    installed for signals whose disposition is still the default, so nobody else's is replaced.
    """
    _live[key] = stop
    if "atexit" not in _installed:
        _installed.add("atexit")
        atexit.register(stop_all)
    # signal.signal works only in the main thread; a later registration from there installs them.
    if "signals" in _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed.add("signals")
    for sig in _FATAL:
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_fatal_signal)


def unregister(key: int) -> None:
    """Forget a cluster that was stopped."""
    _live.pop(key, None)
