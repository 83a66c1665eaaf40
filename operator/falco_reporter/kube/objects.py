"""Read-only lookups of built-in objects for enrichment, as plain JSON dicts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from falco_reporter.kube.client import Kube
from falco_reporter.kube.errors import KubeForbidden, KubeNotFound, call

Obj = dict[str, Any]


class KubeObjects:
    """Implements the enrichment layer's ObjectSource against the API server."""

    def __init__(self, kube: Kube, namespaces: tuple[str, ...] = ()) -> None:
        self._kube = kube
        # Namespaced installs may not list pods cluster-wide: search only these.
        self._namespaces = namespaces

    def _read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj | None:
        try:
            resp = call(
                lambda: fn(*args, _preload_content=False, _request_timeout=self._kube.timeout, **kwargs)
            )
        except KubeNotFound:
            return None
        data: Obj = json.loads(resp.data)
        return data

    def pod(self, namespace: str, name: str) -> Obj | None:
        return self._read(self._kube.core.read_namespaced_pod, name, namespace)

    def pods(self, namespace: str | None = None, node: str | None = None) -> list[Obj]:
        """Pods in a namespace (or all), optionally only those scheduled on ``node``."""
        selector = {"field_selector": f"spec.nodeName={node}"} if node else {}
        if namespace is None and self._namespaces:
            return [pod for ns in self._namespaces for pod in self.pods(ns, node)]
        if namespace:
            data = self._read(self._kube.core.list_namespaced_pod, namespace, **selector)
        else:
            data = self._read(self._kube.core.list_pod_for_all_namespaces, **selector)
        return list((data or {}).get("items", []))

    def owner(self, kind: str, namespace: str, name: str) -> Obj | None:
        readers: dict[str, Callable[..., Any]] = {
            "ReplicaSet": self._kube.apps.read_namespaced_replica_set,
            "Deployment": self._kube.apps.read_namespaced_deployment,
            "StatefulSet": self._kube.apps.read_namespaced_stateful_set,
            "DaemonSet": self._kube.apps.read_namespaced_daemon_set,
            "Job": self._kube.batch.read_namespaced_job,
            "CronJob": self._kube.batch.read_namespaced_cron_job,
            "ReplicationController": self._kube.core.read_namespaced_replication_controller,
        }
        reader = readers.get(kind)
        return None if reader is None else self._read(reader, name, namespace)

    def service_account(self, namespace: str, name: str) -> Obj | None:
        return self._read(self._kube.core.read_namespaced_service_account, name, namespace)

    def node_exists(self, name: str) -> bool:
        """True when a Node of that name exists; False when absent or not ours to read (403)."""
        try:
            return self._read(self._kube.core.read_node, name) is not None
        except KubeForbidden:
            return False

    def namespace_exists(self, name: str) -> bool:
        """True when it exists and we may see it; a 403 means it is not ours to write into."""
        try:
            return self._read(self._kube.core.read_namespace, name) is not None
        except KubeForbidden:
            return False
