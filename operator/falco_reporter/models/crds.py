"""Build the CustomResourceDefinitions from the pydantic models.

The models are the single source of truth: ``crds/*.yaml`` is generated from them
(``make crds``) and a test fails when the two drift apart. Pydantic's JSON Schema is turned
into a Kubernetes structural schema: references inlined, nullable unions flattened,
free-form maps marked ``x-kubernetes-preserve-unknown-fields``, titles and defaults dropped
(the API server would otherwise apply defaults we do not want it to own).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from falco_reporter import API_GROUP, API_VERSION
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.report import AlertReportSpec
from falco_reporter.models.resources import AlertReportStatus, FalcoAlertStatus

_KEEP = {"type", "description", "enum", "items", "properties", "required", "maxLength", "minimum", "maxItems"}


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema as a Kubernetes structural OpenAPI v3 schema."""
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    defs = schema.pop("$defs", {})
    return _convert(schema, defs)


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    description = node.get("description")
    if "$ref" in node:
        resolved = _convert(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        if description:
            resolved["description"] = description
        return resolved
    variants = node.get("anyOf")
    if variants:
        concrete = [v for v in variants if v.get("type") != "null"]
        union: dict[str, Any] = (
            _convert(concrete[0], defs)
            if len(concrete) == 1
            else {"x-kubernetes-preserve-unknown-fields": True}
        )
        if len(concrete) < len(variants):
            union["nullable"] = True
        if description:
            union["description"] = description
        return union
    if "const" in node:
        node = {**node, "enum": [node["const"]], "type": node.get("type", "string")}
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    kind = node.get("type")
    if kind is None:
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "object":
        if "properties" in node:
            out["properties"] = {k: _convert(v, defs) for k, v in node["properties"].items()}
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("type") in ("string", "integer", "boolean"):
            out["additionalProperties"] = {"type": extra["type"]}
        elif extra not in (None, False) or "properties" not in node:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        out["items"] = _convert(node.get("items", {}), defs)
    if "required" in out:
        out["required"] = sorted(out["required"])
    return out


def _crd(
    *,
    kind: str,
    plural: str,
    short: str,
    description: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[dict[str, Any]],
    selectable: list[str],
) -> dict[str, Any]:
    spec_schema = structural(spec)
    status_schema = structural(status)
    # kopf keeps a handler's retry progress here while it retries (empty otherwise).
    status_schema.setdefault("properties", {})["kopf"] = {
        "type": "object",
        "description": "The operator's handler progress while a step is being retried.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{API_GROUP}",
            "labels": {
                "app.kubernetes.io/name": "falco-reporter",
                "app.kubernetes.io/part-of": "falco-reporter",
            },
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["falco"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    # Field selectors (Kubernetes >= 1.31): `kubectl get ar --field-selector
                    # spec.verdict=suspicious`; the operator watches reviewed reports only.
                    "selectableFields": [{"jsonPath": path} for path in selectable],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def _col(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        col["priority"] = priority
    return col


def build_crds() -> list[dict[str, Any]]:
    """Both CRDs, FalcoAlert first."""
    age = _col("Age", ".metadata.creationTimestamp", "date")
    return [
        _crd(
            kind="FalcoAlert",
            plural="falcoalerts",
            short="fa",
            description="A Falco alert as received, with repeats merged into one object, and its enrichment.",
            spec=FalcoAlertSpec,
            status=FalcoAlertStatus,
            columns=[
                _col("Rule", ".spec.rule"),
                _col("Priority", ".spec.priority"),
                _col("Pod", ".spec.subject.pod"),
                _col("Count", ".status.occurrences.count", "integer"),
                age,
                _col("Reported", '.status.conditions[?(@.type=="Reported")].status', priority=1),
            ],
            selectable=[".spec.rule", ".spec.priority", ".spec.fingerprint"],
        ),
        _crd(
            kind="AlertReport",
            plural="alertreports",
            short="ar",
            description="An enriched, validated report explaining one FalcoAlert, for review.",
            spec=AlertReportSpec,
            status=AlertReportStatus,
            columns=[
                _col("Rule", ".spec.rule"),
                _col("Severity", ".spec.severity"),
                _col("Verdict", ".spec.verdict"),
                _col("Workload", ".spec.subject.workload.name"),
                _col("Count", ".spec.occurrences.count", "integer"),
                _col("Writer", ".spec.writer.backend"),
                _col("Review", ".spec.review.state"),
                age,
                _col("Incident", ".spec.incident.id"),
                _col("Summary", ".spec.summary", priority=1),
            ],
            selectable=[".spec.review.state", ".spec.severity", ".spec.verdict", ".spec.rule"],
        ),
    ]
