"""falco.yaml snippets: a YAML mapping whose keys are real falco.yaml keys."""

from __future__ import annotations

from typing import Any

from falco_reporter.validation.falco_rules import validate_rules_file
from falco_reporter.validation.result import ValidationResult, ini_hint, mask_placeholders, unmask
from falco_reporter.validation.upstream import UpstreamNames, upstream_names
from falco_reporter.validation.yamlload import YamlError, load_one

SUBJECT = "falco-config"


def validate_falco_config(text: str, known: UpstreamNames | None = None) -> ValidationResult:
    """Validate a falco.yaml fragment against the known top-level keys and their sub-keys."""
    keys = (known or upstream_names()).config_keys
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
        errors = _key_errors(doc, keys)
        detail = f"falco.yaml keys {', '.join(map(str, doc))}"
        if not errors:
            checks.append(f"falco.yaml keys known: {', '.join(map(str, doc))}")
    return ValidationResult.build(
        SUBJECT, checks, [unmask(e, mapping) for e in errors], unmask(detail, mapping)
    )


def _key_errors(doc: dict[Any, Any], keys: dict[str, tuple[str, ...]]) -> list[str]:
    """Unknown top-level keys, and unknown sub-keys of object-valued settings."""
    errors: list[str] = []
    for key, value in doc.items():
        if key not in keys:
            errors.append(f"{key!r} is not a falco.yaml key{_close(str(key), keys)}")
        elif keys[key]:
            errors += _sub_keys(str(key), value, keys[key])
    return errors


def _helm_values(
    doc: dict[Any, Any], keys: dict[str, tuple[str, ...]], known: UpstreamNames | None
) -> tuple[list[str], list[str]] | None:
    """Falco Helm chart values: falco.yaml under ``falco:``, rules files under ``customRules:``.

    None when ``doc`` is not chart values. Other chart settings are left to ``helm template``.
    """
    falco, custom = doc.get("falco"), doc.get("customRules")
    if set(map(str, doc)) <= set(keys) or not (isinstance(falco, dict) or isinstance(custom, dict)):
        return None
    checks = ["Falco Helm chart values: 'falco' checked as falco.yaml, 'customRules' as rules files"]
    errors = [f"falco.{e}" for e in _key_errors(falco, keys)] if isinstance(falco, dict) else []
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


def _sub_keys(key: str, value: Any, allowed: tuple[str, ...]) -> list[str]:
    """Check the keys of a mapping value, or of each mapping in a list value."""
    entries = [value] if isinstance(value, dict) else value if isinstance(value, list) else []
    errors: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            errors.append(f"{key}: expected a mapping with keys {', '.join(allowed)}, got {entry!r}")
            continue
        errors += [
            f"{key}.{sub}: unknown key (expected {', '.join(allowed)})" for sub in entry if sub not in allowed
        ]
    if not entries and value is not None:
        errors.append(f"{key}: expected a mapping with keys {', '.join(allowed)}, got {value!r}")
    return errors


def _close(key: str, keys: dict[str, tuple[str, ...]]) -> str:
    """A 'did you mean' for near-misses such as rules_file or http-output."""
    norm = key.replace("-", "_").replace(".", "_").lower()
    hits = [k for k in keys if k == norm or k.startswith(norm.split("_")[0] + "_")]
    return f" (did you mean {', '.join(sorted(hits)[:4])}?)" if hits else ""
