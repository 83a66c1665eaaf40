"""End to end through the real Falcosidekick: real alerts -> Falcosidekick -> webhook -> receiver -> reports.

Falcosidekick 2.34.1 is built by ``make cluster-bins`` (from its module, or from ``FALCOSIDEKICK_SRC``)
and configured by environment variables, as the Falco chart configures it. Each test owns what it
stores: payloads that name a namespace (``k8s.ns.name``, ``ka.target.namespace``) are sent with the
test's namespace instead (the only change to them); the others land there as the fallback namespace.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from devcluster.certs import MutualTlsPaths, generate_mutual_tls
from devcluster.reporter import scrape
from devcluster.sidekick import INPUTS, Falcosidekick, Webhook, version
from tests import objects as O
from tests.operator_proc import FalcoReporterProcess, free_port, wait_for
from tests.samples import REAL_SAMPLES, in_namespace

pytestmark = pytest.mark.cluster
REJECTED_401 = "falco_reporter_alerts_rejected_total{reason=unauthorized}"


def _reporter(
    cluster: Any, namespace: str, tmp_path: Path, *, token: str = "", tls: MutualTlsPaths | None = None
) -> FalcoReporterProcess:
    extra = ["--fallback-namespace", namespace]
    if token:
        (tmp_path / "token").write_text(token)
        extra += ["--token-file", str(tmp_path / "token")]
    if tls is not None:
        extra += ["--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key)]
        extra += ["--tls-client-ca", str(tls.ca_cert)]
    health = free_port() if tls is not None else None
    return FalcoReporterProcess(str(cluster.kubeconfig), log_dir=tmp_path, extra=extra, health_port=health)


def _address(reporter: FalcoReporterProcess, tls: bool) -> str:
    return f"{'https' if tls else 'http'}://127.0.0.1:{reporter.port}/v1/alerts"


def _count(alert: dict[str, Any]) -> int:
    return int(((alert.get("status") or {}).get("occurrences") or {}).get("count") or 1)


def _send_all(fsk: Falcosidekick, samples: list[Path], namespace: str, repeats: int) -> dict[str, int]:
    """POST every sample ``repeats`` times; Falcosidekick's answer per file name."""
    answers: dict[str, int] = {}
    for _ in range(repeats):
        for path in samples:
            answers[path.name] = fsk.post(in_namespace(path, namespace))
    return answers


def _assert_delivered_and_reported(
    fsk: Falcosidekick,
    reporter: FalcoReporterProcess,
    kube_api: Any,
    namespace: str,
    samples: list[Path],
    taken: int,
) -> None:
    """Every alert Falcosidekick took reached the receiver once and is counted; each has a report."""
    wait_for(
        lambda: fsk.deliveries("ok") + fsk.deliveries("error") >= taken,
        timeout=90,
        what=f"{taken} webhook deliveries",
    )
    assert fsk.deliveries("ok") == taken
    assert fsk.deliveries("error") == 0, fsk.log_text()

    def counted() -> dict[str, int]:
        return {a["metadata"]["name"]: _count(a) for a in O.listed(kube_api, "falcoalerts", namespace)}

    try:
        wait_for(lambda: sum(counted().values()) >= taken, timeout=30, what="every delivery counted")
    finally:
        assert sum(counted().values()) == taken, (counted(), reporter.log())
    stored = O.listed(kube_api, "falcoalerts", namespace)
    # Each sample was sent more than once, so every stored alert is a merged repeat.
    assert all(_count(a) >= 2 for a in stored), [(a["metadata"]["name"], _count(a)) for a in stored]
    rules = {json.loads(p.read_text())["rule"] for p in samples}
    assert {a["spec"]["rule"] for a in stored} == rules
    for alert in stored:
        report = O.wait_report(kube_api, namespace, alert["metadata"]["name"], timeout=60)
        assert report["spec"]["rule"] == alert["spec"]["rule"]
    assert O.names(kube_api, "alertreports", namespace) == {a["metadata"]["name"] for a in stored}
    assert reporter.proc is not None and reporter.proc.poll() is None


def test_falcosidekick_is_the_pinned_release():
    """The built binary reports the version it was stamped with."""
    fields = dict(line.split(":", 1) for line in version().splitlines() if ":" in line)
    assert fields["GitVersion"].strip() == "2.34.1"
    assert fields["GitCommit"].strip() == "03364bc26b2262439a5ddeb57e1e354742727e11"


def test_real_alerts_through_falcosidekick_with_a_bearer_token(cluster, kube_api, namespace, tmp_path):
    """Every real alert Falcosidekick takes arrives with its token, is merged, stored and reported."""
    token = secrets.token_urlsafe(24)
    with _reporter(cluster, namespace, tmp_path, token=token) as reporter:
        hook = Webhook(_address(reporter, False), token=token)
        with Falcosidekick(hook, tmp_path) as fsk:
            # Falcosidekick takes every real payload (it answers 200 before delivering).
            assert _send_all(fsk, REAL_SAMPLES, namespace, repeats=2) == {p.name: 200 for p in REAL_SAMPLES}
            taken = 2 * len(REAL_SAMPLES)
            assert fsk.metrics()[f"{INPUTS}{{source=requests,status=accepted}}"] == taken
            _assert_delivered_and_reported(fsk, reporter, kube_api, namespace, REAL_SAMPLES, taken)
            assert scrape(f"{reporter.health_url}/metrics").get(REJECTED_401, 0) == 0


def test_wrong_token_is_refused_and_falcosidekick_counts_the_failure(cluster, kube_api, namespace, tmp_path):
    """A Falcosidekick with the wrong token gets 401s, its metrics count errors, and nothing is stored."""
    with _reporter(cluster, namespace, tmp_path, token=secrets.token_urlsafe(24)) as reporter:
        hook = Webhook(_address(reporter, False), token="not-the-token")
        with Falcosidekick(hook, tmp_path) as fsk:
            assert _send_all(fsk, REAL_SAMPLES[:3], namespace, repeats=1) == {
                p.name: 200 for p in REAL_SAMPLES[:3]
            }
            wait_for(lambda: fsk.deliveries("error") >= 3, timeout=30, what="3 failed deliveries")
            assert fsk.deliveries("ok") == 0
            assert scrape(f"{reporter.health_url}/metrics").get(REJECTED_401, 0) == 3
            assert "Unauthorized" in fsk.log_text() or "401" in fsk.log_text()
    assert O.listed(kube_api, "falcoalerts", namespace) == []


def test_real_alerts_through_falcosidekick_with_mutual_tls(cluster, kube_api, namespace, tmp_path):
    """With webhook.mutualtls and checkcert, alerts arrive over verified TLS both ways and are reported."""
    tls = generate_mutual_tls(tmp_path / "pki")
    stranger = generate_mutual_tls(tmp_path / "other-pki", ca_name="someone-else")
    samples = REAL_SAMPLES[::4]
    with _reporter(cluster, namespace, tmp_path, tls=tls) as reporter:
        # A client certificate from another CA is refused during the handshake: nothing arrives.
        refused = Webhook(_address(reporter, True), mutual_tls=_with_ca(stranger, tls))
        with Falcosidekick(refused, tmp_path) as fsk:
            fsk.post(in_namespace(samples[0], namespace))
            wait_for(lambda: fsk.deliveries("error") >= 1, timeout=30, what="a refused handshake")
            assert fsk.deliveries("ok") == 0
        assert O.listed(kube_api, "falcoalerts", namespace) == []
        hook = Webhook(_address(reporter, True), mutual_tls=tls, check_cert=True)
        with Falcosidekick(hook, tmp_path) as fsk:
            assert _send_all(fsk, samples, namespace, repeats=3) == {p.name: 200 for p in samples}
            _assert_delivered_and_reported(fsk, reporter, kube_api, namespace, samples, 3 * len(samples))


def _with_ca(client: MutualTlsPaths, server: MutualTlsPaths) -> MutualTlsPaths:
    """``client``'s certificate and key, trusting ``server``'s CA (so only the client side is wrong)."""
    return MutualTlsPaths(
        server.ca_cert, client.server_cert, client.server_key, client.client_cert, client.client_key
    )
