"""Locate the control-plane binaries built by ``make cluster-bins``."""

from __future__ import annotations

import os
from pathlib import Path

# devcluster/binaries.py -> the repository root is one level up.
REPO_ROOT = Path(__file__).resolve().parents[1]

# envtest's asset directory counts only when it holds the two binaries a cluster needs.
_ASSET_CORE = ("etcd", "kube-apiserver")


class BinaryNotFoundError(FileNotFoundError):
    """A control-plane binary is missing; the message says how to get it."""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def search_dirs() -> list[Path]:
    """Directories searched, in order: ``$KUBEBUILDER_ASSETS`` (if complete), then the bin dir."""
    dirs: list[Path] = []
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and all(_executable(Path(assets) / name) for name in _ASSET_CORE):
        dirs.append(Path(assets))
    dirs.append(Path(os.environ.get("FALCO_REPORTER_BIN_DIR") or REPO_ROOT / "bin"))
    return dirs


def optional_binary(name: str) -> Path | None:
    """Path of ``name`` in the search dirs, or None."""
    for directory in search_dirs():
        if _executable(directory / name):
            return directory / name
    return None


def find_binary(name: str) -> Path:
    """Path of ``name`` in the search dirs; raises BinaryNotFoundError if absent."""
    found = optional_binary(name)
    if found is None:
        where = ", ".join(str(d) for d in search_dirs())
        raise BinaryNotFoundError(
            f"{name} not found in {where}. Run `make cluster-bins` (builds etcd, kube-apiserver, kubectl and "
            f"kube-controller-manager into bin/), or point KUBEBUILDER_ASSETS or FALCO_REPORTER_BIN_DIR at a "
            f"directory that holds them."
        )
    return found
