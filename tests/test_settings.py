"""One settings model: each default written once, flags and variables read through it, the chart agrees."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from falco_reporter.cli import build_parser
from falco_reporter.cli.flags import flag_name, settings_from_args
from falco_reporter.receiver.http import ReceiverSettings
from falco_reporter.receiver.ingest import IngestConfig
from falco_reporter.receiver.journal import JournalConfig
from falco_reporter.reporting.llm_config import PROVIDERS, LLMConfig
from falco_reporter.runtime import RunSettings
from falco_reporter.settings import DEFAULTS, Settings, env_name, host_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "falco_reporter"
CHART = ROOT / "helm" / "falco-reporter"
SETTINGS = set(Settings.model_fields)

#: Dataclasses that carry settings to the pieces: their field -> the setting it comes from.
CARRIERS: dict[type, dict[str, str]] = {
    ReceiverSettings: {
        "token_file": "token_file",
        "metrics_token_file": "metrics_token_file",
        "client_subjects": "tls_client_subjects",
        "max_body": "max_body",
        "request_timeout": "request_timeout",
        "tls_cert": "tls_cert",
        "tls_key": "tls_key",
        "tls_client_ca": "tls_client_ca",
    },
    IngestConfig: {"fallback_namespace": "fallback_namespace", "flush_interval": "flush_interval"},
    JournalConfig: {"max_entries": "journal_max_entries", "max_bytes": "journal_max_bytes"},
    LLMConfig: {
        f.name: "llm_timeout" if f.name == "timeout_s" else f"llm_{f.name}"
        for f in dataclasses.fields(LLMConfig)
        if f.name != "api_key"
    },
    RunSettings: {
        f.name: f.name
        for f in dataclasses.fields(RunSettings)
        if f.name not in ("receiver", "llm", "journal")
    },
}


def _is_literal(node: ast.expr | None) -> bool:
    """A default spelled out in place: a constant, or arithmetic/tuples of constants."""
    if isinstance(node, ast.Constant):
        return node.value is not None
    if isinstance(node, ast.UnaryOp):
        return _is_literal(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_literal(node.left) and _is_literal(node.right)
    if isinstance(node, ast.Tuple | ast.List):
        return all(_is_literal(e) for e in node.elts)
    return False


def _is_empty(node: ast.expr) -> bool:
    """A parameter's "not given" ("" or ()), which is no setting's default."""
    return (isinstance(node, ast.Constant) and node.value == "") or (
        isinstance(node, ast.Tuple | ast.List) and not node.elts
    )


def literal_defaults(source: str, carriers: dict[str, set[str]]) -> list[str]:
    """Every place in ``source`` that writes a setting's default as a literal.

    That is: a field of a settings carrier, a parameter or class attribute named like a setting,
    an argparse ``default=`` of a setting's flag, or an environment lookup of a setting's
    variable with a fallback. A parameter's empty default means "not given" and is allowed.
    """
    flags = {flag_name(n) for n in SETTINGS}
    variables = {env_name(n) for n in SETTINGS} | {
        env_name(n).removeprefix("FALCO_REPORTER_") for n in SETTINGS
    }
    found: list[str] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            names = SETTINGS | carriers.get(node.name, set())
            for item in node.body:
                if (
                    isinstance(item, ast.AnnAssign)
                    and isinstance(item.target, ast.Name)
                    and item.target.id in names
                    and _is_literal(item.value)
                ):
                    found.append(f"{node.name}.{item.target.id} (line {item.lineno})")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            found += [
                f"{node.name}({a.arg}=...) (line {node.lineno})"
                for a, d in pairs
                if a.arg in SETTINGS and _is_literal(d) and not _is_empty(d)
            ]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            first = node.args[0].value
            default = next((k.value for k in node.keywords if k.arg == "default"), None)
            if first in flags and _is_literal(default):
                found.append(f"add_argument({first}, default=...) (line {node.lineno})")
            if first in variables and len(node.args) > 1 and _is_literal(node.args[1]):
                found.append(f"lookup of {first} with a default (line {node.lineno})")
    return found


def test_no_setting_default_is_written_outside_the_model() -> None:
    """No module of the package spells out a setting's default: dataclasses, parameters, flags and lookups take it from the model."""
    carriers = {cls.__name__: set(fields) | {"host", "port"} for cls, fields in CARRIERS.items()}
    problems = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "settings.py"
        and (found := literal_defaults(path.read_text(encoding="utf-8"), carriers))
    }
    assert problems == {}


def test_the_scan_finds_a_second_default() -> None:
    """The scan reports a carrier field, a parameter, a flag and a variable lookup that repeat a default."""
    source = (
        "class IngestConfig:\n"
        "    flush_interval: float = 2.0\n"
        "def run(max_workers: int = 128): ...\n"
        "parser.add_argument('--max-body', default=1024 * 1024)\n"
        "os.environ.get('FALCO_REPORTER_JOURNAL_MAX_ENTRIES', '100000')\n"
    )
    assert len(literal_defaults(source, {"IngestConfig": {"flush_interval"}})) == 4


@pytest.mark.parametrize("carrier", list(CARRIERS), ids=lambda c: c.__name__)
def test_carrier_defaults_equal_the_model(carrier: type) -> None:
    """Each carrier dataclass's default is the model's default of the setting it carries."""
    defaults = {f.name: f.default for f in dataclasses.fields(carrier)}
    expected = {field: getattr(DEFAULTS, setting) for field, setting in CARRIERS[carrier].items()}
    assert {k: defaults[k] for k in expected} == expected
    if carrier is ReceiverSettings:
        assert (defaults["host"], defaults["port"]) == host_port(DEFAULTS.bind)


def test_flags_are_generated_from_the_model_with_its_defaults_in_help() -> None:
    """run takes a flag for every setting, and each flag's help names its variable and the model's default."""
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run = subcommands.choices["run"]
    by_dest = {a.dest: a for a in run._actions}
    assert set(by_dest) >= SETTINGS
    for name, info in Settings.model_fields.items():
        help_text = by_dest[name].help or ""
        assert env_name(name) in help_text, name
        if info.default not in ("", (), None, True, False):
            assert f"default {info.default}" in help_text, name
    receiver = {a.dest for a in subcommands.choices["receiver"]._actions}
    assert not any(d.startswith(("llm_", "peering", "export_")) for d in receiver)


def test_flags_beat_variables_which_beat_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Historical variable names still work (NAMESPACE, NAMESPACES, TLS_CLIENT_SUBJECTS comma-separated) and a flag overrides them."""
    monkeypatch.setenv("FALCO_REPORTER_NAMESPACE", "from-env")
    monkeypatch.setenv("FALCO_REPORTER_NAMESPACES", "shop, payments")
    monkeypatch.setenv("FALCO_REPORTER_TLS_CLIENT_SUBJECTS", "falcosidekick,CN=falco")
    monkeypatch.setenv("FALCO_REPORTER_FLUSH_INTERVAL", "7")
    parser = build_parser()
    from_env = settings_from_args(parser.parse_args(["run"]))
    assert (from_env.fallback_namespace, from_env.namespaces, from_env.flush_interval) == (
        "from-env",
        ("shop", "payments"),
        7.0,
    )
    assert from_env.tls_client_subjects == ("falcosidekick", "CN=falco")
    assert from_env.max_body == DEFAULTS.max_body
    args = [
        "run",
        "--fallback-namespace",
        "flag",
        "--namespace",
        "ops",
        "--flush-interval",
        "0.5",
        "--no-receiver",
    ]
    flagged = settings_from_args(parser.parse_args(args))
    assert (flagged.fallback_namespace, flagged.namespaces, flagged.flush_interval, flagged.receiver) == (
        "flag",
        ("ops",),
        0.5,
        False,
    )


def test_a_bad_variable_is_refused_with_its_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`receiver` exits 2 naming the variable whose value is not a number."""
    from falco_reporter.cli import main

    monkeypatch.setenv("FALCO_REPORTER_REQUEST_TIMEOUT", "soon")
    assert main(["receiver", "--bind", "127.0.0.1:1"]) == 2
    assert "FALCO_REPORTER_REQUEST_TIMEOUT='soon' is not a number" in capsys.readouterr().err


# --- the chart ----------------------------------------------------------------------------------


def _at(tree: dict[str, Any], path: str, schema: bool) -> Any:
    node = tree
    for part in path.split("."):
        node = node["properties"][part] if schema else node[part]
    return node


def _json_type(annotation: Any) -> tuple[str, tuple[Any, ...]]:
    """The JSON schema type of a field's annotation, and its enum when it has one."""
    if typing.get_origin(annotation) is Literal:
        return "string", typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple:
        return "array", ()
    return {str: "string", int: "integer", float: "number", bool: "boolean"}[annotation], ()


CHARTED = {
    name: info.json_schema_extra
    for name, info in Settings.model_fields.items()
    if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("chart")
}


def test_every_charted_setting_is_in_the_schema_and_values() -> None:
    """The chart maps its receiver, operator and llm values onto settings (the mapping is not empty or stale)."""
    assert {"flush_interval", "max_body", "journal_max_bytes", "incident_window", "llm_timeout"} <= set(
        CHARTED
    )
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for extra in CHARTED.values():
        _at(schema, str(extra["chart"]), schema=True)
        _at(values, str(extra["chart"]), schema=False)


@pytest.mark.parametrize("name", sorted(CHARTED))
def test_chart_schema_and_settings_agree(name: str) -> None:
    """A chart value that maps onto a setting has the setting's type, enum and default in values.schema.json and values.yaml."""
    info = Settings.model_fields[name]
    extra = CHARTED[name]
    path = str(extra["chart"])
    node = _at(json.loads((CHART / "values.schema.json").read_text()), path, schema=True)
    json_type, enum = _json_type(info.annotation)
    assert node["type"] == json_type, path
    if enum:
        assert tuple(node["enum"]) == enum, path
    if name == "llm_provider":
        assert tuple(node["enum"]) == PROVIDERS
    default = extra.get("chart_default", info.default)
    assert "default" in node, f"{path} has no default in values.schema.json"
    assert node["default"] == (list(default) if isinstance(default, tuple) else default), path
    value = _at(yaml.safe_load((CHART / "values.yaml").read_text()), path, schema=False)
    assert value == node["default"], f"values.yaml {path}"
