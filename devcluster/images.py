"""Images for the local node built without a registry or a Docker engine.

A one-layer image is written as a ``docker save`` archive (manifest.json, config, layer tar) that
``ctr images import`` understands. Used for the pause image every pod sandbox runs, and for small
test workloads that run the same static binary.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PAUSE_IMAGE = "localhost/falco-reporter/pause:1"


@dataclass(frozen=True)
class LocalImage:
    """An image archive on disk and the name it is imported under."""

    name: str
    archive: Path


def _layer(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A deterministic tar of ``path -> (content, mode)`` (fixed owner and mtime)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def one_layer_image(
    name: str, files: dict[str, tuple[bytes, int]], entrypoint: list[str], out: Path
) -> LocalImage:
    """Write ``out`` as a docker-save archive of a one-layer linux/amd64 image called ``name``."""
    layer = _layer(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "falco-reporter devcluster"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.split(":", 1)[1] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [name], "Layers": [layer_name]}]).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w") as tar:
        for member, data in ((layer_name, layer), (config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return LocalImage(name, out)


def pause_image(binary: Path, directory: Path, name: str = PAUSE_IMAGE) -> LocalImage:
    """The sandbox image: our static pause program as its only file."""
    return one_layer_image(name, {"pause": (binary.read_bytes(), 0o755)}, ["/pause"], directory / "pause.tar")


def import_image(ctr: Callable[..., subprocess.CompletedProcess[str]], image: LocalImage) -> None:
    """Import ``image`` into the node's containerd (CRI namespace) and fail loudly if that fails."""
    out = ctr("images", "import", str(image.archive))
    if out.returncode != 0:
        raise RuntimeError(f"ctr images import {image.archive} failed: {out.stderr.strip()}")
