"""The real Falco alert payloads shipped in tests/data/real (see its SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

REAL_DIR = Path(__file__).parent / "data" / "real"
REAL_SAMPLES = sorted(REAL_DIR.glob("*.json"))
