"""Build an API client from a kubeconfig or the in-cluster service account."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kubernetes import client, config

# (connect, read) seconds for every call: an API server outage must surface quickly as
# KubeUnavailable (the receiver then answers 503) instead of hanging a request.
DEFAULT_TIMEOUT = (3.0, 10.0)


@dataclass(frozen=True)
class Kube:
    """One configured client shared by every store."""

    api: client.ApiClient
    timeout: tuple[float, float] = DEFAULT_TIMEOUT

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)


def connect(kubeconfig: str | None = None, *, pool_size: int = 32) -> Kube:
    """Configure from ``kubeconfig``, $KUBECONFIG, ~/.kube/config, or in-cluster, in that order."""
    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    # The receiver and operator run API calls from a thread pool; one pooled connection
    # per worker avoids "connection pool is full" churn under bursts.
    cfg.connection_pool_maxsize = pool_size
    cfg.retries = False
    return Kube(api=client.ApiClient(cfg))
