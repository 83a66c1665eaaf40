"""Falco alert payloads: parse what Falco and Falcosidekick send, normalise, fingerprint.

Falco's own ``http_output`` and Falcosidekick's ``webhook`` output send one JSON object per
request; older Falco versions omit ``source``, ``tags`` and ``hostname``, some fields are JSON
null, times can be integers (nanoseconds), and a few fields are unsigned 64-bit numbers that a
Kubernetes integer (int64) cannot hold. Everything here is pure and deterministic.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_PRIORITY_ALIASES = {p.lower(): p for p in PRIORITIES} | {
    "info": "Informational",
    "warn": "Warning",
    "err": "Error",
    "crit": "Critical",
    "emerg": "Emergency",
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_RULE_LENGTH = 512
MAX_FIELDS = 512
MAX_KEY_LENGTH = 256
#: Longest output-field value kept as sent; longer ones are cut and marked (see truncate()).
MAX_VALUE_CHARS = 4096
#: Once the kept field text passes this budget, further values are cut to SMALL_VALUE_CHARS, so
#: even 512 huge fields make a FalcoAlert (and its AlertReport) far below etcd's 1.5 MiB limit.
FIELDS_BUDGET_CHARS = 96 * 1024
SMALL_VALUE_CHARS = 256
MAX_OUTPUT_CHARS = 8192
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
#: Output fields that may still differ between occurrences merged into one FalcoAlert; the status
#: keeps the last 10 distinct values of each (``status.samples``), so merging loses no target.
SAMPLED_FIELDS = (
    "proc.cmdline",
    "proc.pname",
    "fd.name",
    "fd.cip",
    "fd.sip",
    "user.name",
    "container.id",
    "ka.uri",
)


class InvalidAlert(ValueError):
    """The payload is not a Falco alert; the message names the problem."""


class AlertSubject(BaseModel):
    """Where the alert happened, read from the alert's own fields."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", use_attribute_docstrings=True)

    namespace: str = ""
    """Kubernetes namespace named by the alert (k8s.ns.name or ka.target.namespace)."""
    pod: str = ""
    """Pod name named by the alert (k8s.pod.name or ka.target.name for pod resources)."""
    container_id: str = Field(default="", alias="containerID")
    """Container id as Falco reports it (12 hex characters), or 'host'."""
    container_name: str = Field(default="", alias="containerName")
    """Container name as Falco reports it."""
    image: str = ""
    """Image repository (and tag when known) as Falco reports it."""


class FalcoAlertSpec(BaseModel):
    """The normalised Falco alert, as received (first occurrence)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", use_attribute_docstrings=True)

    rule: str
    """Name of the Falco rule that fired."""
    priority: str
    """Falco priority: Emergency, Alert, Critical, Error, Warning, Notice, Informational or Debug."""
    source: str = "syscall"
    """Event source: syscall, k8s_audit, internal, or a plugin source."""
    hostname: str = ""
    """Host (node) that Falco ran on, when the alert says."""
    time: str
    """RFC 3339 UTC time of the first occurrence, nanosecond precision."""
    output: str = ""
    """Falco's formatted output line."""
    output_fields: dict[str, Any] = Field(default_factory=dict, alias="outputFields")
    """Every output field of the alert, with its JSON type kept (see stringifiedFields)."""
    tags: list[str] = Field(default_factory=list)
    """Rule tags (maturity, MITRE tactic and technique, compliance), sorted."""
    fingerprint: str
    """Hash of rule, namespace, pod/container/host, process and normalised command line; equal alerts merge."""
    stringified_fields: list[str] = Field(default_factory=list, alias="stringifiedFields")
    """Output fields whose integer value exceeds int64 and is stored as its exact decimal string."""
    truncated_fields: list[str] = Field(default_factory=list, alias="truncatedFields")
    """Output fields (and 'output') cut to the size limit; the value ends with a marker naming its length."""
    redacted_fields: list[str] = Field(default_factory=list, alias="redactedFields")
    """Output fields (and 'output') in which the receiver replaced secrets by placeholders before storing."""
    subject: AlertSubject = Field(default_factory=AlertSubject)
    """Where the alert happened, as the alert itself says."""

    def field(self, name: str) -> Any:
        """The output field's value, or None when absent or Falco's ``<NA>``."""
        value = self.output_fields.get(name)
        return None if value in ("<NA>", "") else value

    def text(self, name: str) -> str | None:
        """The output field as text, or None."""
        value = self.field(name)
        return None if value is None else str(value)


def parse_alert_body(body: bytes) -> dict[str, Any]:
    """Decode a request body into a JSON object, or raise InvalidAlert."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidAlert(f"body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        data = json.loads(text, object_pairs_hook=_checked_object)
    except RecursionError as exc:
        raise InvalidAlert("body is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise InvalidAlert(f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InvalidAlert(f"body has an unusable value: {str(exc)[:120]}") from exc
    if not isinstance(data, dict):
        raise InvalidAlert(f"body must be one JSON object (a Falco alert), got {type(data).__name__}")
    return data


def _checked_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """One JSON object: duplicate keys and lone surrogates (not valid Unicode text) are refused."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidAlert(f"duplicate key {key[:64]!r} in a JSON object")
        _check_text(key)
        _check_text(value)
        out[key] = value
    return out


def _check_text(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidAlert(
                f"string holds a lone surrogate (\\u{ord(value[exc.start]):04x}), not text"
            ) from None
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def normalise(payload: dict[str, Any]) -> FalcoAlertSpec:
    """Validate a decoded payload and return the normalised spec, or raise InvalidAlert."""
    rule = payload.get("rule")
    if not isinstance(rule, str) or not rule.strip():
        raise InvalidAlert("field 'rule' is required and must be a non-empty string")
    if len(rule) > MAX_RULE_LENGTH:
        raise InvalidAlert(f"field 'rule' is longer than {MAX_RULE_LENGTH} characters")
    _check_text(rule)
    priority = normalise_priority(payload.get("priority"))
    output = _optional_str(payload, "output")
    source = _optional_str(payload, "source") or "syscall"
    # Falcosidekick writes "syscalls" when Falco sent no source; both mean the syscall source.
    if source == "syscalls":
        source = "syscall"
    hostname = _optional_str(payload, "hostname")
    time = normalise_time(payload.get("time"))
    tags = _tags(payload.get("tags"))
    raw_fields = payload.get("output_fields")
    if raw_fields is None:
        raw_fields = {}
    if not isinstance(raw_fields, dict):
        raise InvalidAlert("field 'output_fields' must be a JSON object")
    if len(raw_fields) > MAX_FIELDS:
        raise InvalidAlert(f"field 'output_fields' has more than {MAX_FIELDS} entries")
    fields, stringified, truncated = _storable_fields(raw_fields)
    if len(output) > MAX_OUTPUT_CHARS:
        output = truncate(output, MAX_OUTPUT_CHARS)
        truncated.insert(0, "output")
    spec = FalcoAlertSpec(
        rule=rule.strip(),
        priority=priority,
        source=source,
        hostname=truncate(hostname, 253),
        time=time,
        output=output,
        output_fields=fields,
        tags=tags,
        fingerprint="",
        stringified_fields=stringified,
        truncated_fields=truncated,
    )
    spec.subject = _subject(spec)
    spec.fingerprint = fingerprint(spec)
    return spec


def _subject(spec: FalcoAlertSpec) -> AlertSubject:
    """Where it happened. Names that Kubernetes could not hold (a 100 KB 'namespace') are left
    out, so they never become cache keys or placements; the raw value stays in outputFields."""
    pod = spec.text("k8s.pod.name") or ""
    if not pod and spec.text("ka.target.resource") == "pods":
        pod = spec.text("ka.target.name") or ""
    repo = spec.text("container.image.repository") or ""
    tag = spec.text("container.image.tag") or ""
    namespace = spec.text("k8s.ns.name") or spec.text("ka.target.namespace") or ""
    return AlertSubject(
        namespace=namespace if _DNS_LABEL_RE.fullmatch(namespace) else "",
        pod=pod if _DNS_SUBDOMAIN_RE.fullmatch(pod) else "",
        container_id=(spec.text("container.id") or "")[:128],
        container_name=(spec.text("container.name") or "")[:253],
        image=(f"{repo}:{tag}" if repo and tag else repo)[:1024],
    )


def normalise_priority(value: Any) -> str:
    """Map Falco's priority spellings to the canonical capitalised name."""
    if not isinstance(value, str) or value.strip().lower() not in _PRIORITY_ALIASES:
        raise InvalidAlert(f"field 'priority' must be one of {', '.join(PRIORITIES)}; got {value!r}")
    return _PRIORITY_ALIASES[value.strip().lower()]


def normalise_time(value: Any) -> str:
    """Return an RFC 3339 UTC time with nine fractional digits.

    Accepts Falco's ISO strings (any fractional precision, as Falcosidekick drops trailing
    zeros) and integer nanoseconds since the epoch, as some older payloads carry.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidAlert("field 'time' is required (RFC 3339 string or integer nanoseconds)")
    if isinstance(value, int):
        if not 0 <= value <= INT64_MAX:
            raise InvalidAlert("field 'time' as an integer must be nanoseconds since the epoch")
        seconds, nanos = divmod(value, 1_000_000_000)
        try:
            stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidAlert("field 'time' is out of range") from exc
        return f"{stamp}.{nanos:09d}Z"
    if not isinstance(value, str):
        raise InvalidAlert("field 'time' must be an RFC 3339 string or integer nanoseconds")
    match = _TIME_RE.fullmatch(value.strip())
    if not match:
        raise InvalidAlert(f"field 'time' is not an RFC 3339 time: {value[:64]!r}")
    base, frac, zone = match.group("base"), match.group("frac") or "", match.group("zone")
    try:
        parsed = datetime.fromisoformat(base + ("+00:00" if zone in ("Z", "z") else zone))
        utc = parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError as exc:
        raise InvalidAlert(f"field 'time' is not a valid date: {value[:64]!r}") from exc
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-05:00 is past year 9999 in UTC
        raise InvalidAlert(f"field 'time' is out of range: {value[:64]!r}") from exc
    return f"{utc}.{frac[:9].ljust(9, '0')}Z"


_TIME_RE = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,12}))?(?P<zone>[Zz]|[+-]\d{2}:?\d{2})"
)


def _optional_str(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidAlert(f"field '{key}' must be a string")
    _check_text(value)
    return value


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidAlert("field 'tags' must be a list of strings")
    _check_text(value)
    return sorted(set(value))


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a visible marker naming the original length."""
    if len(text) <= limit:
        return text
    marker = f"…[truncated, {len(text)} chars]"
    return text[: max(0, limit - len(marker))] + marker


def _storable_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """Keep output field values exact in a Kubernetes object, and bounded.

    Kubernetes stores integers as int64, so an unsigned 64-bit value above 2^63-1 would be
    rounded through a float. Such values are stored as their exact decimal string and named
    in ``stringifiedFields``. Non-scalar values (Falco never sends them) become JSON text.
    Strings longer than MAX_VALUE_CHARS (SMALL_VALUE_CHARS once FIELDS_BUDGET_CHARS is spent)
    are cut with a marker and named in ``truncatedFields``.
    """
    out: dict[str, Any] = {}
    stringified: list[str] = []
    truncated: list[str] = []
    budget = FIELDS_BUDGET_CHARS
    for key, value in fields.items():
        if not isinstance(key, str):
            raise InvalidAlert("output_fields keys must be strings")
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidAlert(f"output_fields key longer than {MAX_KEY_LENGTH} characters: {key[:64]!r}...")
        _check_text(key)
        if isinstance(value, str):
            _check_text(value)
            limit = MAX_VALUE_CHARS if budget > 0 else SMALL_VALUE_CHARS
            out[key] = truncate(value, limit)
            budget -= len(out[key])
            if len(value) > limit:
                truncated.append(key)
        elif isinstance(value, bool) or value is None:
            out[key] = value
        elif isinstance(value, int):
            if INT64_MIN <= value <= INT64_MAX:
                out[key] = value
            else:
                out[key] = str(value)
                stringified.append(key)
        elif isinstance(value, float):
            out[key] = value if math.isfinite(value) else str(value)
        else:
            out[key] = truncate(json.dumps(value, sort_keys=True, separators=(",", ":")), SMALL_VALUE_CHARS)
            stringified.append(key)
    return out, sorted(stringified), sorted(truncated)


# --- fingerprint ---------------------------------------------------------------------------

_UUID_RE = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_HEX_RE = re.compile(r"\b[0-9a-fA-F]{16,}\b")
_WS_RE = re.compile(r"\s+")


def normalise_cmdline(cmdline: str | None) -> str:
    """Collapse whitespace and mask UUIDs and long hex ids, which vary per run of one command."""
    if not cmdline:
        return ""
    text = _WS_RE.sub(" ", cmdline).strip()
    text = _UUID_RE.sub("<uuid>", text)
    return _HEX_RE.sub("<hex>", text)


def fingerprint(spec: FalcoAlertSpec) -> str:
    """A stable hash of what makes two alerts 'the same thing happening again'.

    Inputs: rule; source; namespace; subject (pod name, else audit target, else container id,
    else hostname; a host event, container id ``host``, adds the hostname, so two nodes never
    merge); process (executable path, else name, else audit user); normalised command line; and
    the action's target (:func:`action_target`). Never the uuid, time, or counters, so repeats
    merge. Fields that still vary are sampled in the status (SAMPLED_FIELDS).
    """
    subject = (
        spec.text("k8s.pod.name")
        or spec.text("ka.target.name")
        or spec.text("container.id")
        or spec.hostname
        or ""
    )
    if spec.text("container.id") == "host":
        subject = f"host:{spec.hostname or spec.text('evt.hostname') or ''}"
    parts = [
        spec.rule,
        spec.source,
        spec.text("k8s.ns.name") or spec.text("ka.target.namespace") or "",
        subject,
        spec.text("proc.exepath") or spec.text("proc.name") or spec.text("ka.user.name") or "",
        normalise_cmdline(spec.text("proc.cmdline") or spec.text("ka.uri.param[command]")),
        action_target(spec),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]


def action_target(spec: FalcoAlertSpec) -> str:
    """What the action was done to: the peer address and server port of a connection, else the
    file (``fd.name``), else an audit event's resource, subresource and verb. The client's
    ephemeral port never counts, so repeated connections to one server merge."""
    peer = spec.text("fd.rip") or spec.text("fd.sip")
    port = spec.text("fd.sport") or spec.text("fd.rport")
    name = spec.text("fd.name") or ""
    if not peer and "->" in name:  # fd.name of a connection: client:port->server:port
        server = name.split("->", 1)[1]
        peer, _, port = server.rpartition(":")
    if peer:
        return f"net:{peer}:{port or ''}"
    if name:
        return f"file:{name}"
    resource = spec.text("ka.target.resource")
    if resource or spec.text("ka.verb"):
        return (
            f"audit:{resource or ''}/{spec.text('ka.target.subresource') or ''}:{spec.text('ka.verb') or ''}"
        )
    return ""


def object_name(spec: FalcoAlertSpec) -> str:
    """Deterministic DNS-1123 name: a slug of the rule plus the fingerprint (max 63 chars)."""
    slug = re.sub(r"[^a-z0-9]+", "-", spec.rule.lower()).strip("-")[:40].strip("-") or "alert"
    return f"{slug}-{spec.fingerprint[:16]}"
