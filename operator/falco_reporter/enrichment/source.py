"""Where enrichment reads objects from: the API server (kube layer) or a YAML file (offline)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

Obj = dict[str, Any]


class ObjectSource(Protocol):
    """Read-only lookups enrichment needs (awaited); missing objects are None, never errors."""

    async def pod(self, namespace: str, name: str) -> Obj | None: ...

    async def pods(self, namespace: str | None = None, node: str | None = None) -> list[Obj]: ...

    async def owner(self, kind: str, namespace: str, name: str) -> Obj | None: ...

    async def service_account(self, namespace: str, name: str) -> Obj | None: ...

    async def namespace_exists(self, name: str) -> bool: ...

    async def node_exists(self, name: str) -> bool: ...


class StaticObjects:
    """An ObjectSource over a fixed set of objects, e.g. loaded from ``render --objects FILE``."""

    def __init__(self, objects: Iterable[Obj]) -> None:
        self._by_key: dict[tuple[str, str, str], Obj] = {}
        self._namespaces: set[str] = set()
        for obj in objects:
            if not isinstance(obj, dict) or "kind" not in obj:
                continue
            if obj["kind"].endswith("List") and isinstance(obj.get("items"), list):
                self.__init_items(obj["items"])
                continue
            self._add(obj)

    def __init_items(self, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, dict) and "kind" in item:
                self._add(item)

    def _add(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        self._by_key[(obj["kind"], namespace, meta.get("name", ""))] = obj
        if obj["kind"] == "Namespace":
            self._namespaces.add(meta.get("name", ""))
        elif namespace:
            self._namespaces.add(namespace)

    async def pod(self, namespace: str, name: str) -> Obj | None:
        return self._by_key.get(("Pod", namespace, name))

    async def pods(self, namespace: str | None = None, node: str | None = None) -> list[Obj]:
        return [
            o
            for (kind, ns, _), o in sorted(self._by_key.items())
            if kind == "Pod"
            and (namespace is None or ns == namespace)
            and (node is None or (o.get("spec") or {}).get("nodeName") == node)
        ]

    async def owner(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._by_key.get((kind, namespace, name))

    async def service_account(self, namespace: str, name: str) -> Obj | None:
        return self._by_key.get(("ServiceAccount", namespace, name))

    async def namespace_exists(self, name: str) -> bool:
        return name in self._namespaces

    async def node_exists(self, name: str) -> bool:
        return ("Node", "", name) in self._by_key
