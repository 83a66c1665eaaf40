"""Indicator checks that apply whatever rule fired: mining, reverse shells, download-and-run,
execution from writable or hidden places, kernel-thread masquerade, and where the peer is.

Each check reads the (already redacted) alert through a FieldView and returns Evidence; none
of them consults the rule, so a custom rule gets the same judgement as an upstream one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from falco_reporter.models.report import Evidence, Strength
from falco_reporter.reporting.evidence.fields import FieldView, peer_scope

_CMD_FIELDS = ("proc.cmdline", "proc.pcmdline", "proc.exeline", "evt.args")
#: Ports of well-known mining pools (the upstream miner rule's list is similar); 3333/4444/5555
#: are also used by ordinary software, so a port alone is moderate.
_POOL_PORTS = frozenset(
    {
        "3333",
        "3334",
        "3357",
        "4444",
        "5555",
        "5556",
        "5588",
        "5730",
        "6099",
        "6666",
        "7777",
        "7778",
        "8333",
        "8888",
        "8899",
        "9332",
        "9999",
        "14433",
        "14444",
        "45560",
        "45700",
    }
)
_STRATUM = re.compile(r"stratum\d?\+(?:tcp|ssl|tls)://\S+", re.IGNORECASE)
_POOL_OPTION = re.compile(r"(^|\s)(-o|--url)[= ]\s*(?:[a-z0-9+]+://)?[^\s:/]+:(\d+)", re.IGNORECASE)
_MINER_NAMES = re.compile(
    r"^(xmrig|xmr-stak|minerd|cpuminer|ccminer|nbminer|t-rex|lolminer|ethminer|"
    r"phoenixminer|srbminer|kdevtmpfsi|kinsing|xmrigDaemon)$",
    re.IGNORECASE,
)
_MINER_FLAGS = re.compile(
    r"(^|\s)(--donate-level|--cpu-priority|--randomx|--coin|--nicehash|-a\s+rx/0|"
    r"--algo[= ]\S*(rx|cryptonight|ethash|kawpow))",
    re.IGNORECASE,
)
# Monero addresses: 95 (or 106, integrated) base58 characters starting with 4 or 8.
_WALLET = re.compile(
    r"(?<![1-9A-HJ-NP-Za-km-z])[48][1-9A-HJ-NP-Za-km-z]{94}(?:[1-9A-HJ-NP-Za-km-z]{11})?"
    r"(?![1-9A-HJ-NP-Za-km-z])"
)
_DEV_TCP = re.compile(r"/dev/(?:tcp|udp)/([^/\s]+)/(\d+)")
_INTERACTIVE_SHELL = re.compile(r"(^|[\s/;&|])(ba|z|da|k)?sh\s+-i\b")
_NC_EXEC = re.compile(r"(^|[\s/;&|])(nc|ncat|netcat|nc\.traditional|nc\.openbsd)\b[^|;]*\s-[a-z]*[ec]\b")
_SOCAT_EXEC = re.compile(r"\bsocat\b.*\b(exec|system):", re.IGNORECASE)
_PY_PTY = re.compile(
    r"\b(python[23]?|perl|ruby|php)\b.*\bsocket\b.*\b(pty\.spawn|subprocess|exec|/bin/sh)", re.IGNORECASE
)
_FETCH_PIPE = re.compile(
    r"\b(curl|wget|fetch)\b[^|]*\|\s*(sudo\s+)?(ba|z|da)?sh\b|"
    r"\b(curl|wget)\b[^|]*\|\s*(python[23]?|perl|ruby)\b",
    re.IGNORECASE,
)
_B64_PIPE = re.compile(r"base64\s+(-d|--decode)\b[^|]*\|\s*(ba|z|da)?sh\b", re.IGNORECASE)
_WRITABLE_DIRS = ("/dev/shm/", "/tmp/", "/var/tmp/", "/run/user/")  # noqa: S108 (paths we look for, not use)
_KTHREADS = re.compile(
    r"^\[?(kthreadd|kworker(/\S*)?|ksoftirqd(/\d+)?|kswapd\d*|migration(/\d+)?|"
    r"rcu_(sched|bh|preempt|gp)|watchdog(d|/\d+)?|kdevtmpfs|khugepaged|kauditd|"
    r"jbd2(/\S*)?|kblockd|writeback|kcompactd\d*|ksmd|irq/\S+)\]?$"
)

Check = Callable[[FieldView], Iterator[Evidence]]


def _ev(id_: str, observation: str, source: str, value: str, strength: Strength) -> Evidence:
    return Evidence(
        id=id_,
        observation=observation,
        source=source,
        value=value[:300],
        direction="malicious",
        strength=strength,
    )


def _commands(view: FieldView) -> Iterator[tuple[str, str]]:
    for name in _CMD_FIELDS:
        value = view.get(name)
        if value:
            yield name, value


def mining(view: FieldView) -> Iterator[Evidence]:
    for source, cmd in _commands(view):
        if m := _STRATUM.search(cmd):
            yield _ev(
                "mining-pool-url",
                "A stratum mining-pool URL is on the command line.",
                source,
                m.group(0),
                "strong",
            )
        if m := _MINER_FLAGS.search(cmd):
            yield _ev(
                "miner-flags",
                "Command-line options specific to cryptocurrency miners.",
                source,
                m.group(0).strip(),
                "strong",
            )
        for m in _POOL_OPTION.finditer(cmd):
            if m.group(3) in _POOL_PORTS:
                yield _ev(
                    "mining-pool-option",
                    "A miner-style pool option (-o/--url host:port) names a mining-pool port.",
                    source,
                    m.group(0).strip(),
                    "strong",
                )
                break
        if m := _WALLET.search(cmd):
            yield _ev(
                "wallet-argument",
                "A Monero-wallet-shaped argument is on the command line.",
                source,
                m.group(0),
                "strong",
            )
    for name in ("proc.name", "proc.exepath"):
        base = view.get(name).rsplit("/", 1)[-1]
        if base and _MINER_NAMES.match(base):
            yield _ev("miner-binary", "The process has the name of a well-known miner.", name, base, "strong")
            break
    port = view.get("fd.sport")
    if port in _POOL_PORTS and not view.inbound() and view.get("peer.scope") not in ("loopback", ""):
        yield _ev(
            "pool-port",
            "Outbound connection to a port that mining pools commonly use.",
            "fd.sport",
            f"{view.remote_address()}:{port}",
            "moderate",
        )


def reverse_shell(view: FieldView) -> Iterator[Evidence]:
    for source, cmd in _commands(view):
        for m in _DEV_TCP.finditer(cmd):
            scope = peer_scope(m.group(1))
            if scope != "loopback":
                yield _ev(
                    "dev-tcp-redirect",
                    f"The shell opens /dev/tcp to a {scope or 'remote'} address.",
                    source,
                    m.group(0),
                    "strong" if scope == "public" else "moderate",
                )
        if _INTERACTIVE_SHELL.search(cmd) and ("/dev/tcp" in cmd or view.get("fd.name").count("->")):
            yield _ev(
                "interactive-shell-on-socket",
                "An interactive shell (-i) with its stdio on a socket.",
                source,
                cmd,
                "strong",
            )
        if _NC_EXEC.search(cmd) or _SOCAT_EXEC.search(cmd):
            yield _ev(
                "netcat-exec",
                "netcat/socat told to run a program for the remote side.",
                source,
                cmd,
                "strong",
            )
        if _PY_PTY.search(cmd):
            yield _ev("scripted-shell", "A script opens a socket and spawns a shell.", source, cmd, "strong")


def download_and_run(view: FieldView) -> Iterator[Evidence]:
    for source, cmd in _commands(view):
        if _FETCH_PIPE.search(cmd):
            yield _ev(
                "download-and-run",
                "Downloaded content is piped straight into an interpreter.",
                source,
                cmd,
                "strong",
            )
        if _B64_PIPE.search(cmd):
            yield _ev(
                "decode-and-run", "Base64-decoded content is piped into a shell.", source, cmd, "strong"
            )


def execution_place(view: FieldView) -> Iterator[Evidence]:
    exe = view.get("proc.exepath") or view.get("proc.exe")
    if view.get("proc.is_exe_from_memfd") == "true" or exe.startswith(("memfd:", "/memfd:")):
        yield _ev(
            "memfd-exec",
            "The program runs from an anonymous in-memory file (memfd).",
            "proc.exepath",
            exe or "memfd",
            "strong",
        )
        return
    if not exe.startswith("/"):
        return
    if exe.startswith(_WRITABLE_DIRS):
        yield _ev(
            "exec-from-writable-dir",
            "The program runs from a world-writable scratch directory.",
            "proc.exepath",
            exe,
            "moderate",
        )
    hidden = [p for p in exe.split("/")[1:-1] if p.startswith(".") and p not in (".", "..")]
    if hidden:
        yield _ev(
            "exec-from-hidden-dir",
            "The program runs from a hidden directory.",
            "proc.exepath",
            exe,
            "moderate",
        )


def masquerade(view: FieldView) -> Iterator[Evidence]:
    name = view.get("proc.name")
    exe = view.get("proc.exepath") or view.get("proc.exe")
    # Kernel threads have no executable file; one named like them that runs from a file is hiding.
    if name and _KTHREADS.match(name) and exe.startswith("/"):
        yield _ev(
            "kernel-thread-name",
            "A user-space program is named like a kernel thread.",
            "proc.name",
            f"{name} ({exe})",
            "strong",
        )


def peer(view: FieldView) -> Iterator[Evidence]:
    """Where the other end is: loopback refutes a remote attacker; public is context."""
    address = view.remote_address()
    scope = view.get("peer.scope")
    if not scope:
        return
    if scope == "loopback":
        yield Evidence(
            id="peer-loopback",
            observation="The connection stays on this machine (loopback), so "
            "no remote party is on the other end.",
            source="fd.name",
            value=address,
            direction="benign",
            strength="strong",
        )
    elif scope == "link-local" and address.startswith("169.254.169.254"):
        yield _ev(
            "cloud-metadata",
            "The connection goes to the cloud metadata service (credentials).",
            "fd.name",
            address,
            "moderate",
        )
    else:
        label = {"private": "a private (cluster or internal) address", "public": "a public Internet address"}
        yield Evidence(
            id=f"peer-{scope}",
            observation=f"The peer is {label.get(scope, scope)}.",
            source="fd.name",
            value=address,
            direction="context",
            strength="weak",
        )


CHECKS: tuple[Check, ...] = (mining, reverse_shell, download_and_run, execution_place, masquerade, peer)


def indicators(view: FieldView) -> list[Evidence]:
    """Every indicator that holds, each id once."""
    seen: set[str] = set()
    out: list[Evidence] = []
    for check in CHECKS:
        for ev in check(view):
            if ev.id not in seen:
                seen.add(ev.id)
                out.append(ev)
    return out
