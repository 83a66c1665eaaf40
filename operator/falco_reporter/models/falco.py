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
        data = json.loads(text)
    except RecursionError as exc:
        raise InvalidAlert("body is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise InvalidAlert(f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise InvalidAlert(f"body must be one JSON object (a Falco alert), got {type(data).__name__}")
    return data


def normalise(payload: dict[str, Any]) -> FalcoAlertSpec:
    """Validate a decoded payload and return the normalised spec, or raise InvalidAlert."""
    rule = payload.get("rule")
    if not isinstance(rule, str) or not rule.strip():
        raise InvalidAlert("field 'rule' is required and must be a non-empty string")
    if len(rule) > MAX_RULE_LENGTH:
        raise InvalidAlert(f"field 'rule' is longer than {MAX_RULE_LENGTH} characters")
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
    fields, stringified = _storable_fields(raw_fields)
    spec = FalcoAlertSpec(
        rule=rule.strip(),
        priority=priority,
        source=source,
        hostname=hostname,
        time=time,
        output=output,
        output_fields=fields,
        tags=tags,
        fingerprint="",
        stringified_fields=stringified,
    )
    spec.subject = _subject(spec)
    spec.fingerprint = fingerprint(spec)
    return spec


def _subject(spec: FalcoAlertSpec) -> AlertSubject:
    pod = spec.text("k8s.pod.name") or ""
    if not pod and spec.text("ka.target.resource") == "pods":
        pod = spec.text("ka.target.name") or ""
    repo = spec.text("container.image.repository") or ""
    tag = spec.text("container.image.tag") or ""
    return AlertSubject(
        namespace=spec.text("k8s.ns.name") or spec.text("ka.target.namespace") or "",
        pod=pod,
        container_id=spec.text("container.id") or "",
        container_name=spec.text("container.name") or "",
        image=f"{repo}:{tag}" if repo and tag else repo,
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
        stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{nanos:09d}Z"
    if not isinstance(value, str):
        raise InvalidAlert("field 'time' must be an RFC 3339 string or integer nanoseconds")
    match = _TIME_RE.fullmatch(value.strip())
    if not match:
        raise InvalidAlert(f"field 'time' is not an RFC 3339 time: {value[:64]!r}")
    base, frac, zone = match.group("base"), match.group("frac") or "", match.group("zone")
    try:
        parsed = datetime.fromisoformat(base + ("+00:00" if zone in ("Z", "z") else zone))
    except ValueError as exc:
        raise InvalidAlert(f"field 'time' is not a valid date: {value[:64]!r}") from exc
    utc = parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
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
    return value


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidAlert("field 'tags' must be a list of strings")
    return sorted(set(value))


def _storable_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Keep output field values exact in a Kubernetes object.

    Kubernetes stores integers as int64, so an unsigned 64-bit value above 2^63-1 would be
    rounded through a float. Such values are stored as their exact decimal string and named
    in ``stringifiedFields``. Non-scalar values (Falco never sends them) become JSON text.
    """
    out: dict[str, Any] = {}
    stringified: list[str] = []
    for key, value in fields.items():
        if not isinstance(key, str):
            raise InvalidAlert("output_fields keys must be strings")
        if isinstance(value, bool) or value is None or isinstance(value, str):
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
            out[key] = json.dumps(value, sort_keys=True, separators=(",", ":"))[:4096]
            stringified.append(key)
    return out, sorted(stringified)


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

    Inputs: rule; namespace; pod name, else container id, else hostname; process executable
    path (else name); normalised command line; for non-syscall sources, the audit target.
    Never the uuid, time, or counters, so repeats merge.
    """
    subject = (
        spec.text("k8s.pod.name")
        or spec.text("ka.target.name")
        or spec.text("container.id")
        or spec.hostname
        or ""
    )
    parts = [
        spec.rule,
        spec.source,
        spec.text("k8s.ns.name") or spec.text("ka.target.namespace") or "",
        subject,
        spec.text("proc.exepath") or spec.text("proc.name") or spec.text("ka.user.name") or "",
        normalise_cmdline(spec.text("proc.cmdline") or spec.text("ka.uri.param[command]")),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]


def object_name(spec: FalcoAlertSpec) -> str:
    """Deterministic DNS-1123 name: a slug of the rule plus the fingerprint (max 63 chars)."""
    slug = re.sub(r"[^a-z0-9]+", "-", spec.rule.lower()).strip("-")[:40].strip("-") or "alert"
    return f"{slug}-{spec.fingerprint[:16]}"
