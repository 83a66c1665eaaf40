"""Apply CustomResourceDefinitions with kubectl and wait until the API server serves them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .binaries import find_binary

FIELD_MANAGER = "falco-reporter-devcluster"


class CrdApplyError(RuntimeError):
    """kubectl refused a CRD or it never became Established; the message carries kubectl's output."""


def _kubectl(kubectl: Path, kubeconfig: Path | str, *args: str, timeout: float) -> str:
    proc = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise CrdApplyError(
            f"kubectl {' '.join(args)} failed ({proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def apply_crds(
    kubeconfig: Path | str, crd_dir: Path | str, *, timeout: float = 60.0, kubectl: Path | None = None
) -> list[str]:
    """Server-side apply every ``*.yaml``/``*.yml`` in ``crd_dir``; wait until each is Established.

    Returns the applied object names (``customresourcedefinition.apiextensions.k8s.io/NAME``). A
    missing or empty directory applies nothing.
    """
    directory = Path(crd_dir)
    files = (
        sorted(p for p in directory.glob("*.y*ml") if p.suffix in {".yaml", ".yml"})
        if directory.is_dir()
        else []
    )
    if not files:
        return []
    kubectl = kubectl or find_binary("kubectl")
    names: list[str] = []
    for path in files:
        # --force-conflicts: re-applying after someone edited a CRD by hand must still win.
        out = _kubectl(
            kubectl,
            kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={FIELD_MANAGER}",
            "-o",
            "name",
            "-f",
            str(path),
            timeout=timeout,
        )
        names += [line.strip() for line in out.splitlines() if line.strip()]
    crds = [n for n in names if n.startswith("customresourcedefinition")]
    if crds:
        _kubectl(
            kubectl,
            kubeconfig,
            "wait",
            "--for=condition=Established",
            f"--timeout={int(timeout)}s",
            *crds,
            timeout=timeout + 10,
        )
    return names
