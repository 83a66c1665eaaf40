"""Shell command snippets: exactly one command, of an allow-listed read-mostly tool."""

from __future__ import annotations

from falco_reporter.validation.result import ValidationResult
from falco_reporter.validation.shell_lex import operator_errors, split
from falco_reporter.validation.shell_policy import Ctx, check_argv

SUBJECT = "command"


def validate_command(text: str) -> ValidationResult:
    """Validate one shell command: parses, no control operators, allowed program and arguments.

    Placeholders such as ``{{namespace}}`` count as plain words. ``kubectl exec POD -- CMD``
    (and other wrappers: crictl exec, nsenter, sudo, xargs, find -exec, sh -c) have the inner
    command checked by the same rules.
    """
    stripped = text.strip()
    if not stripped:
        return ValidationResult.failure(SUBJECT, "empty command")
    ops = operator_errors(stripped)
    if ops:
        return ValidationResult.build(SUBJECT, [], ops)
    try:
        argv = split(stripped)
    except ValueError as exc:
        return ValidationResult.failure(SUBJECT, f"does not parse as one shell command: {exc}")
    ctx = Ctx()
    check_argv(argv, ctx)
    checks = [
        "parses as one command (shlex)",
        "no shell operators, redirections or substitutions",
    ]
    if not ctx.errors:
        checks.append("programs allowed: " + " -> ".join(ctx.programs))
    return ValidationResult.build(SUBJECT, checks, ctx.errors, " -> ".join(ctx.programs))
