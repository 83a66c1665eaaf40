"""Validate the snippets a report shows: Falco rules files, falco.yaml, Kubernetes manifests, commands.

Pure functions (no I/O except reading the packaged upstream names). Every mitigation snippet
goes through :func:`validate_snippet` before it reaches a report.
"""

from __future__ import annotations

from falco_reporter.validation.falco_config import validate_falco_config
from falco_reporter.validation.falco_rules import validate_rules_file
from falco_reporter.validation.kubernetes import validate_manifest
from falco_reporter.validation.result import ValidationResult, mask_placeholders
from falco_reporter.validation.shell import validate_command
from falco_reporter.validation.upstream import UpstreamNames, upstream_names
from falco_reporter.validation.yamlload import YamlError, load_all, load_one

KINDS = ("falco-exception", "kubernetes-manifest", "command", "configuration", "process")
_RULES_KEYS = frozenset({"rule", "macro", "list", "required_engine_version", "required_plugin_versions"})


def validate_snippet(
    kind: str, language: str, snippet: str, *, known: UpstreamNames | None = None
) -> ValidationResult:
    """Validate a mitigation snippet of ``kind`` (a MitigationKind) written in ``language``.

    ``known`` restricts which upstream rules/macros/lists an override may target; without it
    override targets are not checked (custom rules are fine). falco.yaml is checked with Falco's
    config schema either way.
    """
    if kind == "process":
        return ValidationResult(
            True, ("prose, nothing to validate",), (), "process", "prose, nothing to validate"
        )
    if kind == "falco-exception":
        return _with_language(_rules(snippet, known), language, "yaml")
    if kind == "kubernetes-manifest":
        return _with_language(validate_manifest(snippet), language, "yaml")
    if kind == "command":
        return _with_language(validate_command(snippet), language, "shell")
    if kind == "configuration":
        return _configuration(language, snippet, known)
    return ValidationResult.failure(
        "snippet", f"unknown mitigation kind {kind!r} (one of {', '.join(KINDS)})"
    )


def _configuration(language: str, snippet: str, known: UpstreamNames | None) -> ValidationResult:
    if language == "shell":
        return validate_command(snippet)
    if language != "yaml":
        ok = bool(snippet.strip())
        return ValidationResult.build(
            "configuration",
            ["non-empty text"] if ok else [],
            [] if ok else ["empty configuration text"],
            "text",
        )
    if looks_like_rules_file(snippet):
        return _rules(snippet, known)
    if looks_like_manifest(snippet):
        return validate_manifest(snippet, config_files=True)
    return validate_falco_config(snippet, known)


def looks_like_rules_file(text: str) -> bool:
    """A YAML list whose mappings carry rule/macro/list keys (so: a Falco rules file)."""
    try:
        doc = load_one(mask_placeholders(text)[0], yaml12=True)
    except YamlError:
        return text.lstrip().startswith("- ")
    return isinstance(doc, list) and any(isinstance(i, dict) and _RULES_KEYS & set(i) for i in doc)


def looks_like_manifest(text: str) -> bool:
    """A YAML mapping with apiVersion and kind (a Kubernetes object, e.g. a ConfigMap of rules)."""
    try:
        docs = [d for d in load_all(mask_placeholders(text)[0]) if d is not None]
    except YamlError:
        return False
    return bool(docs) and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs)


def _rules(snippet: str, known: UpstreamNames | None) -> ValidationResult:
    if known is None:
        return validate_rules_file(snippet)
    return validate_rules_file(snippet, known.rules, known.macros, known.lists)


def _with_language(result: ValidationResult, language: str, expected: str) -> ValidationResult:
    """Flag a snippet labelled with the wrong language (it would be rendered wrongly)."""
    if language == expected:
        return result
    error = f"language {language!r} does not match the snippet kind (expected {expected!r})"
    return ValidationResult(False, result.checks, (*result.errors, error), result.subject, result.detail)


__all__ = [
    "KINDS",
    "UpstreamNames",
    "ValidationResult",
    "looks_like_manifest",
    "looks_like_rules_file",
    "upstream_names",
    "validate_command",
    "validate_falco_config",
    "validate_manifest",
    "validate_rules_file",
    "validate_snippet",
]
