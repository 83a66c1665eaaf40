"""Policies for inspection tools that also have write modes: awk, ssh-keygen, ldd, package managers.

Package managers may query/verify, and upgrade named packages (patching is a real mitigation),
but never remove anything.
"""

from __future__ import annotations

import re

from falco_reporter.validation.result import names
from falco_reporter.validation.shell_tools import Report, ToolCheck, has_option, positionals


def version_only(program: str) -> ToolCheck:
    """A binary we only ask for its version (runc --version, xz --version)."""

    def check(args: list[str], report: Report) -> list[list[str]]:
        if args not in (["--version"], ["-V"], ["-v"], ["version"]):
            report(f"{program}: only '{program} --version' is allowed")
        return []

    return check


def _awk(args: list[str], report: Report) -> list[list[str]]:
    # awk programs can run commands (system(), "cmd" | getline) and write files (print > "f").
    if has_option(args, "-f", "--file", "-i", "--include"):
        report("awk -f/-i: program files are not allowed; give the program inline")
    program = next((a for a in positionals(args, ("-F", "-v", "--field-separator", "--assign"))), "")
    if re.search(r"system\s*\(|\||getline|\bprintf?\b[^;}]*>|\bclose\s*\(", program):
        report("awk: the program runs commands or writes files (system, pipes, getline, print >)")
    return []


def _ssh_keygen(args: list[str], report: Report) -> list[list[str]]:
    if not has_option(args, "-l") or has_option(args, "-R", "-p", "-c", "-y", "-t", "-N", "-A"):
        report("ssh-keygen: only fingerprinting (-l -f FILE) is allowed")
    return []


def _ldd(args: list[str], report: Report) -> list[list[str]]:
    if args != ["--version"]:
        report(
            "ldd FILE may execute the file's code; use readelf -d FILE or grep the process's /proc/PID/maps"
        )
    return []


def _dpkg(args: list[str], report: Report) -> list[list[str]]:
    query = names(
        "-l --list -L --listfiles -s --status -S --search -V --verify -p --print-avail --version --audit -C"
    )
    if not args or not has_option(args, *query):
        report("dpkg: only queries (-l, -L, -s, -S, -V/--verify) are allowed")
    return []


def _rpm(args: list[str], report: Report) -> list[list[str]]:
    first = args[0] if args else ""
    if not (re.fullmatch(r"-[qV][A-Za-z]*", first) or first in ("--query", "--verify", "--version")):
        report("rpm: only queries (-q...) and verification (-V...) are allowed")
    return []


def _package_manager(program: str, upgrade: tuple[str, ...], queries: tuple[str, ...]) -> ToolCheck:
    """apt-get/apt/yum/dnf/apk: queries, or upgrading named packages (no removal, no scripts from URLs)."""

    def check(args: list[str], report: Report) -> list[list[str]]:
        words = positionals(args, ("-o", "--option", "-c", "--config-file"))
        sub = words[0] if words else ""
        if sub in queries:
            return []
        only_upgrade = " ".join([sub, *[a for a in args if a == "--only-upgrade"]])
        if (sub in upgrade or only_upgrade in upgrade) and len(words) > 1 and "://" not in " ".join(words):
            return []
        report(f"{program} {sub}: only queries or upgrading named packages ({', '.join(upgrade)} PKG)")
        return []

    return check


def _npm(args: list[str], report: Report) -> list[list[str]]:
    # Installing dependencies is a build-time mitigation only without lifecycle scripts.
    sub = next(iter(positionals(args)), "")
    if sub in ("ls", "list", "audit", "view", "outdated", "config"):
        return []
    if sub not in ("ci", "install", "i") or "--ignore-scripts" not in args:
        report(f"npm {sub}: only queries, or ci/install with --ignore-scripts")
    return []


INSPECT_POLICIES: dict[str, ToolCheck] = {
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "ssh-keygen": _ssh_keygen,
    "ldd": _ldd,
    "dpkg": _dpkg,
    "rpm": _rpm,
    "apt-get": _package_manager("apt-get", ("install --only-upgrade",), ("check",)),
    "apt": _package_manager("apt", ("install --only-upgrade",), ("list", "show", "policy", "search")),
    "apt-cache": _package_manager("apt-cache", (), ("policy", "show", "search", "depends", "rdepends")),
    "yum": _package_manager("yum", ("update", "upgrade"), ("list", "info", "check-update", "history")),
    "dnf": _package_manager("dnf", ("update", "upgrade"), ("list", "info", "check-update", "history")),
    "apk": _package_manager("apk", ("upgrade",), ("info", "list", "version", "policy")),
    "npm": _npm,
    **{p: version_only(p) for p in ("xz", "pkexec", "runc", "crun", "containerd", "kubelet", "openssl")},
}
