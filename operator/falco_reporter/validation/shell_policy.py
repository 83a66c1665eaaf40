"""Which programs a report's command may run, and with which arguments.

An allow-list of real, read-mostly tools; everything else is rejected. Wrappers (kubectl exec,
crictl exec, nsenter, sudo, xargs, find -exec, sh -c, ...) have their inner command checked by
the same rules.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from falco_reporter.validation.result import PLACEHOLDER_RE, names
from falco_reporter.validation.shell_inspect import INSPECT_POLICIES
from falco_reporter.validation.shell_k8s import K8S_POLICIES, KUBECTL_VALUE_FLAGS
from falco_reporter.validation.shell_lex import operator_errors, split
from falco_reporter.validation.shell_specs import SPEC_POLICIES
from falco_reporter.validation.shell_tools import TOOL_POLICIES, ToolCheck, positionals

MAX_DEPTH = 4

# Programs that destroy evidence, lock people out or take systems down: named so the message says why.
HARMFUL: dict[str, str] = {
    **dict.fromkeys(("rm", "rmdir", "unlink", "shred", "srm", "wipe"), "deletes files (and evidence)"),
    **dict.fromkeys(
        ("mkfs", "mke2fs", "wipefs", "fdisk", "sfdisk", "parted", "dd", "truncate"),
        "can overwrite disks or files",
    ),
    **dict.fromkeys(
        names("chsh chfn passwd chpasswd usermod userdel deluser groupdel delgroup vipw"),
        "changes accounts or login shells (can lock people out)",
    ),
    **dict.fromkeys(("shutdown", "reboot", "halt", "poweroff", "init", "telinit"), "takes the system down"),
    **dict.fromkeys(
        ("kill", "pkill", "killall", "skill"),
        "kills processes, destroying evidence ('kill -9 1' kills the container's init); "
        "isolate the workload instead",
    ),
    "setenforce": "turns SELinux enforcement off or on",
    "mv": "moves or overwrites files",
    "rmmod": "unloads kernel modules",
    "modprobe": "loads or unloads kernel modules",
    "insmod": "loads kernel modules",
    "swapoff": "changes the system's memory setup",
    "eval": "evaluates arbitrary text as a command",
    "exec": "replaces the shell",
    "source": "runs a script",
    ".": "runs a script",
    "wget": "downloads files (use a reviewed URL)",
}
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "csh", "tcsh"})
_DANGEROUS_ENV = frozenset(
    {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PATH", "BASH_ENV", "ENV", "PROMPT_COMMAND"}
)
_POLICIES: dict[str, ToolCheck] = {**TOOL_POLICIES, **K8S_POLICIES, **INSPECT_POLICIES, **SPEC_POLICIES}
_SUBCOMMAND_TOOLS = frozenset({"kubectl", "crictl", "docker", "podman", "nerdctl", "helm"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: Every program this policy has an opinion on (allowed, refused with a reason, or a shell).
KNOWN_PROGRAMS = frozenset(_POLICIES) | frozenset(HARMFUL) | SHELLS


@dataclass
class Ctx:
    """Errors and checks collected while walking a command and its inner commands."""

    errors: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    programs: list[str] = field(default_factory=list)
    depth: int = 0


def check_script(text: str, ctx: Ctx, where: str) -> None:
    """A command given as text (sh -c '...'): same rules as a top-level command."""
    ops = operator_errors(text)
    if ops:
        ctx.errors += [f"{where}: {e}" for e in ops]
        return
    try:
        argv = split(text)
    except ValueError as exc:
        ctx.errors.append(f"{where}: does not parse: {exc}")
        return
    check_argv(argv, ctx)


def check_argv(argv: list[str], ctx: Ctx) -> None:
    """Check one command line (already split into words)."""
    if ctx.depth >= MAX_DEPTH:
        ctx.errors.append("commands nested too deeply")
        return
    words = list(argv)
    while words and _ASSIGNMENT.match(words[0]):
        name = words.pop(0).split("=", 1)[0]
        if name in _DANGEROUS_ENV:
            ctx.errors.append(f"setting {name} changes what runs; not allowed")
    if not words:
        ctx.errors.append("no program to run")
        return
    program_word, args = words[0], words[1:]
    if PLACEHOLDER_RE.search(program_word):
        ctx.errors.append(
            f"{program_word}: the program must be a literal tool name, not a placeholder "
            "(never run the suspicious binary itself)"
        )
        return
    program = os.path.basename(program_word)
    first = positionals(args, KUBECTL_VALUE_FLAGS)[:1] if program in _SUBCOMMAND_TOOLS else []
    ctx.programs.append(" ".join([program, *first]))
    if program in HARMFUL or program.startswith("mkfs."):
        ctx.errors.append(f"{program}: not allowed: {HARMFUL.get(program, 'creates file systems')}")
        return
    if program in SHELLS:
        _shell(program, args, ctx)
        return
    policy: ToolCheck | None = _POLICIES.get(program)
    if policy is None:
        ctx.errors.append(f"{program}: not in the allow-list of read-mostly tools")
        return
    for inner in policy(args, ctx.errors.append):
        run_inner(inner, ctx, ctx.programs[-1] if program in _SUBCOMMAND_TOOLS else program)


def run_inner(argv: list[str], ctx: Ctx, wrapper: str) -> None:
    """Check the command a wrapper (kubectl exec, xargs, ...) would run."""
    if not argv:
        ctx.errors.append(f"{wrapper}: no command to run (an interactive shell is not a report command)")
        return
    before = len(ctx.errors)
    ctx.depth += 1
    check_argv(argv, ctx)
    ctx.depth -= 1
    ctx.errors[before:] = [f"inside {wrapper}: {e}" for e in ctx.errors[before:]]


def _shell(program: str, args: list[str], ctx: Ctx) -> None:
    # sh -c 'SCRIPT' is accepted only when SCRIPT itself is one allowed command.
    if "-c" in args and args.index("-c") + 1 < len(args):
        before = len(ctx.errors)
        ctx.depth += 1
        check_script(args[args.index("-c") + 1], ctx, f"{program} -c")
        ctx.depth -= 1
        ctx.errors[before:] = [
            e if e.startswith(f"{program} -c") else f"inside {program} -c: {e}" for e in ctx.errors[before:]
        ]
    else:
        ctx.errors.append(f"{program}: starts a shell or runs a script; give the command itself")
