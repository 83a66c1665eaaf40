"""Shared fixtures: a real control plane (etcd + kube-apiserver + kube-controller-manager) per session.

Tests that need it take the ``cluster`` (or ``kubeconfig``, ``kube_api``, ``namespace``) fixture and
are marked ``@pytest.mark.cluster``. The cluster is started lazily, once per session, from the
binaries in ``bin/`` (``make cluster-bins``) and always stopped at the end, with the CRDs from
``crds/`` applied.

Tests marked ``@pytest.mark.node`` need a real node (root, containerd, kubelet: ``make e2e``); they run
only when selected with ``-m node``, and then the session's cluster starts with one.

Set ``FALCO_REPORTER_TEST_KUBECONFIG=/path/to/kubeconfig`` to run against an existing cluster
instead (for example one from ``make cluster-up``); it is then neither started nor stopped, and the
CRDs are still applied to it.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devcluster.binaries import find_binary
from devcluster.cluster import LocalCluster
from devcluster.crds import apply_crds

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ExistingCluster:
    """Stand-in for LocalCluster when FALCO_REPORTER_TEST_KUBECONFIG names a running cluster."""

    kubeconfig: Path

    @property
    def kubectl(self) -> Path:
        return find_binary("kubectl")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave node tests out unless ``-m`` names them: they need root and install a container runtime."""
    if "node" in (config.getoption("markexpr") or ""):
        return
    keep = [i for i in items if i.get_closest_marker("node") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster | ExistingCluster]:
    """The session's control plane (CRDs from crds/ applied); stopped after the last test."""
    existing = os.environ.get("FALCO_REPORTER_TEST_KUBECONFIG")
    if existing:
        apply_crds(existing, ROOT / "crds")
        yield ExistingCluster(Path(existing))
        return
    node = any(item.get_closest_marker("node") for item in request.session.items)
    with LocalCluster(node=node) as local:
        apply_crds(local.kubeconfig, ROOT / "crds")
        yield local


@pytest.fixture(scope="session")
def kubeconfig(cluster: LocalCluster | ExistingCluster) -> Path:
    """Path of an admin kubeconfig for the session's cluster."""
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kube_api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """A ``kubernetes.client.ApiClient`` authenticated as cluster admin."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    yield api
    api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards without waiting for it to go."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:  # a test may have deleted it itself
            raise
