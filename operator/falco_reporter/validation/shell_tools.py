"""Per-tool argument policies for host tools with modes (option allow-lists: shell_flags.py; kubectl and
container tools: shell_k8s.py).

A policy gets the arguments and a ``report`` callback for errors, and returns the inner
commands it would run (for wrappers such as xargs or nsenter), usually none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from falco_reporter.validation.result import names

Report = Callable[[str], None]
ToolCheck = Callable[[list[str], Report], list[list[str]]]


def positionals(args: Iterable[str], value_options: Iterable[str] = ()) -> list[str]:
    """Arguments that are not options (skipping the values of ``value_options``)."""
    takes_value = set(value_options)
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-") and len(arg) > 1 and not arg[1:].isdigit():
            skip = arg in takes_value
        else:
            out.append(arg)
    return out


def short_letters(args: Iterable[str]) -> set[str]:
    """Letters of single-dash option clusters (-nvL -> n, v, L)."""
    return {ch for a in args if re.fullmatch(r"-[A-Za-z]+", a) for ch in a[1:]}


def has_option(args: Iterable[str], *names: str) -> bool:
    """Whether any long/short option in ``names`` is given (also as --name=value)."""
    letters = short_letters(args)
    return any(
        a == n or a.startswith(n + "=") or (len(n) == 2 and n[1] in letters) for a in args for n in names
    )


def option_values(args: list[str], *names: str) -> list[str]:
    """Values given to the long options ``names`` (``--name=value`` or ``--name value``)."""
    out: list[str] = []
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in names:
            out.append(value if eq else args[i + 1] if i + 1 < len(args) else "")
    return out


def forbid(program: str, reason: str, *options: str) -> ToolCheck:
    """A tool that is fine unless one of ``options`` is given."""

    def check(args: list[str], report: Report) -> list[list[str]]:
        bad = [o for o in options if has_option(args, o)]
        if bad:
            report(f"{program} {' '.join(bad)}: {reason}")
        return []

    return check


def subcommands(
    program: str, allowed: Iterable[str], value_options: Iterable[str] = (), depth: int = 1
) -> ToolCheck:
    """A tool whose first ``depth`` positional words must form one of ``allowed`` (e.g. 'prog show')."""
    allowed_set = set(allowed)

    def check(args: list[str], report: Report) -> list[list[str]]:
        words = positionals(args, value_options)[:depth]
        if " ".join(words) not in allowed_set and (not words or words[0] not in allowed_set):
            report(
                f"{program} {' '.join(words)}: not allowed (read-only subcommands: {', '.join(sorted(allowed_set))})"
            )
        return []

    return check


def _find(args: list[str], report: Report) -> list[list[str]]:
    for option in ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"):
        if option in args:
            report(f"find {option}: deletes or writes files")
    inner: list[list[str]] = []
    i = 0
    while i < len(args):
        if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            end = next((j for j in range(i + 1, len(args)) if args[j] in (";", "+")), len(args))
            inner.append(args[i + 1 : end])
            i = end
        i += 1
    return inner


def _iptables(args: list[str], report: Report) -> list[list[str]]:
    # Listing only: -L/-S with -n -v -x --line-numbers -t TABLE -w; anything else changes rules.
    allowed_long = names("--list --list-rules --numeric --verbose --exact --line-numbers --table --wait")
    bad = [a for a in args if a.startswith("--") and a.split("=")[0] not in allowed_long]
    bad += [a for a in args if re.fullmatch(r"-[A-Za-z]+", a) and set(a[1:]) - set("LSnvxtw")]
    if bad or not (has_option(args, "-L", "--list", "-S", "--list-rules")):
        report(
            "iptables: only listing (-L/-S with -n, -v, -t TABLE) is allowed; this would change or flush "
            f"the firewall{': ' + ' '.join(bad) if bad else ''}"
        )
    return []


def _ip(args: list[str], report: Report) -> list[list[str]]:
    words = positionals(args, ("-n", "-netns", "-f", "-family", "-b", "-batch"))
    if len(words) >= 3 and words[0] in ("netns", "netn") and words[1] == "exec":
        return [args[args.index(words[2]) + 1 :]]
    if len(words) >= 2 and words[1] not in names("show sh list ls lst l get identify pids"):
        report(f"ip {words[0]} {words[1]}: only show/list/get are allowed (this changes networking)")
    if words[:1] == ["-batch"] or "-batch" in args or "-b" in args:
        report("ip -batch: runs commands from a file")
    return []


def _curl(args: list[str], report: Report) -> list[list[str]]:
    writes = names(
        "-o --output -O --remote-name --remote-name-all -T --upload-file -K --config -d --data --data-raw "
        "--data-binary --data-urlencode -F --form --json"
    )
    bad = [o for o in writes if has_option(args, o)]
    method = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-X", "--request")), "GET")
    if bad or method.upper() not in ("GET", "HEAD"):
        report(f"curl: only plain GET/HEAD requests printed to the terminal ({' '.join(bad) or method})")
    return []


def _chmod(args: list[str], report: Report) -> list[list[str]]:
    if has_option(args, "-R", "--recursive"):
        report("chmod -R: recursive permission changes are not allowed")
    words = positionals(args)
    mode = words[0] if words else ""
    loosens = False
    if mode.isdigit():
        loosens = mode[-1] in "2367" or (len(mode) == 4 and mode[0] in "246")  # world-write, setuid/setgid
    for clause in mode.split(","):
        m = re.fullmatch(r"([ugoa]*)([-+=])([rwxXst]*)", clause)
        if m and m.group(2) in "+=":
            who, perms = m.group(1), m.group(3)
            loosens |= "s" in perms or ("w" in perms and (not who or "o" in who or "a" in who))
    if loosens:
        report(f"chmod {mode}: grants world-write or setuid/setgid; only tighten permissions")
    if "/" in words[1:]:
        report("chmod /: not on the root directory")
    return []


def _chown(args: list[str], report: Report) -> list[list[str]]:
    if has_option(args, "-R", "--recursive"):
        report("chown/chgrp -R: recursive ownership changes are not allowed")
    if "/" in positionals(args)[1:]:
        report("chown /: not on the root directory")
    return []


def _sql(program: str, flag: str) -> ToolCheck:
    def check(args: list[str], report: Report) -> list[list[str]]:
        query = next(
            (args[i + 1] for i, a in enumerate(args[:-1]) if a in (flag, "--command", "--execute")), None
        )
        if query is None or has_option(args, "-f", "--file"):
            report(f"{program}: give a read-only query with {flag} (no interactive session or script file)")
        elif (
            not re.match(r"\s*(select|show|explain|\\d|describe|desc)\b", query, re.IGNORECASE)
            or ";" in query.strip()[:-1]
        ):
            report(f"{program} {flag}: only one SELECT/SHOW/EXPLAIN query is allowed")
        return []

    return check


def reject_if(message: str, predicate: Callable[[list[str]], bool]) -> ToolCheck:
    """A tool that is fine unless ``predicate(args)`` holds."""

    def check(args: list[str], report: Report) -> list[list[str]]:
        if predicate(args):
            report(message)
        return []

    return check


def wrapper(value_options: Iterable[str], fixed: int = 0, standalone: Iterable[str] = ()) -> ToolCheck:
    """sudo/timeout/nice/xargs/watch/chroot/nsenter: options, ``fixed`` words, then the command.

    ``standalone`` options make sense without a command (sudo -V, sudo -l).
    """
    takes_value = set(value_options)
    alone = set(standalone)

    def check(args: list[str], _report: Report) -> list[list[str]]:
        if args and set(args) <= alone:
            return []
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] != "--":
            i += 2 if args[i] in takes_value else 1
        i += 1 if i < len(args) and args[i] == "--" else 0
        return [args[i + fixed :]]

    return check


def _env(args: list[str], _report: Report) -> list[list[str]]:
    # env alone prints the environment; env [-i] [-u NAME] [NAME=value] CMD runs CMD.
    rest = [a for a in positionals(args, ("-u", "--unset", "-C", "--chdir")) if "=" not in a]
    return [args[args.index(rest[0]) :]] if rest else []


TOOL_POLICIES: dict[str, ToolCheck] = {
    "find": _find,
    "falco": reject_if(
        "falco: program_output runs arbitrary programs; not in a report command",
        lambda a: any("program_output" in x for x in a),
    ),
    "sysctl": reject_if(
        "sysctl: writing kernel parameters is not allowed",
        lambda a: has_option(a, "-w", "-p", "--write", "--load", "--system") or any("=" in x for x in a),
    ),
    "yq": forbid("yq", "edits files in place", "-i", "--inplace"),
    "date": reject_if(
        "date: setting the clock is not allowed",
        lambda a: (
            has_option(a, "-s", "--set")
            or any(not x.startswith("+") for x in positionals(a, ("-d", "--date", "-r", "--reference", "-f")))
        ),
    ),
    "hostname": reject_if("hostname NAME: changes the host name", lambda a: bool(positionals(a))),
    "mount": reject_if("mount with arguments mounts file systems; use findmnt to look", bool),
    "crontab": reject_if(
        "crontab: only -l (list) is allowed",
        lambda a: not has_option(a, "-l") or has_option(a, "-r", "-e", "-i"),
    ),
    "iptables": _iptables,
    "ip6tables": _iptables,
    "nft": subcommands("nft", ["list"], ("-f", "--file")),
    "ip": _ip,
    "bpftool": reject_if(
        "bpftool: only show/list/dump to the terminal are allowed (load/attach/update change the kernel; "
        "'dump ... file F' writes F)",
        lambda a: (
            (len(p := positionals(a)) >= 2 and p[1] not in ("show", "list", "dump", "tree", "probe"))
            or "file" in p[2:]
        ),
    ),
    "systemctl": subcommands(
        "systemctl",
        names(
            "status show cat list-units list-unit-files list-timers list-sockets list-dependencies is-active "
            "is-enabled is-failed"
        ),
        ("-H", "--host", "-M", "--machine", "-p", "--property"),
    ),
    "curl": _curl,
    "chmod": _chmod,
    "chown": _chown,
    "chgrp": _chown,
    "psql": _sql("psql", "-c"),
    "mysql": _sql("mysql", "-e"),
    "sudo": wrapper(
        ("-u", "-g", "-h", "-p", "-C", "-D", "-U"), standalone=("-V", "--version", "-l", "--list")
    ),
    "timeout": wrapper(("-s", "--signal", "-k", "--kill-after"), fixed=1),
    "nice": wrapper(("-n", "--adjustment")),
    "nohup": wrapper(()),
    "env": _env,
    "watch": wrapper(("-n", "--interval")),
    "xargs": wrapper(("-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter")),
    "nsenter": wrapper(("-t", "--target", "-S", "--setuid", "-G", "--setgid", "-w", "--wd", "-r", "--root")),
    "chroot": wrapper(("--userspec", "--groups"), fixed=1),
    "busybox": lambda a, r: [a],
}
