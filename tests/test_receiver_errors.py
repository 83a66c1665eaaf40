"""Bad input and outages at the receiver: clear errors, nothing stored, never a false 202."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from tests.objects import GROUP, VERSION, alert_for
from tests.operator_proc import FalcoReporterProcess, post

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def receiver(cluster, tmp_path_factory):
    """A receiver alone, with a bearer token and a small body limit."""
    tmp = tmp_path_factory.mktemp("receiver")
    token = tmp / "token"
    token.write_text("s3cret-token\n")
    proc = FalcoReporterProcess(
        str(cluster.kubeconfig),
        mode="receiver",
        log_dir=tmp,
        extra=["--token-file", str(token), "--max-body", "4096"],
    )
    with proc:
        yield proc


AUTH = {"Authorization": "Bearer s3cret-token"}


def count(kube_api, namespace):
    items = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "falcoalerts"
    )
    return len(items["items"])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not JSON"),
        (b'["a list"]', "one JSON object"),
        (b"\xff\xfe\x00", "UTF-8"),
        (json.dumps({"hello": "world"}).encode(), "'rule' is required"),
        (
            json.dumps({"rule": "x", "priority": "LOUD", "time": "2026-01-01T00:00:00Z"}).encode(),
            "'priority'",
        ),
    ],
    ids=["invalid-json", "not-object", "invalid-utf8", "not-an-alert", "bad-priority"],
)
def test_bad_payload_is_400_with_reason_and_stores_nothing(receiver, kube_api, namespace, body, fragment):
    """Invalid JSON or a non-alert gets 400 with an error naming the problem, and no object."""
    status, answer = post(receiver.url, body, headers=AUTH)
    assert status == 400
    assert answer["error"] == "invalid_alert" and fragment in answer["message"]
    assert count(kube_api, namespace) == 0


def test_body_over_limit_is_413(receiver, kube_api, namespace):
    """A body larger than --max-body is refused with 413 and nothing is stored."""
    payload = alert_for(namespace, "big", **{"proc.cmdline": "x" * 8000})
    status, answer = post(receiver.url, payload, headers=AUTH)
    assert status == 413 and answer["error"] == "body_too_large"
    assert count(kube_api, namespace) == 0


def test_wrong_or_missing_token_is_401(receiver, kube_api, namespace):
    """Without the right bearer token the alert is refused with 401 and not stored."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret-token"}):
        status, answer = post(receiver.url, alert_for(namespace, "p"), headers=headers)
        assert status == 401 and answer["error"] == "unauthorized"
    assert count(kube_api, namespace) == 0
    assert post(receiver.url, alert_for(namespace, "p"), headers=AUTH)[0] == 202
    assert count(kube_api, namespace) == 1


def test_unknown_path_is_404_json(receiver):
    """Unknown endpoints answer a JSON 404."""
    status, answer = post(receiver.url, b"{}", headers=AUTH, path="/v2/whatever")
    assert status == 404 and answer["error"] == "not_found"


def test_health_endpoints(receiver):
    """/healthz and /readyz answer 200 while the API server is reachable."""
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(receiver.url + path, timeout=5) as resp:
            assert resp.status == 200


def test_api_server_unreachable_is_503_never_202(cluster, tmp_path):
    """With the API server unreachable the receiver answers 503 within its deadline, never 202."""
    dead = tmp_path / "dead-kubeconfig"
    config = Path(cluster.kubeconfig).read_text()
    dead.write_text(re.sub(r"server: https://127\.0\.0\.1:\d+", "server: https://127.0.0.1:9", config))
    proc = FalcoReporterProcess(
        str(dead), mode="receiver", log_dir=tmp_path, extra=["--request-timeout", "3"]
    )
    with proc:
        status, answer = post(proc.url, alert_for("default", "p"))
        assert status == 503 and answer["error"] in ("api_unavailable", "timeout")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(proc.url + "/readyz", timeout=10)
        assert err.value.code == 503
