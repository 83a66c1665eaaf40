"""Readiness (/readyz without a journal) follows the API server: ready while it answers, not while it is away."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from falco_reporter import runtime
from falco_reporter.kube.client import connect
from falco_reporter.kube.objects import KubeObjects
from tests.operator_proc import FalcoReporterProcess, free_port

pytestmark = pytest.mark.cluster


def _dead_kubeconfig(kubeconfig: Path, tmp_path: Path) -> Path:
    """The session's kubeconfig aimed at a loopback port where nothing listens."""
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    return dead


async def test_probe_is_ready_with_a_missing_namespace_and_not_without_the_api_server(
    kubeconfig: Path, tmp_path: Path
) -> None:
    """The probe answers True against the live API server (even for a namespace that does not exist) and False when it is unreachable."""
    settings = runtime.RunSettings(fallback_namespace="no-such-namespace-here")
    live = runtime.ready_probe(KubeObjects(connect(str(kubeconfig))), settings)
    assert await live() is True
    dead = runtime.ready_probe(KubeObjects(connect(str(_dead_kubeconfig(kubeconfig, tmp_path)))), settings)
    assert await dead() is False


def _readyz(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_receiver_readyz_follows_the_api_server(kubeconfig: Path, tmp_path: Path) -> None:
    """A real receiver answers /readyz 200 with the API server and 503 with a kubeconfig whose server is gone."""
    with FalcoReporterProcess(str(kubeconfig), mode="receiver", log_dir=tmp_path) as live:
        assert _readyz(live.url) == 200
    dead = _dead_kubeconfig(kubeconfig, tmp_path)
    with FalcoReporterProcess(str(dead), mode="receiver", log_dir=tmp_path) as away:
        assert _readyz(away.url) == 503
