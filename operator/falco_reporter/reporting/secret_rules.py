"""The secret forms redaction recognises: one table of rules, each a regex with a named secret group.

The forms were learned (as facts, not copied) from well-kept rule sets such as gitleaks and
detect-secrets and from the tools' own manuals; every regex here is our own. Each rule names
``hints``: lower-case substrings of which at least one must be in a text for the rule to run at
all, so the common case (a text with no secret) costs a few substring tests instead of one regex
scan per rule. Every rule needs at least one hint (a rule without one would never run).

The patterns are deliberately specific (a flag *named* like a secret, a known token prefix, a
key *named* like a secret, a tool known to take a password in a given position) so that
ordinary command lines pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from falco_reporter.validation.result import names

# Words that make a flag or a key name a secret. "pass" only as a whole word (not "bypass").
_KEY_NAMES = r"(?:account|master|signing|encryption|storage|shared|sas|app|client|consumer|certificate|secret|private|access|api)[-_]?key"
KEYWORDS = (
    r"password|passwd|passphrase|secret|token|apikey|" + _KEY_NAMES + r"|client[-_]?secret|auth[-_]?token"
    r"|credentials?|bearer"
)
_KEYWORD_HINTS = ("pass", "secret", "token", "key", "credential", "bearer")
# Every key KEYWORDS matches ends with one of these words, so "KEY=value" needs "<ending>=".
_ENDINGS = names("password passwd passphrase secret token key credential credentials bearer pass")
#: One shell word: quoted parts and bare characters, up to an unquoted space or operator.
WORD = r"""(?:'[^']*'|"(?:[^"\\]|\\.)*"|[^\s'"`|;&<>])+"""
_QUOTED_OR_BARE = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s"'`|;&<>]+)"""


@dataclass(frozen=True)
class Rule:
    """One secret form: ``pattern`` finds it, its group ``group`` is the secret (the rest is kept)."""

    kind: str
    pattern: re.Pattern[str]
    hints: tuple[str, ...]
    group: str = "secret"
    accept: Callable[[re.Match[str]], bool] | None = None


@dataclass(frozen=True)
class SegmentRule:
    """A tool whose own flags or positions carry a password (``mysql -pX``, ``htpasswd -b f u X``).

    ``segment`` matches one command of a pipeline that starts with the tool; ``flag`` finds the
    secret inside that command (only its first match: ``sshpass -p pw ssh -p 2222`` has one).
    """

    segment: re.Pattern[str]
    flag: re.Pattern[str]
    hints: tuple[str, ...]
    kind: str = "password-flag"


def not_a_reference(m: re.Match[str]) -> bool:
    """A real value: not empty, not the next flag, not a variable reference ($X, ${X}, $(cmd))."""
    value = m.group("secret").strip("\"'")
    return bool(value) and not value.startswith(("-", "$"))


def _mixed(m: re.Match[str]) -> bool:
    """A random-looking token: letters and digits both (keeps words like ``s.internalhostname`` out)."""
    value = m.group("secret")
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _rule(
    kind: str,
    pattern: str,
    hints: tuple[str, ...] | str,
    accept: Callable[[re.Match[str]], bool] | None = None,
) -> Rule:
    return Rule(kind, re.compile(pattern), (hints,) if isinstance(hints, str) else hints, accept=accept)


def _tok(kind: str, pattern: str, *hints: str, accept: Callable[[re.Match[str]], bool] | None = None) -> Rule:
    """A vendor token recognised by its shape alone: the whole match is the secret."""
    return _rule(kind, r"(?<![\w-])(?P<secret>" + pattern + r")(?![\w-])", hints, accept)


_STDIN_READERS = (
    r"(?:--password-stdin|--pass(?:wd)?-stdin|(?<![\w-])(?:ch)?passwd(?![\w-])|(?<![\w-])sudo\s+(?:-\w+\s+)*-S\b"
    r"|(?<![\w-])kinit(?![\w-])|(?<![\w-])cryptsetup(?![\w-]))"
)
# echo [-n] or printf [FORMAT-with-%]: what follows is the text piped on.
_ECHO = r"""(?<![\w-])(?:echo(?:\s+-[neE]+)*|printf(?:\s+(?:'[^']*%[^']*'|"[^"]*%[^"]*"|[^\s'"]*%[^\s'"]*))?)\s+"""

RULES: tuple[Rule, ...] = (
    # GCP service-account JSON: the whole private_key value (a PEM block with \n escapes).
    _rule(
        "gcp-private-key",
        r"""(?P<k>\\?["']private_key\\?["']\s*:\s*\\?["'])(?P<secret>(?:[^"'\\]|\\[^"'])+)""",
        "private_key",
    ),
    _rule(
        "gcp-private-key-id",
        r"""\\?["']private_key_id\\?["']\s*:\s*\\?["'](?P<secret>[0-9a-fA-F]{20,})""",
        "private_key_id",
    ),
    # PEM private key blocks, possibly truncated: the body runs to the END line, else to the next
    # "-----" or 16 KiB (bounded and possessive, so a text of repeated BEGIN lines stays linear).
    _rule(
        "pem-private-key",
        r"(?P<secret>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:(?!-----)[\s\S]){0,16384}+"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?)",
        "private key-----",
    ),
    # JSON Web Tokens: header.payload.signature, base64url, header starting eyJ ({").
    _tok("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "eyj"),
    # HTTP headers that carry credentials (curl -H, wget --header, raw requests).
    _rule(
        "authorization-header",
        r"(?i)(?:proxy-)?authorization\s*:\s*(?:bearer|basic|token|digest|negotiate|apikey)?\s*"
        r"(?P<secret>[A-Za-z0-9._~+/=:-]{6,})",
        "authorization",
    ),
    _rule("bearer-token", r"\bBearer\s+(?P<secret>[A-Za-z0-9._~+/=-]{16,})", "bearer"),
    # user:password@ in any URL (https, postgres, redis://:pw@, amqp, ...): the password only.
    _rule(
        "url-credentials",
        r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:(?P<secret>[^@\s/'\"]+)@(?!sha256:|sha512:)",
        "://",
    ),
    # Query parameters of pre-signed URLs (Azure SAS, S3, GCS): the signature is a bearer capability.
    _rule(
        "signed-url",
        r"(?i)[?&](?:sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature)=(?P<secret>[^&\s'\"]+)",
        ("sig=", "signature=", "security-token="),
    ),
    # Connection strings (Azure storage, Service Bus, SQL Server): Key=value;Key=value.
    _rule(
        "connection-string",
        r"(?i)(?:(?<![\w-])(?:AccountKey|SharedAccessKey|SharedAccessSignature)|;\s*Pwd)\s*=\s*(?P<secret>[^;'\"\s]+)",
        ("accountkey", "sharedaccess", "pwd"),
        accept=not_a_reference,
    ),
    # Cloud providers.
    _tok(
        "aws-access-key-id",
        r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}",
        *("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa"),
    ),
    _rule(
        "aws-secret-access-key",
        r"(?i)(?:aws_?secret_?access_?key|secretaccesskey|aws_secret_key)\\?[\"']?(?:\s*[=:]\s*|\s+)\\?[\"']?"
        r"(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        ("secret", "secretaccesskey"),
    ),
    _rule(
        "aws-session-token",
        r"(?i)aws_?session_?token\\?[\"']?(?:\s*[=:]\s*|\s+)\\?[\"']?(?P<secret>[A-Za-z0-9/+=]{16,})",
        ("session_token", "sessiontoken"),
    ),
    _tok("google-api-key", r"AIza[0-9A-Za-z_-]{35}", "aiza"),
    _tok("google-oauth-token", r"ya29\.[0-9A-Za-z_-]{20,}", "ya29."),
    _tok("google-client-secret", r"GOCSPX-[A-Za-z0-9_-]{20,}", "gocspx-"),
    _tok("azure-client-secret", r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}", "q~"),
    _tok("digitalocean-token", r"do[opr]_v1_[a-f0-9]{64}", "_v1_"),
    _tok("alibaba-access-key-id", r"LTAI[A-Za-z0-9]{12,20}", "ltai", accept=_mixed),
    # Version control, registries and package indexes.
    _tok(
        "github-token",
        r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}",
        *("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    _tok(
        "gitlab-token",
        r"gl(?:pat|dt|rt|ptt|soat|cbt)-[A-Za-z0-9_-]{20,}",
        "glpat-",
        "gldt-",
        "glrt-",
        "glptt-",
        "glsoat-",
        "glcbt-",
    ),
    _tok("atlassian-token", r"ATATT3[A-Za-z0-9_=-]{50,}", "atatt3"),
    _tok("docker-hub-token", r"dckr_pat_[A-Za-z0-9_-]{20,}", "dckr_pat_"),
    _tok("npm-token", r"npm_[A-Za-z0-9]{36}", "npm_"),
    _rule(
        "npm-token",
        r"(?i)(?<![\w])_(?:auth|authToken|password)\s*=\s*(?P<secret>" + _QUOTED_OR_BARE + ")",
        ("_auth", "_password"),
        accept=not_a_reference,
    ),
    _tok("pypi-token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}", "pypi-"),
    _tok("huggingface-token", r"hf_[A-Za-z0-9]{30,}", "hf_"),
    _tok("terraform-cloud-token", r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_-]{60,}", "atlasv1"),
    # HashiCorp Vault: hvs./hvb./hvr. tokens, and legacy s.<24 chars> service tokens.
    _tok("vault-token", r"hv[sbr]\.[A-Za-z0-9_-]{20,}", "hvs.", "hvb.", "hvr."),
    # The literal "s." leads (the check before it follows) so the regex engine can skip ahead to it.
    _rule("vault-token", r"(?P<secret>s(?<![\w./-]s)\.[A-Za-z0-9]{24})(?![\w.-])", "s.", accept=_mixed),
    # AI, payment, chat and mail services.
    _tok(
        "openai-api-key",
        r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{32,}",
        "sk-",
        accept=_mixed,
    ),
    _tok("anthropic-api-key", r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{20,}", "sk-ant-"),
    _tok(
        "stripe-key",
        r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,}",
        "_live_",
        "_test_",
        "whsec_",
    ),
    _tok("slack-token", r"xox[abposr]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}", "xox", "xapp-"),
    _rule(
        "slack-webhook",
        r"(?i)hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9/_-]{20,})",
        "hooks.slack.com",
    ),
    _rule(
        "discord-webhook",
        r"(?i)discord(?:app)?\.com/api/webhooks/\d+/(?P<secret>[A-Za-z0-9_-]{30,})",
        "discord",
    ),
    _rule(
        "teams-webhook", r"(?i)\.webhook\.office\.com/webhookb2/(?P<secret>[^\s'\"]{20,})", "webhook.office"
    ),
    _tok("sendgrid-key", r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}", "sg."),
    _tok("twilio-key", r"SK[0-9a-f]{32}", "sk"),
    _tok("shopify-token", r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}", "shp"),
    _rule(
        "telegram-bot-token",
        r"(?:(?<![\w-])|(?<=bot))(?P<secret>\d{8,10}:AA[A-Za-z0-9_-]{33})(?![\w-])",
        ":aa",
    ),
    _tok("age-secret-key", r"AGE-SECRET-KEY-1[0-9A-Z]{58}", "age-secret-key-"),
    # Docker config JSON: "auth": "<base64 of user:password>".
    _rule("docker-auth", r"""\\?["']auth\\?["']\s*:\s*\\?["'](?P<secret>[A-Za-z0-9+/=]{12,})""", "auth"),
    _rule(
        "api-key-header",
        # The header opens a quoted -H argument, a raw request line or a header= value.
        r"(?i)(?:(?<=['\"=\n])|(?<=-H )|\A)(?:x-)?(?:api[-_]?key|auth[-_]?token|access[-_]?token|vault[-_]token|private[-_]token"
        r"|job[-_]token|deploy[-_]token|goog[-_]api[-_]key|amz[-_]security[-_]token|consul[-_]token|nomad[-_]token"
        r"|ocp-apim-subscription-key|subscription[-_]key|jfrog-art-api|registry-auth)\s*:\s*"
        r"(?P<secret>[^\s'\"]{4,})",
        ("key", "token", "jfrog", "registry-auth"),
        accept=not_a_reference,
    ),
    _rule(
        "cookie-header", r"(?i)(?<![\w-])(?:set-)?cookie\s*:\s*[^=\s'\";]+=(?P<secret>[^\s'\";]+)", "cookie"
    ),
    # openssl's -pass/-passin/-passout pass:SECRET (env: and file: name where the secret is).
    _rule(
        "openssl-pass",
        r"(?i)(?<![\w-])-(?:pass|passin|passout|password|kpass)\s+['\"]?pass:(?P<secret>[^\s'\"]+)",
        "pass:",
    ),
    # Secrets read from stdin: echo 'user:pw' | chpasswd keeps the user; echo pw | docker login
    # --password-stdin, | passwd --stdin, | sudo -S, | kinit ...
    _rule(
        "stdin-password",
        _ECHO
        + r"""['"]?[^\s:'"]+:(?P<secret>[^\s'"]+)['"]?\s*\|\s*(?:sudo\s+(?:-\w+\s+)*)?(?:\S*/)?chpasswd\b""",
        "chpasswd",
        accept=not_a_reference,
    ),
    _rule(
        "stdin-password",
        _ECHO + r"(?P<secret>" + WORD + r")\s*\|[^|;&\n]*?" + _STDIN_READERS,
        ("stdin", "passwd", "sudo", "kinit", "cryptsetup"),
        accept=not_a_reference,
    ),
    # -auth user:pw / --auth=user:pw (jenkins-cli, httpie, many CLIs): the password only.
    _rule(
        "basic-auth",
        r"(?i)(?<![\w-])--?auth(?:\s+|=)['\"]?[^\s:'\"@/]+:(?P<secret>[^\s'\"]+)",
        "auth",
        accept=not_a_reference,
    ),
    # --password x, --password=x, -password x, --api-key x, --token=x, keytool -storepass x ...
    # The flag name must END with the secret word (--token-file /path is not a secret), and
    # --no-password style switches take no value.
    _rule(
        "secret-flag",
        r"(?i)(?<![\w-])--?(?!no-)(?:[a-z0-9]+[-_])*(?:" + KEYWORDS + r"|pass|(?:src|dest)?(?:store|key)pass)"
        r"(?:=|\s+)(?P<secret>" + _QUOTED_OR_BARE + r")",
        _KEYWORD_HINTS,
        accept=not_a_reference,
    ),
    # KEY=value and "key": "value" where the key names a secret (env, query strings, JSON).
    _rule(
        "secret-assignment",
        r"(?i)(?<![\w-])(?:(?:[a-z0-9]+[_.])*(?:[a-z0-9]*(?:" + KEYWORDS + r")|pass)|(?:[a-z0-9]+_)+pwd)"
        r"=(?P<secret>" + _QUOTED_OR_BARE + r")",
        (*(e + "=" for e in _ENDINGS), "pwd="),
        accept=not_a_reference,
    ),
    _rule(
        "secret-assignment",
        r"""(?i)\\?["'](?:[a-z0-9]+[-_])*(?:""" + KEYWORDS + r"""|pass)\\?["']\s*:\s*\\?["']"""
        r"""(?P<secret>(?:[^"'\\]|\\[^"'])+)""",
        tuple(e + q for e in _ENDINGS for q in "\"'\\"),
    ),
)


def _segment(tools: str, then: str = "") -> re.Pattern[str]:
    """One command of a pipeline/list that starts with one of ``tools`` (path prefix allowed).

    ``then`` must follow somewhere in the same command (``login`` for ``docker login``).
    """
    head = r"(?i)(?<![\w.-])(?:" + tools + r")(?![\w-])"  # a path before the tool is fine
    if then:
        head += r"[^|;&\n]*?\s" + then + r"(?![\w-])"
    return re.compile(head + r"[^|;&\n]*")


def _short(flag: str, *, attached: bool = False) -> re.Pattern[str]:
    """``-p SECRET`` or ``-p=SECRET`` (and ``-pSECRET`` when ``attached``): one shell word, not a flag."""
    sep = r"(?:=|\s+)?" if attached else r"(?:=|\s+)"
    return re.compile(r"(?<=\s)" + flag + sep + r"(?P<secret>(?![\s-])" + WORD + r")")


_MYSQL_LIKE = (
    r"mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mysqlsh|mariadb|mariadb-dump|sshpass"
    r"|mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport|mongostat|mongotop|cqlsh|cypher-shell"
)
_HTPASSWD_TAIL = r"(?:\s+-[a-zA-Z]+)*(?:\s+(?!-)\S+){{{n}}}\s+(?P<secret>(?![\s-])" + WORD + ")"
_LOGIN_TOOLS = r"docker|podman|nerdctl|buildah|skopeo|crane|oras|regctl|helm(?:\s+registry)?|oc|az|cf"

SEGMENT_RULES: tuple[SegmentRule, ...] = (
    # mysql-like tools: -pSECRET (mysql's own form) or -p SECRET; mongosh -p SECRET; sshpass -p SECRET.
    SegmentRule(
        _segment(_MYSQL_LIKE),
        _short("-p", attached=True),
        ("mysql", "maria", "sshpass", "mongo", "cqlsh", "cypher"),
    ),
    # Registry and cloud logins: docker/podman/oc/az/cf login -p SECRET (never docker run -p 8080).
    SegmentRule(_segment(_LOGIN_TOOLS, "login"), _short("-p", attached=True), (" login",)),
    # SQL Server tools take the password as capital -P.
    SegmentRule(_segment(r"sqlcmd|bcp|osql|isql"), _short("-P"), ("sqlcmd", "bcp", "osql", "isql")),
    SegmentRule(_segment(r"redis-cli"), _short("-a"), ("redis-cli",)),
    # LDAP simple bind password.
    SegmentRule(_segment(r"ldap[a-z]+"), _short("-w"), ("ldap",)),
    # Archives: zip/unzip -P SECRET, 7z -pSECRET (7z's -p takes no separate value).
    SegmentRule(_segment(r"zip|unzip"), _short("-P"), ("zip",)),
    SegmentRule(_segment(r"7z|7za|7zr"), re.compile(r"(?<=\s)-p(?P<secret>(?![\s-])" + WORD + ")"), ("7z",)),
    # openssl enc -k PASSWORD / -K HEXKEY.
    SegmentRule(_segment(r"openssl"), _short("-[kK]"), ("openssl",)),
    # curl/wget/httpie basic auth: -u user:password, --user user:password, --proxy-user user:password.
    SegmentRule(
        _segment(r"curl|wget|http|https"),
        re.compile(
            r"(?<=\s)(?:-u|-a|--user|--proxy-user)(?:\s+|=)['\"]?[^\s:'\"/]*:(?P<secret>(?!//)[^\s'\"]+)"
        ),
        ("-u", "-a"),
    ),
    # smbclient -U user%password; lftp -u user,password.
    SegmentRule(
        _segment(r"smbclient|rpcclient|smbmap|smbcacls|net"),
        re.compile(r"(?<=\s)(?:-U|--user)(?:\s+|=)?['\"]?[^\s%'\"]+%(?P<secret>[^\s'\"]+)"),
        ("%",),
    ),
    SegmentRule(
        _segment(r"lftp"), re.compile(r"(?<=\s)-u\s+['\"]?[^\s,'\"]+,(?P<secret>[^\s'\"]+)"), ("lftp",)
    ),
    # htpasswd -b FILE USER PASSWORD, htpasswd -nb USER PASSWORD (-n: no file).
    SegmentRule(
        _segment(r"htpasswd"),
        re.compile(r"(?<=\s)-(?![a-zA-Z]*n)(?=[a-zA-Z]*b)[a-zA-Z]+" + _HTPASSWD_TAIL.format(n=2)),
        ("htpasswd",),
    ),
    SegmentRule(
        _segment(r"htpasswd"),
        re.compile(r"(?<=\s)-(?=[a-zA-Z]*n)(?=[a-zA-Z]*b)[a-zA-Z]+" + _HTPASSWD_TAIL.format(n=1)),
        ("htpasswd",),
    ),
    # Oracle: sqlplus user/password@db.
    SegmentRule(
        _segment(r"sqlplus|rman|expdp|impdp|sqlldr"),
        re.compile(r"(?<=\s)[A-Za-z0-9_$#]+/(?P<secret>[^\s@/'\"]+)(?=@|\s|$)"),
        ("sqlplus", "rman", "expdp", "impdp", "sqlldr"),
    ),
    # rabbitmqctl add_user NAME PASSWORD / change_password NAME PASSWORD.
    SegmentRule(
        _segment(r"rabbitmqctl"),
        re.compile(r"(?<=\s)(?:add_user|change_password)\s+\S+\s+(?P<secret>(?![\s-])" + WORD + ")"),
        ("rabbitmqctl",),
    ),
    # MinIO client: mc alias set NAME URL ACCESS_KEY SECRET_KEY.
    SegmentRule(
        _segment(r"mc"),
        re.compile(
            r"(?<=\s)(?:alias\s+set|config\s+host\s+add)\s+\S+\s+\S+\s+\S+\s+(?P<secret>(?![\s-])"
            + WORD
            + ")"
        ),
        ("alias set", "host add"),
    ),
)
