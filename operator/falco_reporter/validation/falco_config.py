"""falco.yaml snippets, checked with Falco's own configuration JSON schema.

``falco_config.schema.json`` is Falco's schema (what ``falco --config-schema`` prints), copied
unchanged by ``hack/gen_upstream_names.py``; its release and license are recorded in
``upstream_names.json`` under ``falco_config_schema``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from falco_reporter.validation.falco_rules import validate_rules_file
from falco_reporter.validation.k8s_schema import dotted
from falco_reporter.validation.result import ValidationResult, ini_hint, mask_placeholders, unmask
from falco_reporter.validation.upstream import UpstreamNames
from falco_reporter.validation.yamlload import YamlError, load_one

SUBJECT = "falco-config"
SCHEMA_FILE = "falco_config.schema.json"


@cache
def config_schema() -> Any:
    """A validator for Falco's config schema (draft-06, as Falco itself declares it)."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return jsonschema.Draft6Validator(json.loads(text))


def config_keys() -> tuple[str, ...]:
    """The top-level falco.yaml keys the schema knows."""
    schema = config_schema().schema
    return tuple(schema["definitions"][schema["$ref"].rsplit("/", 1)[-1]]["properties"])


def validate_falco_config(text: str, known: UpstreamNames | None = None) -> ValidationResult:
    """Validate a falco.yaml fragment with Falco's config schema (keys, sub-keys and value types).

    ``known`` supplies upstream rule names for rules files embedded in Helm values.
    """
    keys = config_keys()
    masked, mapping = mask_placeholders(text)
    try:
        doc = load_one(masked, yaml12=True)
    except YamlError as exc:
        return ValidationResult.failure(SUBJECT, f"{exc} (falco.yaml is YAML){ini_hint(text)}")
    if not isinstance(doc, dict) or not doc:
        what = "empty" if doc is None else f"a {type(doc).__name__}"
        hint = ini_hint(text) if isinstance(doc, str) else ""
        return ValidationResult.failure(
            SUBJECT, f"falco.yaml must be a YAML mapping of settings, not {what}{hint}"
        )
    checks = ["yaml parses to a mapping"]
    helm = _helm_values(doc, keys, known)
    if helm is not None:
        helm_checks, errors = helm
        detail = "Falco Helm chart values"
        checks += helm_checks
    else:
        errors = _schema_errors(doc, keys)
        detail = f"falco.yaml keys {', '.join(map(str, doc))}"
        if not errors:
            checks.append(
                f"falco.yaml keys and values match Falco's config schema: {', '.join(map(str, doc))}"
            )
    return ValidationResult.build(
        SUBJECT, checks, [unmask(e, mapping) for e in errors], unmask(detail, mapping)
    )


def _schema_errors(doc: dict[Any, Any], keys: tuple[str, ...]) -> list[str]:
    """Schema violations: unknown top-level keys (with a 'did you mean'), unknown sub-keys, wrong types."""
    errors: list[str] = []
    for error in config_schema().iter_errors(doc):
        errors += _explain(error, keys)
    return list(dict.fromkeys(errors))


def _explain(error: ValidationError, keys: tuple[str, ...]) -> list[str]:
    path, instance, schema = dotted(error.absolute_path), error.instance, error.schema
    if error.validator == "additionalProperties" and isinstance(instance, dict) and isinstance(schema, dict):
        allowed = list(schema.get("properties", {}))
        extra = [str(k) for k in instance if k not in allowed]
        if not path:
            return [f"{k!r} is not a falco.yaml key{_close(k, keys)}" for k in extra]
        return [f"{path}.{k}: unknown key (expected {', '.join(allowed)})" for k in extra]
    if error.validator == "type":
        wanted: Any = error.validator_value
        return [
            f"{path}: must be {wanted if isinstance(wanted, str) else ' or '.join(wanted)}, got {instance!r}"
        ]
    return [f"{path}: {error.message}" if path else error.message]


def _helm_values(
    doc: dict[Any, Any], keys: tuple[str, ...], known: UpstreamNames | None
) -> tuple[list[str], list[str]] | None:
    """Falco Helm chart values: falco.yaml under ``falco:``, rules files under ``customRules:``.

    None when ``doc`` is not chart values. Other chart settings are left to ``helm template``.
    """
    falco, custom = doc.get("falco"), doc.get("customRules")
    if set(map(str, doc)) <= set(keys) or not (isinstance(falco, dict) or isinstance(custom, dict)):
        return None
    checks = ["Falco Helm chart values: 'falco' checked as falco.yaml, 'customRules' as rules files"]
    errors = [f"falco.{e}" for e in _schema_errors(falco, keys)] if isinstance(falco, dict) else []
    if custom is not None and not isinstance(custom, dict):
        errors.append("customRules: must map file names to rules-file text")
    for name, rules_text in (custom if isinstance(custom, dict) else {}).items():
        if not isinstance(rules_text, str):
            errors.append(f"customRules.{name}: must be the text of a rules file")
            continue
        result = (
            validate_rules_file(rules_text)
            if known is None
            else validate_rules_file(rules_text, known.rules, known.macros, known.lists)
        )
        errors += [f"customRules.{name}: {e}" for e in result.errors]
    others = sorted(set(map(str, doc)) - {"falco", "customRules"})
    if others:
        checks.append(f"other chart values not checked: {', '.join(others)}")
    return checks, errors


def _close(key: str, keys: tuple[str, ...]) -> str:
    """A 'did you mean' for near-misses such as rules_file or http-output."""
    norm = key.replace("-", "_").replace(".", "_").lower()
    hits = [k for k in keys if k == norm or k.startswith(norm.split("_")[0] + "_")]
    return f" (did you mean {', '.join(sorted(hits)[:4])}?)" if hits else ""
