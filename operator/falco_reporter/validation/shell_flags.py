"""Per-tool option allow-lists for the host tools a report may run (the tables: shell_specs.py).

Each tool lists the options it may use (getopt style: ``"ln:"`` is -l, and -n with a value; long
options ``"--all --lines="``, ``"--arg=="`` takes two values; single-dash words such as ausearch's
``-ts=`` are listed with the long ones), how many positional arguments it takes, and which options
name a file it writes, which must then be under a scratch directory. Anything else is refused, so
a write, kill or exec mode (``ss -K``, ``xxd -r``, ``tcpdump -z``, uniq's output file) cannot slip
through as an unknown flag. Hand-written rather than generated: no tool publishes its options in
a machine-readable form, and these encode which options are safe, not which exist.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from falco_reporter.validation.shell_tools import Report, ToolCheck

#: Where a command may write a file (a capture, a sorted copy): scratch space, never system paths.
#: Prefixes a snippet's path is compared with; nothing here creates a file.
SCRATCH_DIRS = ("/tmp/", "/var/tmp/")  # noqa: S108


def _getopt(spec: str) -> tuple[frozenset[str], frozenset[str]]:
    """("ab", "n") from "abn:": letters without and with a value."""
    plain: set[str] = set()
    valued: set[str] = set()
    for i, ch in enumerate(spec):
        if ch == ":":
            continue
        (valued if spec[i + 1 : i + 2] == ":" else plain).add(ch)
    return frozenset(plain), frozenset(valued)


@dataclass(frozen=True)
class Spec:
    """What one tool may be given."""

    short: str = ""
    long: str = ""
    max_args: int | None = None
    writes: str = ""  # options (short letters and long names, space-separated) whose value is a file written
    numeric: bool = False  # -20 / +20 counts (head, tail, last)
    _long: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = {n.rstrip("="): len(n) - len(n.rstrip("=")) for n in self.long.split()}
        object.__setattr__(self, "_long", table)

    def check(self, program: str, args: list[str], report: Report) -> list[list[str]]:
        """Report options outside the allow-list, writes outside scratch space and extra arguments."""
        plain, valued = _getopt(self.short)
        writes = set(self.writes.split())
        words: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                words += args[i:]
                break
            name, eq, value = arg.partition("=")
            if arg.startswith("-") and name in self._long:
                count = self._long[name]
                if count == 0 and eq:
                    report(f"{program} {name}: takes no value")
                values = [value] if eq else args[i : i + count]
                i += 0 if eq else count
                if name in writes:
                    check_output(program, name, values, report)
            elif arg.startswith("--"):
                report(f"{program} {name}: option not allowed (allowed: {self._listing()})")
            elif self.numeric and arg[:1] in "-+" and arg[1:].isdigit():
                continue  # a count: head -20, tail +5
            elif arg.startswith("-") and len(arg) > 1:
                i = self._cluster(program, arg, args, i, (plain, valued, writes), report)
            else:
                words.append(arg)
        if self.max_args is not None and len(words) > self.max_args:
            report(
                f"{program}: at most {self.max_args} argument(s), got {len(words)} "
                f"({' '.join(words)}); an extra file argument would be written"
            )
        return []

    def _cluster(
        self,
        program: str,
        arg: str,
        args: list[str],
        i: int,
        sets: tuple[frozenset[str], frozenset[str], set[str]],
        report: Report,
    ) -> int:
        """Walk -abc / -nVALUE / -n VALUE; return the index after what was consumed."""
        plain, valued, writes = sets
        for pos, letter in enumerate(arg[1:], start=1):
            if letter in valued:
                value = arg[pos + 1 :]
                if not value and i < len(args):
                    value, i = args[i], i + 1
                if letter in writes:
                    check_output(program, f"-{letter}", [value], report)
                return i
            if letter not in plain:
                report(f"{program} -{letter}: option not allowed (allowed: {self._listing()})")
                return i
        return i

    def _listing(self) -> str:
        short = "".join(ch for ch in self.short if ch != ":")
        more = f" (+{len(self._long) - 8} more)" if len(self._long) > 8 else ""
        return " ".join(filter(None, [f"-[{short}]" if short else "", *list(self._long)[:8]])) + more


def check_output(program: str, option: str, values: list[str], report: Report) -> None:
    for value in values:
        path = posixpath.normpath(value) + ("/" if value.endswith("/") else "")
        if not path.startswith(SCRATCH_DIRS) or ".." in value.split("/"):
            report(
                f"{program} {option} {value}: writes a file; only under {' or '.join(SCRATCH_DIRS)} "
                "(never over system or evidence files)"
            )


def spec_policy(program: str, spec: Spec) -> ToolCheck:
    """A ToolCheck for ``program`` from its Spec."""

    def check(args: list[str], report: Report) -> list[list[str]]:
        return spec.check(program, args, report)

    return check
