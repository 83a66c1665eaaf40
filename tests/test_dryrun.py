"""Server-side dry runs of proposed manifests against the real API server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kubernetes import client

from falco_reporter.kube.client import connect
from falco_reporter.kube.dryrun import ManifestDryRun
from tests.kube_as import KubeAs

pytestmark = pytest.mark.cluster

POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: isolate-web
  namespace: {ns}
spec:
  podSelector:
    matchLabels: {{app: web}}
  policyTypes: [Ingress, Egress]
  {extra}
"""


async def test_valid_manifest_is_accepted_and_nothing_is_created(cluster, namespace, kube_api):
    """A valid NetworkPolicy passes the dry run and is not actually created."""
    check = ManifestDryRun(connect(str(cluster.kubeconfig)))
    result = await check(POLICY.format(ns=namespace, extra=""))
    assert result.ok, result.errors
    assert "server-side dry run: NetworkPolicy isolate-web accepted" in result.checks
    assert result.summary() == "manifest: ok (server-side dry run)"
    assert client.NetworkingV1Api(kube_api).list_namespaced_network_policy(namespace).items == []


async def test_unknown_field_is_rejected_by_the_server(cluster, namespace):
    """Strict field validation on the server rejects a field that does not exist."""
    check = ManifestDryRun(connect(str(cluster.kubeconfig)))
    result = await check(POLICY.format(ns=namespace, extra="ingressRules: []"))
    assert not result.ok
    assert "ingressRules" in result.errors[0]


async def test_unreachable_server_degrades_to_structural_check(tmp_path, cluster):
    """When the API server is down, the manifest keeps its offline check and says so."""
    dead = tmp_path / "kubeconfig"
    text = Path(cluster.kubeconfig).read_text()
    dead.write_text(re.sub(r"server: https://127\.0\.0\.1:\d+", "server: https://127.0.0.1:9", text))
    result = await ManifestDryRun(connect(str(dead)))(POLICY.format(ns="default", extra=""))
    assert result.ok
    assert "structural check only" in result.checks[0]
    assert result.summary().startswith("manifest: not validated: API server unreachable")


async def test_forbidden_dry_run_is_not_validated(cluster, namespace):
    """An identity without create rights gets 403 from the dry run: the result keeps no error but says 'not validated'."""
    kube = KubeAs(cluster.kubeconfig, "nobody-without-rights")
    result = await ManifestDryRun(kube)(POLICY.format(ns=namespace, extra=""))
    assert result.ok and result.unverified
    assert "not permitted for our identity" in result.checks[0]
    assert result.summary() == (
        "manifest: not validated: server-side dry run of NetworkPolicy isolate-web forbidden (403); structural check only"
    )
