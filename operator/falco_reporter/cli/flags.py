"""argparse flags generated from :class:`~falco_reporter.settings.Settings`.

Every generated flag defaults to "not given" (``SUPPRESS``), so the order is flag, then
``FALCO_REPORTER_*`` variable, then the model's default; ``--help`` shows that default and the
variable, both read from the model.
"""

from __future__ import annotations

import argparse
import os
import types
import typing
from typing import Any, Literal

from pydantic.fields import FieldInfo

from falco_reporter.settings import Settings, env_name

_GROUP_TITLES = {
    "common": "",
    "receiver": "receiver",
    "operator": "operator",
    "llm": "LLM writer (default: the built-in writer only)",
}


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def flag_name(name: str) -> str:
    """The command-line flag of setting ``name``."""
    return str(_extra(Settings.model_fields[name]).get("flag") or "--" + name.replace("_", "-"))


def fields_of(group: str) -> list[str]:
    return [n for n, info in Settings.model_fields.items() if _extra(info).get("group") == group]


def _shown(value: Any) -> str:
    if value in ("", (), None):
        return ""
    if isinstance(value, bool):
        return f"; default {'on' if value else 'off'}"
    return f"; default {value}"


def _add(target: Any, name: str) -> None:
    info = Settings.model_fields[name]
    help_text = f"{info.description} (env {env_name(name)}{_shown(info.default)})".replace("%", "%%")
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # str | None
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if annotation is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(annotation) is tuple:
        kwargs["action"] = "append"
    elif typing.get_origin(annotation) is Literal:
        kwargs["choices"] = typing.get_args(annotation)
    elif annotation in (int, float):
        kwargs["type"] = annotation
    target.add_argument(flag_name(name), **kwargs)


def add_setting_flags(parser: argparse.ArgumentParser, *groups: str, skip: tuple[str, ...] = ()) -> None:
    """One flag per setting of ``groups`` (in the model's order), minus ``skip``."""
    for group in groups:
        title = _GROUP_TITLES[group]
        target = parser.add_argument_group(title) if title else parser
        for name in fields_of(group):
            if name not in skip:
                _add(target, name)


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The flags that were given, over the environment, over the defaults."""
    given = {k: v for k, v in vars(args).items() if k in Settings.model_fields}
    return Settings.from_env(os.environ, **given, **overrides)
