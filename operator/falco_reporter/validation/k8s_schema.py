"""Kubernetes object bodies checked against JSON schemas generated from the API server's OpenAPI.

``k8s_schemas.json`` is written by ``hack/gen_k8s_schemas.py`` (``make k8s-schemas``) from the
kube-apiserver the project builds; ``k8s_rules`` adds what OpenAPI does not carry (enums,
cross-field rules) and ``k8s_config`` the component configuration files no API server serves.
Validation uses the ``jsonschema`` library; its errors are rephrased as ``path: problem``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from falco_reporter.validation.k8s_config import CONFIG_DEFS, CONFIG_KINDS
from falco_reporter.validation.k8s_rules import ENUMS, HINTS, REQUIRED, RULES

DATA_FILE = "k8s_schemas.json"
_TYPE_NAMES = {"object": "mapping", "array": "list"}


@dataclass(frozen=True)
class KindInfo:
    """Where a kind's schema is and whether its objects live in a namespace."""

    definition: str
    namespaced: bool


@dataclass(frozen=True)
class Schemas:
    """The loaded schemas: served kinds, component config kinds and the shared definitions."""

    kubernetes_version: str
    kinds: dict[tuple[str, str], KindInfo]
    config_kinds: dict[tuple[str, str], KindInfo]
    defs: dict[str, Any]


def _split(key: str) -> tuple[str, str]:
    api, _, kind = key.rpartition("/")
    return api, kind


def _overlay(defs: dict[str, Any]) -> dict[str, Any]:
    """Mark each definition with its name (for rules and hints) and add the enums and requirements."""
    out = copy.deepcopy(defs)
    for name, schema in out.items():
        schema["x-def"] = name
        if name in REQUIRED:
            schema["required"] = sorted({*schema.get("required", ()), *REQUIRED[name]})
    for dotted, values in ENUMS.items():
        name, _, field = dotted.rpartition(".")
        prop = out[name]["properties"][field]
        (prop["items"] if prop.get("type") == "array" else prop)["enum"] = list(values)
    for schema in out.values():
        _link(schema, out)
    return out


def _link(node: Any, defs: dict[str, Any]) -> Any:
    """Replace each {"$ref": ...} by the definition itself (shared, not copied).

    Resolving references through jsonschema's registry is about a third of the validation time;
    the definitions have no cycles, and a cycle would only make the shared graph cyclic.
    """
    if isinstance(node, dict):
        if "$ref" in node:
            return defs[node["$ref"].removeprefix("#/$defs/")]
        for key, value in node.items():
            if key != "x-def":
                node[key] = _link(value, defs)
    elif isinstance(node, list):
        node[:] = [_link(v, defs) for v in node]
    return node


@cache
def schemas() -> Schemas:
    """The shipped schemas (read once)."""
    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    return Schemas(
        kubernetes_version=data["kubernetes_version"],
        kinds={_split(k): KindInfo(v["definition"], v["namespaced"]) for k, v in data["kinds"].items()},
        config_kinds={k: KindInfo(v, False) for k, v in CONFIG_KINDS.items()},
        defs=_overlay({**data["$defs"], **CONFIG_DEFS}),
    )


def _rule_keyword(
    _validator: Any, name: str, instance: Any, _schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """The ``x-def`` keyword: run the cross-field rule kept for this definition, if any."""
    rule = RULES.get(name)
    if rule is not None and isinstance(instance, dict):
        for path, message in rule(instance):
            yield ValidationError(message, path=path)


# jsonschema's stubs leave extend() untyped.
_Validator: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"x-def": _rule_keyword}
)


@cache
def _validator(definition: str) -> Any:
    return _Validator(schemas().defs[definition])


def prune_nulls(value: Any) -> Any:
    """Drop mapping entries whose value is null: the API server treats them as absent."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def check_body(doc: dict[str, Any], definition: str) -> list[tuple[str, str]]:
    """(path, problem) for every way ``doc`` breaks the schema of ``definition`` (metadata included)."""
    out: dict[tuple[str, str], None] = {}
    for error in _validator(definition).iter_errors(prune_nulls(doc)):
        for item in _explain(error):
            out[item] = None
    return list(out)


def dotted(path: Any) -> str:
    """spec.containers[0].image from a jsonschema path."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _explain(error: ValidationError) -> list[tuple[str, str]]:
    path, instance, schema, kind = dotted(error.absolute_path), error.instance, error.schema, error.validator
    value: Any = error.validator_value
    if kind == "additionalProperties" and isinstance(instance, dict) and isinstance(schema, dict):
        known = list(schema.get("properties", {}))
        hints = HINTS.get(str(schema.get("x-def")), {})
        return [
            (
                dotted([*error.absolute_path, key]),
                f"unknown field (expected {', '.join(known)})" + (f"; {hints[key]}" if key in hints else ""),
            )
            for key in instance
            if key not in known
        ]
    if kind == "required" and isinstance(instance, dict):
        missing = [k for k in value if k not in instance]
        return [(dotted([*error.absolute_path, k]), "required field is missing") for k in missing]
    if kind == "type":
        return [(path, _type_problem(value, instance))]
    if kind in ("oneOf", "anyOf"):
        types = [s.get("type") for s in value if isinstance(s, dict)]
        return [(path, _type_problem(types, instance))]
    if kind == "enum":
        return [(path, f"{instance!r} is not one of {', '.join(map(str, value))}")]
    return [(path, error.message)]


def _type_problem(types: Any, instance: Any) -> str:
    wanted = [types] if isinstance(types, str) else [t for t in types if isinstance(t, str)]
    label = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
    got = repr(instance) if not isinstance(instance, dict | list) else type(instance).__name__
    return f"must be a {label}, got {got}" + (" (quote it)" if "string" in wanted else "")
