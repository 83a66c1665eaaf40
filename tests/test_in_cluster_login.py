"""In a pod, kopf reaches the API server at the Service address the kubelet sets, not through DNS."""

from __future__ import annotations

import kopf
import pytest

from falco_reporter.runtime import in_cluster_server

INFO = kopf.ConnectionInfo(server="https://kubernetes.default.svc", token="t", ca_path="/ca", priority=10)


@pytest.mark.parametrize(
    ("env", "server"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "https://10.0.0.1:443"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, "https://[fd00::1]:6443"),
        ({}, "https://kubernetes.default.svc"),
    ],
)
def test_service_account_login_uses_the_service_environment(env, server):
    """The server comes from KUBERNETES_SERVICE_HOST/PORT when set; token and CA are kept."""
    info = in_cluster_server(INFO, env)
    assert info is not None
    assert (info.server, info.token, info.ca_path, info.priority) == (server, "t", "/ca", 10)


def test_no_service_account_stays_none():
    """Without a service account (kopf found none) there is nothing to re-aim."""
    assert in_cluster_server(None, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None
