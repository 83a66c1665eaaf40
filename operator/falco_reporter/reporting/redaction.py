"""Remove secrets from alert text before it leaves the operator (for an LLM provider).

Command lines and Falco output lines carry secrets surprisingly often: ``mysql -pS3cret``,
``curl -H 'Authorization: Bearer ...'``, ``git clone https://user:token@host/...``,
``AWS_SECRET_ACCESS_KEY=... aws s3 cp``. Each secret is replaced by a placeholder that is
stable within one :class:`Redactor` (one report): the same secret always becomes the same
``[REDACTED-n]``, so the model can still tell "the same password was used twice".

The patterns are deliberately specific (a flag *named* like a secret, a known token prefix, a
key *named* like a secret) so that ordinary command lines pass through untouched.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from falco_reporter.models.falco import FalcoAlertSpec

PLACEHOLDER_RE = re.compile(r"\[REDACTED-\d+\]")

# Words that make a flag or a key name a secret. "pass" only as a whole word (not "bypass").
_KEYWORDS_RE = (
    r"password|passwd|passphrase|secret|token|api[-_]?key|apikey|access[-_]?key|secret[-_]?key"
    r"|private[-_]?key|client[-_]?secret|auth[-_]?token|credentials?"
)
_MYSQL_LIKE = (
    r"mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mysqlsh|mariadb|mariadb-dump|sshpass"
)
_QUOTED_OR_BARE = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s"'`|;&<>]+)"""


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    group: str = "secret"
    """The named group holding the secret; everything else in the match is kept."""
    accept: Callable[[re.Match[str]], bool] | None = None


def _not_a_flag(m: re.Match[str]) -> bool:
    value = m.group("secret").strip("\"'")
    return bool(value) and not value.startswith("-")


def _env_value(m: re.Match[str]) -> bool:
    value = m.group("secret").strip("\"'")
    # A variable reference ($X, ${X}) or an empty value is not a secret.
    return bool(value) and not value.startswith("$")


_RULES: tuple[_Rule, ...] = (
    # GCP service-account JSON: the whole private_key value (it holds a PEM block with \n escapes).
    _Rule(
        "gcp-private-key",
        re.compile(r"""(?P<k>\\?["']private_key\\?["']\s*:\s*\\?["'])(?P<secret>(?:[^"'\\]|\\[^"'])+)"""),
    ),
    _Rule(
        "gcp-private-key-id",
        re.compile(r"""\\?["']private_key_id\\?["']\s*:\s*\\?["'](?P<secret>[0-9a-fA-F]{20,})"""),
    ),
    # PEM private key blocks (possibly truncated: then up to the end of the base64 run).
    _Rule(
        "pem-private-key",
        re.compile(
            r"(?P<secret>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
            r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|(?:(?:\s|\\n)*[A-Za-z0-9+/=]{16,})*))"
        ),
    ),
    # JSON Web Tokens: header.payload.signature, base64url, header starting eyJ ({").
    _Rule("jwt", re.compile(r"(?P<secret>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})")),
    # HTTP Authorization headers (curl -H, wget --header, raw requests).
    _Rule(
        "authorization-header",
        re.compile(
            r"(?i)(?:proxy-)?authorization\s*:\s*(?:bearer|basic|token|digest|negotiate|apikey)?\s*"
            r"(?P<secret>[A-Za-z0-9._~+/=:-]{6,})"
        ),
    ),
    _Rule("bearer-token", re.compile(r"\bBearer\s+(?P<secret>[A-Za-z0-9._~+/=-]{16,})")),
    # user:password@ in any URL (https, postgres, redis, amqp, ...): the password only.
    _Rule(
        "url-credentials",
        re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?P<secret>[^@\s/'\"]+)@(?!sha256:|sha512:)"),
    ),
    # Vendor tokens with recognisable prefixes.
    _Rule(
        "aws-access-key-id",
        re.compile(r"\b(?P<secret>(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16})\b"),
    ),
    _Rule(
        "aws-secret-access-key",
        re.compile(
            r"(?i)(?:aws_?secret_?access_?key|secretaccesskey|aws_secret_key)\\?[\"']?(?:\s*[=:]\s*|\s+)\\?[\"']?"
            r"(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
    ),
    _Rule(
        "github-token",
        re.compile(r"\b(?P<secret>(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    ),
    _Rule("gitlab-token", re.compile(r"\b(?P<secret>glpat-[A-Za-z0-9_-]{20,})")),
    _Rule("slack-token", re.compile(r"\b(?P<secret>xox[abposr]-[A-Za-z0-9-]{10,})")),
    # --password x, --password=x, -password x, --api-key x, --token=x, --client-secret x ...
    # The flag name must END with the secret word (--token-file /path is not a secret), and
    # --no-password style switches take no value.
    _Rule(
        "secret-flag",
        re.compile(
            r"(?i)(?<![\w-])--?(?!no-)(?:[a-z0-9]+[-_])*(?:" + _KEYWORDS_RE + r"|pass)"
            r"(?:=|\s+)(?P<secret>" + _QUOTED_OR_BARE + r")"
        ),
        accept=_not_a_flag,
    ),
    # KEY=value and "key": "value" where the key names a secret (env, query strings, JSON).
    _Rule(
        "secret-assignment",
        re.compile(
            r"(?i)(?<![\w-])(?:(?:[a-z0-9]+[_.])*(?:[a-z0-9]*(?:"
            + _KEYWORDS_RE
            + r")|pass)|(?:[a-z0-9]+_)+pwd)"
            r"=(?P<secret>" + _QUOTED_OR_BARE + r")"
        ),
        accept=_env_value,
    ),
    _Rule(
        "secret-assignment",
        re.compile(
            r"""(?i)\\?["'](?:[a-z0-9]+[-_])*(?:""" + _KEYWORDS_RE + r"""|pass)\\?["']\s*:\s*\\?["']"""
            r"""(?P<secret>(?:[^"'\\]|\\[^"'])+)"""
        ),
    ),
)


def _segment(tools: str) -> re.Pattern[str]:
    """One command of a pipeline/list that starts with one of ``tools`` (path prefix allowed)."""
    return re.compile(r"(?i)(?<![\w/.-])(?:[^\s'\"]*/)?(?:" + tools + r")(?![\w-])[^|;&\n]*")


# Tools whose short flags carry a password; only the first such flag of the command is the
# secret (``sshpass -p pw ssh -p 2222 host``: 2222 is ssh's port).
_SEGMENT_RULES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    # mysql-like tools: -pSECRET (mysql's own form) or -p SECRET; sshpass -p SECRET.
    (
        _segment(_MYSQL_LIKE),
        re.compile(r"(?<=\s)-p(?:(?P<secret>[^\s\-][^\s]*)|\s+(?P<secret2>[^\s\-][^\s]*))"),
    ),
    # redis-cli -a SECRET
    (_segment(r"redis-cli"), re.compile(r"(?<=\s)-a\s+(?P<secret>[^\s\-][^\s]*)")),
    # curl/wget basic auth: -u user:password, --user user:password, --proxy-user user:password.
    (
        _segment(r"curl|wget"),
        re.compile(r"(?<=\s)(?:-u|--user|--proxy-user)(?:\s+|=)['\"]?[^\s:'\"]*:(?P<secret>[^\s'\"]+)"),
    ),
)


@dataclass
class Redactor:
    """Redacts secrets with placeholders that stay stable across calls (use one per report)."""

    _placeholders: dict[str, str] = field(default_factory=dict)
    _kinds: list[str] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        """The kinds of secret found so far, sorted."""
        return sorted(self._kinds)

    @property
    def count(self) -> int:
        """How many distinct secrets were replaced."""
        return len(self._placeholders)

    def placeholder(self, secret: str, kind: str) -> str:
        """The stable placeholder for one secret value."""
        if kind not in self._kinds:
            self._kinds.append(kind)
        existing = self._placeholders.get(secret)
        if existing is None:
            existing = f"[REDACTED-{len(self._placeholders) + 1}]"
            self._placeholders[secret] = existing
        return existing

    def redact(self, text: str) -> str:
        """The text with every recognised secret replaced."""
        if not text:
            return text
        for rule in _RULES:
            text = self._apply(rule, text)
        for segment, flag in _SEGMENT_RULES:
            text = segment.sub(functools.partial(self._in_segment, flag=flag), text)
        return text

    def redact_data(self, value: Any) -> Any:
        """Redact every string inside nested dicts/lists (keys are kept)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_data(v) for v in value]
        return value

    def _apply(self, rule: _Rule, text: str) -> str:
        def replace(m: re.Match[str]) -> str:
            if rule.accept is not None and not rule.accept(m):
                return m.group(0)
            return self._replace_group(m, rule.group, rule.kind)

        return rule.pattern.sub(replace, text)

    def _in_segment(self, seg: re.Match[str], *, flag: re.Pattern[str]) -> str:
        def replace(m: re.Match[str]) -> str:
            name = "secret" if m.group("secret") is not None else "secret2"  # only one of them matched
            return self._replace_group(m, name, "password-flag")

        return flag.sub(replace, seg.group(0), count=1)

    def _replace_group(self, m: re.Match[str], group: str, kind: str) -> str:
        """The match with one group replaced by its placeholder (quotes around it are kept)."""
        secret = m.group(group)
        if PLACEHOLDER_RE.search(secret):
            return m.group(0)
        quote = secret[0] if len(secret) >= 2 and secret[0] in "\"'" and secret[-1] == secret[0] else ""
        core = secret[1:-1] if quote else secret
        start, end = (i - m.start(0) for i in m.span(group))
        whole = m.group(0)
        return whole[:start] + quote + self.placeholder(core, kind) + quote + whole[end:]


def redact(text: str) -> tuple[str, list[str]]:
    """Redact one text on its own: the redacted text and the kinds of secret found."""
    redactor = Redactor()
    return redactor.redact(text), redactor.kinds


def redact_alert(alert: FalcoAlertSpec, redactor: Redactor | None = None) -> tuple[FalcoAlertSpec, list[str]]:
    """A copy of the alert with its output line and every string output field redacted.

    Pass a ``redactor`` to share placeholders with other text of the same report.
    """
    redactor = redactor if redactor is not None else Redactor()
    fields = {k: redactor.redact(v) if isinstance(v, str) else v for k, v in alert.output_fields.items()}
    copy = alert.model_copy(
        update={"output": redactor.redact(alert.output), "output_fields": fields}, deep=True
    )
    return copy, redactor.kinds
