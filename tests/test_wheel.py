"""The wheel holds the operator package only: no devcluster, tests, bench or hack modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _clean_checkout(dest: Path) -> Path:
    """The tracked files of the working tree, without build/ or egg-info leftovers of earlier builds."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():  # deleted but not yet committed files are listed too
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name.decode())
    return dest


@pytest.mark.slow
def test_wheel_has_no_test_infrastructure(tmp_path: Path) -> None:
    """`pip wheel --no-deps .` of a clean checkout yields falco_reporter and its metadata, nothing from devcluster, tests, bench or hack."""
    source = _clean_checkout(tmp_path / "src")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("falco_reporter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"falco_reporter/settings.py", "falco_reporter/cli/__main__.py"} <= set(names)
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"falco_reporter"}
    assert [n for n in names if any(p in n for p in ("devcluster", "conftest", "/tests/", "bench/"))] == []
