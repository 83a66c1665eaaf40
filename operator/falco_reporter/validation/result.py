"""The outcome of validating one snippet."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Report writers fill these in later; validators treat them as plain words/strings.
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class ValidationResult:
    """What was checked and what is wrong; ``ok`` is true exactly when there are no errors."""

    ok: bool
    checks: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    # What kind of text was validated ("falco-rules-file", "kubernetes-manifest", ...).
    subject: str = "snippet"
    # One short phrase describing what the snippet is, for summary().
    detail: str = ""
    # Checks that should have run but could not (a dry run forbidden or unreachable): the snippet
    # has no known error, yet it is "not validated", never "ok".
    unverified: tuple[str, ...] = ()

    @classmethod
    def build(cls, subject: str, checks: list[str], errors: list[str], detail: str = "") -> ValidationResult:
        """A result whose ``ok`` is derived from ``errors`` (never set by hand)."""
        return cls(not errors, tuple(checks), tuple(errors), subject, detail)

    @classmethod
    def failure(cls, subject: str, error: str) -> ValidationResult:
        """A result with a single error and nothing checked."""
        return cls(False, (), (error,), subject)

    def summary(self) -> str:
        """A short line for a report's ``validated`` field."""
        if self.ok and self.unverified:
            return f"{self.subject}: not validated: {self.unverified[0]}"
        if self.ok:
            return f"{self.subject}: ok ({self.detail})" if self.detail else f"{self.subject}: ok"
        first = self.errors[0] if self.errors else "failed"
        more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"{self.subject}: invalid: {first}{more}"


def mask_placeholders(text: str) -> tuple[str, dict[str, str]]:
    """Replace ``{{name}}`` by a plain token so YAML does not read it as a flow mapping.

    The token is a valid DNS label and Falco bare string, so placeholder-carrying names
    and values pass the syntax checks exactly as a filled-in value would.
    """
    mapping: dict[str, str] = {}

    def repl(match: re.Match[str]) -> str:
        token = "ph-" + match.group(1).lower().replace("_", "-") + "-x"
        mapping[token] = "{{" + match.group(1) + "}}"
        return token

    return PLACEHOLDER_RE.sub(repl, text), mapping


def unmask(message: str, mapping: dict[str, str]) -> str:
    """Put the original placeholders back into a message."""
    for token, original in mapping.items():
        message = message.replace(token, original)
    return message


_INI_LINE = re.compile(r"^\s*(\[[\w. -]+\]|[\w.-]+\s*=[^=])", re.MULTILINE)


def ini_hint(text: str) -> str:
    """A hint when text looks like INI ('[section]' or 'key = value' lines), else ''."""
    if _INI_LINE.search(text):
        return "; it looks like INI ('[section]' / 'key = value'), but Falco files are YAML"
    return ""


def names(text: str) -> tuple[str, ...]:
    """Whitespace-separated words as a tuple: keeps long name tables compact and readable."""
    return tuple(text.split())
