"""The import-linter contracts keep up with the package as modules are added."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "falco_reporter"


def _contract(name_start: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_start))


def test_every_reporting_module_outside_the_chain_is_barred_from_langchain():
    """Each reporting module except the chain package is a source of the LangChain contract."""
    sources = set(_contract("Only the reporting chain package")["source_modules"])
    modules = {
        f"falco_reporter.reporting.{p.stem}"
        for p in (PACKAGE / "reporting").glob("*.py")
        if p.stem != "__init__"
    }
    assert modules - sources == set()


def test_every_top_level_package_except_the_owner_is_barred():
    """Each top-level module of falco_reporter except its owner is a source of the client contracts."""
    top = {
        f"falco_reporter.{p.stem}"
        for p in PACKAGE.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
    }
    kube_sources = set(_contract("Only the kube layer")["source_modules"])
    assert top - kube_sources == {"falco_reporter.kube"}
    chain_sources = {
        m
        for m in _contract("Only the reporting chain package")["source_modules"]
        if not m.startswith("falco_reporter.reporting.")
    }
    assert top - chain_sources == {"falco_reporter.reporting"}
    http_sources = set(_contract("Only the receiver imports")["source_modules"])
    assert top - http_sources == {"falco_reporter.receiver"}
