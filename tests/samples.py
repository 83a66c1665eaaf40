"""The real Falco alert payloads shipped in tests/data/real (see its SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path

REAL_DIR = Path(__file__).parent / "data" / "real"
REAL_SAMPLES = sorted(REAL_DIR.glob("*.json"))


def in_namespace(path: Path, namespace: str) -> bytes:
    """The real payload, with the namespace it names (pod's or audit target's), if any, set to ``namespace``."""
    alert = json.loads(path.read_text())
    fields = alert.get("output_fields") or {}
    for key in ("k8s.ns.name", "ka.target.namespace"):
        if fields.get(key):
            fields[key] = namespace
    return json.dumps(alert).encode()
