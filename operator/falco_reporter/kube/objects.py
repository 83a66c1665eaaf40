"""Read-only lookups of built-in objects for enrichment, as plain JSON dicts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from falco_reporter.kube.client import Kube
from falco_reporter.kube.errors import KubeForbidden, KubeNotFound

Obj = dict[str, Any]

#: Owner kinds enrichment follows, and the API group/version that serves each.
OWNER_APIS = {
    "ReplicaSet": "apis/apps/v1",
    "Deployment": "apis/apps/v1",
    "StatefulSet": "apis/apps/v1",
    "DaemonSet": "apis/apps/v1",
    "Job": "apis/batch/v1",
    "CronJob": "apis/batch/v1",
    "ReplicationController": "api/v1",
}


def _path(api: str, plural: str, namespace: str | None = None, name: str = "") -> str:
    scope = f"/namespaces/{quote(namespace, safe='')}" if namespace else ""
    return f"/{api}{scope}/{plural}" + (f"/{quote(name, safe='')}" if name else "")


class KubeObjects:
    """Implements the enrichment layer's ObjectSource against the API server."""

    def __init__(self, kube: Kube, namespaces: tuple[str, ...] = ()) -> None:
        self._kube = kube
        # Namespaced installs may not list pods cluster-wide: search only these.
        self._namespaces = namespaces

    async def _read(self, path: str, query: list[tuple[str, str]] | None = None) -> Obj | None:
        try:
            return await self._kube.request("GET", path, query=query)
        except KubeNotFound:
            return None

    async def pod(self, namespace: str, name: str) -> Obj | None:
        return await self._read(_path("api/v1", "pods", namespace, name))

    async def pods(self, namespace: str | None = None, node: str | None = None) -> list[Obj]:
        """Pods in a namespace (or all), optionally only those scheduled on ``node``."""
        if namespace is None and self._namespaces:
            return [pod for ns in self._namespaces for pod in await self.pods(ns, node)]
        query = [("fieldSelector", f"spec.nodeName={node}")] if node else None
        data = await self._read(_path("api/v1", "pods", namespace), query)
        return list((data or {}).get("items", []))

    async def owner(self, kind: str, namespace: str, name: str) -> Obj | None:
        api = OWNER_APIS.get(kind)
        if api is None:
            return None
        return await self._read(_path(api, kind.lower() + "s", namespace, name))

    async def service_account(self, namespace: str, name: str) -> Obj | None:
        return await self._read(_path("api/v1", "serviceaccounts", namespace, name))

    async def node_exists(self, name: str) -> bool:
        """True when a Node of that name exists; False when absent or not ours to read (403)."""
        try:
            return await self._read(_path("api/v1", "nodes", name=name)) is not None
        except KubeForbidden:
            return False

    async def namespace_exists(self, name: str) -> bool:
        """True when it exists and we may see it; a 403 means it is not ours to write into."""
        try:
            return await self._read(_path("api/v1", "namespaces", name=name)) is not None
        except KubeForbidden:
            return False
