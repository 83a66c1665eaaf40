"""Cross-checks of the validators against upstream Falco material (rules files and JSON schemas).

Reads the upstream snapshot from $FALCO_UPSTREAM_DIR (CI: ../shared/falco); skipped when unset.
"""

from __future__ import annotations

import importlib.util
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from falco_reporter.validation import upstream_names, validate_falco_config, validate_rules_file
from falco_reporter.validation.falco_config import config_keys
from falco_reporter.validation.upstream import DATA_FILE
from falco_reporter.validation.yamlload import YamlError, load_all

_DIR = os.environ.get("FALCO_UPSTREAM_DIR", "")
if not _DIR:
    pytest.skip(
        "FALCO_UPSTREAM_DIR is not set: it must point at the upstream Falco snapshot (rules/, schema/), "
        "e.g. FALCO_UPSTREAM_DIR=../shared/falco",
        allow_module_level=True,
    )
UPSTREAM = Path(_DIR)
ROOT = Path(__file__).resolve().parent.parent
RULES_FILES = sorted((UPSTREAM / "rules").glob("*.yaml")) + sorted(
    (UPSTREAM / "rules" / "plugins").rglob("*.yaml")
)
jsonschema = pytest.importorskip("jsonschema")


def test_upstream_snapshot_is_where_the_variable_says():
    """A set but wrong FALCO_UPSTREAM_DIR fails loudly instead of testing nothing."""
    assert (UPSTREAM / "schema" / "falco-rules.schema.json").is_file()
    assert (UPSTREAM / "rules" / "falco_rules.yaml").is_file()
    assert any("plugins" in p.parts for p in RULES_FILES), "plugin rules (k8saudit) are missing"


# --- (a) every upstream item validates ------------------------------------------------------------


@pytest.mark.parametrize("path", RULES_FILES, ids=lambda p: p.name)
def test_every_upstream_rules_file_item_validates(path):
    """Every item of every upstream rules file passes our validator (also with upstream names known)."""
    text = path.read_text(encoding="utf-8")
    items = [i for doc in load_all(text, yaml12=True) for i in doc]
    names = upstream_names()
    for result in (
        validate_rules_file(text),
        validate_rules_file(text, names.rules, names.macros, names.lists),
    ):
        assert result.ok, "\n".join(result.errors[:20])
        assert f"yaml parses to a list of {len(items)} item(s)" in result.checks


# --- (b) accept/reject verdicts agree with Falco's rules JSON schema ---------------------------------


@pytest.fixture(scope="module")
def rules_schema() -> Any:
    """A validator for Falco's embedded rules-file JSON schema (draft-06)."""
    schema = json.loads((UPSTREAM / "schema" / "falco-rules.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft6Validator(schema)


def schema_accepts(validator: Any, text: str) -> bool:
    """Whether the schema accepts the rules file, read the way our validator (and yaml-cpp) reads it."""
    try:
        docs = load_all(text, yaml12=True)
    except YamlError:  # e.g. duplicate keys, which a plain YAML reader silently collapses
        docs = list(yaml.safe_load_all(text))
    return all(validator.is_valid(doc) for doc in docs if doc is not None)


def snippet(text: str) -> str:
    """Dedented snippet text."""
    return textwrap.dedent(text).strip() + "\n"


BASE_RULE = """
- rule: Curl in container
  desc: curl ran inside a container
  condition: evt.type = execve and proc.name = curl and container.id != host
  output: curl ran (cmd=%proc.cmdline container=%container.id)
  priority: NOTICE
"""
APPEND_EXCEPTION = """
- rule: Terminal shell in container
  exceptions:
    - name: ci_debug_shells
      fields: [k8s.ns.name, proc.pname]
      comps: [=, in]
      values:
        - [ci, [runner, buildkitd]]
  override:
    exceptions: append
"""

# Both accept.
AGREE_VALID = {
    "new-rule": BASE_RULE,
    "append-exception-with-fields": APPEND_EXCEPTION,
    "list-override": "- list: shell_binaries\n  items: [fish, 42]\n  override: {items: append}",
    "macro-override": "- macro: spawned_process\n  condition: or evt.type = execveat\n  override: {condition: append}",
    "disable-override": "- rule: Curl in container\n  enabled: false\n  override: {enabled: replace}",
    "requirements": "- required_engine_version: 0.57.0\n- required_plugin_versions: [{name: container, version: 0.4.0}]",
    "capture": BASE_RULE.rstrip() + "\n  capture: true\n  capture_duration: 5000\n",
}
# Both reject.
AGREE_INVALID = {
    "alert-pseudo-rule": "- alert: Shell\n  expr: proc.name = bash",
    "unknown-rule-key": BASE_RULE.rstrip() + "\n  severity: high\n",
    "bad-priority": BASE_RULE.replace("NOTICE", "SEVERE"),
    "bad-override-op": "- list: shell_binaries\n  items: [fish]\n  override: {items: merge}",
    "unknown-override-key": "- list: shell_binaries\n  items: [fish]\n  override: {values: append}",
    "empty-override": "- list: shell_binaries\n  items: [fish]\n  override: {}",
    "enabled-as-string": "- rule: Curl in container\n  enabled: 'no'\n  override: {enabled: replace}",
    "exception-without-name": APPEND_EXCEPTION.replace("- name: ci_debug_shells\n      ", "- "),
    "exception-unknown-key": APPEND_EXCEPTION.replace("comps:", "operators:"),
    "items-not-a-list": "- list: shell_binaries\n  items: fish",
    "items-with-mapping": "- list: shell_binaries\n  items: [{a: b}]",
    "tags-not-a-list": BASE_RULE.rstrip() + "\n  tags: network\n",
    "plugin-without-version": "- required_plugin_versions: [{name: container}]",
    "ini-as-yaml-string": "json_output = true\nhttp_output.enabled = true\n",
    "top-level-mapping": "json_output: true\n",
}
# We reject what the schema lets through; each reason is a Falco loader rule the schema cannot express.
STRICTER = {
    "new-exception-without-fields": (
        APPEND_EXCEPTION.replace("      fields: [k8s.ns.name, proc.pname]\n      comps: [=, in]\n", ""),
        "fields are required",
    ),
    "override-key-not-in-item": (
        "- rule: Curl in container\n  condition: and not user.name = root\n  override: {condition: append, output: append}",
        "override names 'output'",
    ),
    "item-key-not-in-override": (
        "- rule: Curl in container\n  condition: and not user.name = root\n  priority: ERROR\n  override: {condition: append}",
        "not named under override",
    ),
    "priority-append": ("- rule: Curl in container\n  priority: ERROR\n  override: {priority: append}", "cannot be appended"),
    "append-with-override": (
        "- list: shell_binaries\n  append: true\n  items: [fish]\n  override: {items: append}",
        "cannot be used together",
    ),
    "new-rule-missing-output": (BASE_RULE.replace("  output: curl ran (cmd=%proc.cmdline container=%container.id)\n", ""),
                                "missing output"),
    "two-item-kinds": ("- rule: X\n  macro: y\n  condition: a = b", "has several of"),
    "comps-length": (APPEND_EXCEPTION.replace("comps: [=, in]", "comps: [=]"), "1 comps for 2 fields"),
    "values-length": (APPEND_EXCEPTION.replace("- [ci, [runner, buildkitd]]", "- [ci]"), "1 values for 2 fields"),
    "bad-operator": (APPEND_EXCEPTION.replace("comps: [=, in]", "comps: [=, like]"), "['like']"),
    "bad-field": (APPEND_EXCEPTION.replace("proc.pname", "parent"), "not a Falco field name"),
    "empty-value": (APPEND_EXCEPTION.replace("[ci, [runner", '["", [runner'), "empty value"),
    "unbalanced-condition": ("- macro: m\n  condition: (proc.name = a", "unbalanced parentheses"),
    "appended-condition-without-operator": (
        "- macro: spawned_process\n  condition: evt.type = execveat\n  override: {condition: append}", "must start with"),
    "macro-name": ("- macro: my-macro\n  condition: proc.name = a", "invalid macro name"),
    "engine-version-not-semver": ("- required_engine_version: latest", "not a semver"),
    "duplicate-keys": ("- macro: m\n  condition: proc.name = a\n  condition: proc.name = b", "duplicate key"),
}  # fmt: skip
# We accept what the schema rejects, because Falco's loader accepts it.
LOOSER = {
    "lower-case-priority": (
        BASE_RULE.replace("NOTICE", "notice"),
        "the loader parses priorities case-insensitively",
    ),
    "integer-engine-version": (
        "- required_engine_version: 15",
        "legacy integer versions (k8s_audit_rules.yaml uses 15)",
    ),
}


@pytest.mark.parametrize("text", AGREE_VALID.values(), ids=AGREE_VALID.keys())
def test_schema_and_validator_both_accept(rules_schema, text):
    """Snippets the JSON schema accepts are accepted by our validator too."""
    assert schema_accepts(rules_schema, snippet(text))
    result = validate_rules_file(snippet(text))
    assert result.ok, result.errors


@pytest.mark.parametrize("text", AGREE_INVALID.values(), ids=AGREE_INVALID.keys())
def test_schema_and_validator_both_reject(rules_schema, text):
    """Snippets the JSON schema rejects are rejected by our validator too."""
    assert not schema_accepts(rules_schema, snippet(text))
    assert not validate_rules_file(snippet(text)).ok


@pytest.mark.parametrize(("text", "reason"), STRICTER.values(), ids=STRICTER.keys())
def test_validator_is_deliberately_stricter_than_the_schema(rules_schema, text, reason):
    """Where the schema is looser than Falco's loader, the schema accepts and we reject, for a stated reason."""
    assert schema_accepts(rules_schema, snippet(text)), (
        "the schema now rejects this: move it to AGREE_INVALID"
    )
    result = validate_rules_file(snippet(text))
    assert not result.ok
    assert reason in "\n".join(result.errors)


@pytest.mark.parametrize(("text", "why"), LOOSER.values(), ids=LOOSER.keys())
def test_validator_is_deliberately_looser_than_the_schema(rules_schema, text, why):
    """Where Falco's loader accepts what the schema rejects, we follow the loader."""
    assert not schema_accepts(rules_schema, snippet(text)), f"the schema now accepts this ({why})"
    assert validate_rules_file(snippet(text)).ok, why


def test_upstream_files_agree_with_the_schema_except_known_divergence(rules_schema):
    """Upstream files pass the schema too, except the k8saudit file's integer engine version we accept."""
    failing = {p.name for p in RULES_FILES if not schema_accepts(rules_schema, p.read_text(encoding="utf-8"))}
    assert failing <= {"k8s_audit_rules.yaml"}


# --- (c) the shipped upstream names are not stale -------------------------------------------------


def _names_in(kind: str) -> list[str]:
    found = {
        str(item[kind])
        for path in RULES_FILES
        for doc in load_all(path.read_text(encoding="utf-8"), yaml12=True)
        for item in doc or []
        if isinstance(item, dict) and kind in item
    }
    return sorted(found)


def test_upstream_names_json_matches_the_upstream_rules_files():
    """upstream_names.json lists exactly the rule, macro and list names the upstream files define."""
    shipped = json.loads((ROOT / "operator" / "falco_reporter" / "validation" / DATA_FILE).read_text())
    assert shipped["rules"] == _names_in("rule")
    assert shipped["macros"] == _names_in("macro")
    assert shipped["lists"] == _names_in("list")
    assert len(shipped["rules"]) > 100


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "gen_upstream_names", ROOT / "hack" / "gen_upstream_names.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_config_schema_is_falcos_and_accepts_every_key():
    """The packaged config schema is Falco's structure without its prose, and knows every top-level key."""
    shipped = ROOT / "operator" / "falco_reporter" / "validation" / "falco_config.schema.json"
    module = _generator()
    assert shipped.read_text(encoding="utf-8") == module.config_schema(UPSTREAM)
    schema = json.loads(shipped.read_text(encoding="utf-8"))
    assert '"description"' not in shipped.read_text(encoding="utf-8")
    top = schema["definitions"][schema["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert set(config_keys()) == set(top)
    result = validate_falco_config("".join(f"{key}: {{}}\n" for key in sorted(top)))
    assert not [e for e in result.errors if "is not a falco.yaml key" in e]
    assert validate_falco_config("json_output: true\nwatch_config_files: false\n").ok


def test_generator_reproduces_the_shipped_file():
    """hack/gen_upstream_names.py regenerates upstream_names.json byte for byte."""
    module = _generator()
    shipped = (ROOT / "operator" / "falco_reporter" / "validation" / DATA_FILE).read_text(encoding="utf-8")
    assert json.dumps(module.collect(UPSTREAM), indent=1) + "\n" == shipped, (
        "run: python hack/gen_upstream_names.py"
    )
    assert module.schema_provenance(UPSTREAM)["release"] == "0.44.1"
