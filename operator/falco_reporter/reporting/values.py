"""The alert's values that fill knowledge-base placeholders, quoted for where they go."""

from __future__ import annotations

import json
import re
import shlex

from falco_reporter.knowledge.model import placeholders_in
from falco_reporter.reporting.context import ReportContext

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
# A placeholder written inside double quotes is a YAML string whatever it holds: JSON escaping
# (a valid YAML double-quoted scalar) lets it take any value, such as a user name with '@'.
_ANY = re.compile(r'"\{\{\s*([a-z_]+)\s*\}\}"|\{\{\s*([a-z_]+)\s*\}\}')
_DNS_SAFE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def placeholder_values(ctx: ReportContext) -> dict[str, str]:
    """Known values only; unknown placeholders stay unfilled (and their snippet is dropped)."""
    alert, enr = ctx.alert, ctx.enrichment
    values = {
        "namespace": enr.namespace or alert.subject.namespace,
        "pod": enr.pod or alert.subject.pod,
        "container": enr.container.name,
        "container_id": (alert.subject.container_id if alert.subject.container_id != "host" else "")
        or enr.container.container_id.split("://", 1)[-1][:12],
        "node": enr.node,
        "falco_host": alert.hostname,
        "pid": alert.text("proc.pid") or "",
        "audit_user": alert.text("ka.user.name") or "",
        "image": enr.container.image or alert.subject.image,
        "proc_name": alert.text("proc.name") or "",
        "proc_exepath": alert.text("proc.exepath") or "",
        "workload_kind": enr.workload.kind,
        "workload_name": enr.workload.name,
        "service_account": enr.service_account,
    }
    return {k: v for k, v in values.items() if v}


def fill_shell(template: str, values: dict[str, str]) -> str | None:
    """Fill a command; every value is shell-quoted (alert values are attacker-controlled)."""
    if not placeholders_in(template) <= values.keys():
        return None
    return _PLACEHOLDER.sub(lambda m: shlex.quote(values[m.group(1)]), template)


def fill_yaml(template: str, values: dict[str, str]) -> str | None:
    """Fill a manifest; bare placeholders take only DNS-safe values (else the snippet is dropped),
    quoted ones any value, escaped."""
    if not placeholders_in(template) <= values.keys():
        return None
    bare = {m.group(2) for m in _ANY.finditer(template) if m.group(2)}
    if any(not _DNS_SAFE.match(values[name]) for name in bare if name not in ("image",)):
        return None
    # One pass, so a filled value that looks like a placeholder is never filled again.
    return _ANY.sub(lambda m: json.dumps(values[m.group(1)]) if m.group(1) else values[m.group(2)], template)
