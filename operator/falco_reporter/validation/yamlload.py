"""YAML loading that matches what Falco and Kubernetes will actually read."""

from __future__ import annotations

import re
from typing import Any

import yaml

_VALUE_TAG = "tag:yaml.org,2002:value"
_BOOL_TAG = "tag:yaml.org,2002:bool"


class YamlError(ValueError):
    """The text is not YAML (message says where)."""


# libyaml's parser where PyYAML was built with it (the wheels are): about 10x faster, and
# validating every snippet of every report is a measurable share of the operator's CPU.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that rejects duplicate keys and reads a bare ``=`` as a string.

    Duplicate keys silently shadow each other (a second ``condition:`` wins), and ``=`` is a
    YAML 1.1 "value" scalar PyYAML cannot construct although Falco's docs write
    ``comps: [=, =]`` and yaml-cpp reads it as the string "=".
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"unhashable mapping key {key!r}", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _construct_str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_StrictLoader.add_constructor(_VALUE_TAG, _construct_str)


class _Yaml12Loader(_StrictLoader):
    """Only true/false are booleans, as in yaml-cpp (Falco): ``yes``/``on`` stay strings."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != _BOOL_TAG]
    for first, resolvers in _StrictLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_all(text: str, *, yaml12: bool = False) -> list[Any]:
    """All documents of ``text``; raise YamlError with a one-line reason."""
    loader = _Yaml12Loader if yaml12 else _StrictLoader
    try:
        return list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlError(f"not valid YAML: {problem}{where}") from None


def load_one(text: str, *, yaml12: bool = False) -> Any:
    """The single document of ``text`` (None when empty); more than one is an error."""
    docs = load_all(text, yaml12=yaml12)
    if len(docs) > 1:
        raise YamlError(f"expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None
