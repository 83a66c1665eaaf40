"""Regenerate operator/falco_reporter/validation/upstream_names.json from upstream Falco material.

Usage: python hack/gen_upstream_names.py [FALCO_UPSTREAM_DIR]   (default: $FALCO_UPSTREAM_DIR,
else ../shared/falco). Reads rules/*.yaml and rules/plugins/**/*.yaml and writes names only (rules, macros, lists), never
descriptions or conditions. Reduces Falco's config schema (schema/falco-config.schema.json) to its
structure (key names, types, enums, bounds, required keys; no titles or descriptions) in
falco_config.schema.json and records its release and license, read from schema/SOURCE.txt.
tests/test_validation_upstream.py fails when either file is stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "operator" / "falco_reporter" / "validation" / "upstream_names.json"
CONFIG_SCHEMA = "schema/falco-config.schema.json"
CONFIG_SCHEMA_OUT = OUT.with_name("falco_config.schema.json")


def rules_files(upstream: Path) -> list[Path]:
    """The upstream rules files: the falcosecurity/rules files plus plugin rules."""
    return sorted((upstream / "rules").glob("*.yaml")) + sorted(
        (upstream / "rules" / "plugins").rglob("*.yaml")
    )


def schema_provenance(upstream: Path) -> dict[str, str]:
    """Where the config schema comes from: repository, license, release tag and commit (schema/SOURCE.txt)."""
    source = (upstream / "schema" / "SOURCE.txt").read_text(encoding="utf-8")
    repo = re.search(r"^Upstream: (\S+)\s+\(([^)]+)\)", source, re.MULTILINE)
    tag = re.search(r"^Release tag: (\S+)\s+\(commit (\w+)", source, re.MULTILINE)
    if repo is None or tag is None:
        raise SystemExit(f"{upstream}/schema/SOURCE.txt does not name the upstream repository and release")
    return {
        "file": CONFIG_SCHEMA_OUT.name,
        "upstream": repo.group(1),
        "license": repo.group(2),
        "release": tag.group(1),
        "commit": tag.group(2),
        "how": "falco --config-schema (userspace/falco/config_json_schema.h), reduced to structure",
        "sha256": hashlib.sha256((upstream / CONFIG_SCHEMA).read_bytes()).hexdigest(),
    }


# Schema keywords that hold prose, not structure: dropped, so only facts (names, types) are shipped.
PROSE = frozenset({"title", "description", "$comment", "examples", "markdownDescription"})


def structure(node: Any) -> Any:
    """The schema without its prose; names under properties/definitions are kept as names."""
    if isinstance(node, list):
        return [structure(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in PROSE:
            continue
        if key in ("properties", "definitions", "patternProperties") and isinstance(value, dict):
            out[key] = {name: structure(sub) for name, sub in value.items()}
        else:
            out[key] = structure(value)
    return out


def config_schema(upstream: Path) -> str:
    """The shipped form of Falco's config schema."""
    raw = json.loads((upstream / CONFIG_SCHEMA).read_text(encoding="utf-8"))
    return json.dumps(structure(raw), indent=1, sort_keys=True) + "\n"


def collect(upstream: Path) -> dict[str, Any]:
    """Everything upstream_names.json holds."""
    names: dict[str, set[str]] = {"rule": set(), "macro": set(), "list": set()}
    for path in rules_files(upstream):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            for kind, found in names.items():
                if isinstance(item, dict) and kind in item:
                    found.add(str(item[kind]))
    return {
        "generated_by": "hack/gen_upstream_names.py",
        "sources": [str(p.relative_to(upstream)) for p in rules_files(upstream)] + [CONFIG_SCHEMA],
        "rules": sorted(names["rule"]),
        "macros": sorted(names["macro"]),
        "lists": sorted(names["list"]),
        "falco_config_schema": schema_provenance(upstream),
    }


def main() -> None:
    """Write the JSON file."""
    default = os.environ.get("FALCO_UPSTREAM_DIR") or str(ROOT.parent / "shared" / "falco")
    upstream = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    OUT.write_text(json.dumps(collect(upstream), indent=1) + "\n", encoding="utf-8")
    CONFIG_SCHEMA_OUT.write_text(config_schema(upstream), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} and {CONFIG_SCHEMA_OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
