"""The async kube layer against the real API server: error translation, preconditions, no thread hops."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from falco_reporter.kube.client import connect
from falco_reporter.kube.errors import KubeConflict, KubeNotFound, KubeUnavailable
from falco_reporter.kube.objects import KubeObjects
from falco_reporter.kube.resources import CustomResources, add_repeats
from falco_reporter.models.falco import normalise, object_name, parse_alert_body
from falco_reporter.models.resources import FALCOALERTS
from falco_reporter.receiver.ingest import alert_object
from tests.samples import REAL_SAMPLES

pytestmark = pytest.mark.cluster


def _alert(namespace: str) -> tuple[str, dict[str, Any]]:
    spec = normalise(parse_alert_body(REAL_SAMPLES[0].read_bytes()))
    name = object_name(spec)
    return name, alert_object(namespace, name, spec)


async def test_create_get_patch_and_the_translated_errors(kubeconfig: Path, namespace: str) -> None:
    """A second create is KubeConflict (done already), a stale resourceVersion too, a missing object KubeNotFound."""
    kube = connect(str(kubeconfig))
    alerts = CustomResources(kube, FALCOALERTS)
    try:
        name, body = _alert(namespace)
        created = await alerts.create(namespace, body)
        with pytest.raises(KubeConflict):
            await alerts.create(namespace, body)
        assert (await alerts.get(namespace, name))["metadata"]["uid"] == created["metadata"]["uid"]
        assert await alerts.find(namespace, "no-such-alert") is None
        with pytest.raises(KubeNotFound):
            await alerts.get(namespace, "no-such-alert")
        stale = {"metadata": {"resourceVersion": "1"}, "status": {"occurrences": {"count": 5}}}
        with pytest.raises(KubeConflict):
            await alerts.patch_status(namespace, name, stale)
        assert await add_repeats(alerts, namespace, name, 2, body["spec"]["time"], body["spec"]["time"]) == 3
        assert [o["metadata"]["name"] for o in await alerts.list(namespace)] == [name]
        await alerts.delete(namespace, name)
        await alerts.delete(namespace, name)  # already gone: nothing to do
        assert await alerts.find(namespace, name) is None
        assert await alerts.create(namespace, body, answer=False) == {}  # stored, answer not decoded
        assert (await alerts.get(namespace, name))["spec"] == created["spec"]
    finally:
        await kube.close()


async def test_api_calls_never_use_the_default_thread_pool(kubeconfig: Path, namespace: str) -> None:
    """Once configured, requests run on the event loop alone: no executor hop (netrc, proxies) per call."""
    kube = connect(str(kubeconfig))
    objects = KubeObjects(kube)
    loop = asyncio.get_running_loop()
    hops: list[Any] = []
    original = loop.run_in_executor
    try:
        assert await objects.namespace_exists(namespace)  # configures the client
        loop.run_in_executor = lambda *args: hops.append(args) or original(*args)  # type: ignore[method-assign]
        for _ in range(5):
            assert await objects.namespace_exists(namespace)
            assert await objects.pod(namespace, "no-such-pod") is None
        assert hops == []
    finally:
        loop.run_in_executor = original  # type: ignore[method-assign]
        await kube.close()


async def test_unreachable_server_is_kube_unavailable(kubeconfig: Path, tmp_path: Path) -> None:
    """A refused connection surfaces as KubeUnavailable (the receiver answers 503), not as a raw client error."""
    dead = tmp_path / "kubeconfig"
    dead.write_text(
        re.sub(r"server: https://127\.0\.0\.1:\d+", "server: https://127.0.0.1:9", kubeconfig.read_text())
    )
    kube = connect(str(dead))
    try:
        with pytest.raises(KubeUnavailable, match="unreachable"):
            await CustomResources(kube, FALCOALERTS).get("default", "x")
    finally:
        await kube.close()
