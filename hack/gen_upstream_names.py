"""Regenerate operator/falco_reporter/validation/upstream_names.json from upstream Falco material.

Usage: python hack/gen_upstream_names.py [FALCO_UPSTREAM_DIR]   (default: $FALCO_UPSTREAM_DIR,
else ../shared/falco). Reads rules/*.yaml, rules/plugins/**/*.yaml and
schema/falco-config.schema.json and writes names only (rules, macros, lists, falco.yaml keys),
never descriptions or conditions. tests/test_validation_upstream.py fails when the file is stale.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "operator" / "falco_reporter" / "validation" / "upstream_names.json"


def rules_files(upstream: Path) -> list[Path]:
    """The upstream rules files: the falcosecurity/rules files plus plugin rules."""
    return sorted((upstream / "rules").glob("*.yaml")) + sorted(
        (upstream / "rules" / "plugins").rglob("*.yaml")
    )


def config_keys(schema: dict[str, Any]) -> dict[str, list[str]]:
    """falco.yaml top-level keys -> the sub-keys of object (or array-of-object) values."""
    defs = schema["definitions"]
    root = defs[schema["$ref"].rsplit("/", 1)[-1]]
    out: dict[str, list[str]] = {}
    for key, prop in root["properties"].items():
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        target = defs[ref.rsplit("/", 1)[-1]] if ref else prop
        out[key] = sorted(target.get("properties", {}))
    return dict(sorted(out.items()))


def collect(upstream: Path) -> dict[str, Any]:
    """Everything upstream_names.json holds."""
    names: dict[str, set[str]] = {"rule": set(), "macro": set(), "list": set()}
    for path in rules_files(upstream):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            for kind, found in names.items():
                if isinstance(item, dict) and kind in item:
                    found.add(str(item[kind]))
    schema = json.loads((upstream / "schema" / "falco-config.schema.json").read_text(encoding="utf-8"))
    return {
        "generated_by": "hack/gen_upstream_names.py",
        "sources": [str(p.relative_to(upstream)) for p in rules_files(upstream)]
        + ["schema/falco-config.schema.json"],
        "rules": sorted(names["rule"]),
        "macros": sorted(names["macro"]),
        "lists": sorted(names["list"]),
        "falco_config_keys": config_keys(schema),
    }


def main() -> None:
    """Write the JSON file."""
    default = os.environ.get("FALCO_UPSTREAM_DIR") or str(ROOT.parent / "shared" / "falco")
    upstream = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    OUT.write_text(json.dumps(collect(upstream), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
