"""Falco exception snippets for one precise alert pattern."""

from __future__ import annotations

from typing import Any

import yaml

from falco_reporter.knowledge.model import ExceptionTemplate
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.reporting.redaction import PLACEHOLDER_RE


def exception_values(
    template: ExceptionTemplate, alert: FalcoAlertSpec
) -> tuple[list[str], list[str], list[str]]:
    """The template's fields the alert has values for, with their comps and values.

    A value holding a redaction placeholder is left out: ``[REDACTED-1]`` would never match the
    real event, so the exception would silently except nothing (the other fields still apply).
    """
    fields, comps, values = [], [], []
    for field_name, comp in zip(template.fields, template.comps, strict=True):
        value = alert.text(field_name)
        if value is None and field_name == "k8s.ns.name":
            value = alert.subject.namespace or None
        if value is None or PLACEHOLDER_RE.search(value):
            continue
        fields.append(field_name)
        comps.append(comp)
        values.append(value)
    return fields, comps, values


def exception_snippet(rule: str, template: ExceptionTemplate, alert: FalcoAlertSpec) -> str | None:
    """A rules-file item appending one exception to ``rule``; None when the alert lacks every field.

    Upstream rules declare no exceptions, so the entry spells out ``fields`` and ``comps``
    (appending bare values works only for an exception the base rule already defines).
    """
    fields, comps, values = exception_values(template, alert)
    if not fields:
        return None
    item: dict[str, Any] = {
        "rule": rule,
        "exceptions": [{"name": template.name, "fields": fields, "comps": comps, "values": [values]}],
        "override": {"exceptions": "append"},
    }
    return render_rules([item])


_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _FlowLists(_SafeDumper):  # type: ignore[valid-type,misc]
    """Write short scalar lists in flow style, as hand-written Falco rules files do."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_FlowLists.add_representer(list, _represent_list)


def render_rules(items: list[dict[str, Any]]) -> str:
    """Dump rules-file items deterministically (key order kept, values safely quoted)."""
    return yaml.dump(items, Dumper=_FlowLists, sort_keys=False, allow_unicode=True, width=1000)
