"""A small in-memory stand-in for the kube layer the receiver uses (FalcoAlerts and namespaces).

It keeps the API server's rules that the ingest bookkeeping depends on: 409 for a taken name, 404
for a missing namespace or object, 403 "being terminated" for a terminating namespace, the
resourceVersion precondition on status patches, status ignored on create; and it can be switched
"down" (every call raises KubeUnavailable) or made to refuse calls.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from typing import Any

from falco_reporter.kube.errors import (
    KubeConflict,
    KubeError,
    KubeInvalid,
    KubeNamespaceTerminating,
    KubeNotFound,
    KubeUnavailable,
)


class FakeAPI:
    def __init__(self, namespaces: set[str]) -> None:
        self.namespaces = set(namespaces)
        self.terminating: set[str] = set()
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.down = False
        #: Status patches refused as invalid (a repeat that can never be written).
        self.refuse_patches = False
        self.calls: Counter[str] = Counter()
        #: Seconds each create takes (a slow API server).
        self.create_delay = 0.0
        self._rv = 0

    def _check(self, what: str) -> None:
        self.calls[what] += 1
        if self.down:
            raise KubeUnavailable("API server unreachable: ConnectionRefusedError")

    # --- KubeObjects ---
    async def namespace_exists(self, namespace: str) -> bool:
        self._check("namespace")
        return namespace in self.namespaces

    # --- CustomResources ---
    async def create(
        self, namespace: str, body: dict[str, Any], *, dry_run: bool = False, answer: bool = True
    ) -> dict[str, Any]:
        self._check("create")
        await asyncio.sleep(self.create_delay)
        if namespace in self.terminating:
            raise KubeNamespaceTerminating(
                f"403 falcoalerts is forbidden: unable to create new content in namespace {namespace} "
                "because it is being terminated",
                403,
            )
        if namespace not in self.namespaces:
            raise KubeNotFound(f'404 namespaces "{namespace}" not found', 404)
        key = (namespace, body["metadata"]["name"])
        if key in self.objects:
            raise KubeConflict("409 already exists", 409)
        obj = copy.deepcopy(body)
        obj.pop("status", None)
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self.objects[key] = obj
        return copy.deepcopy(obj) if answer else {}

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        self._check("get")
        obj = self.objects.get((namespace, name))
        if obj is None:
            raise KubeNotFound(f"404 {name} not found", 404)
        return copy.deepcopy(obj)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._check("patch_status")
        if self.refuse_patches:
            raise KubeInvalid("422 status is invalid", 422)
        obj = self.objects.get((namespace, name))
        if obj is None:
            raise KubeNotFound(f"404 {name} not found", 404)
        want = patch.get("metadata", {}).get("resourceVersion")
        if want and want != obj["metadata"]["resourceVersion"]:
            raise KubeConflict("409 the object has been modified", 409)
        obj.setdefault("status", {}).update(copy.deepcopy(patch["status"]))
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        return copy.deepcopy(obj)

    # --- test helpers ---
    def delete(self, namespace: str, name: str) -> None:
        self.objects.pop((namespace, name), None)

    def count(self, namespace: str, name: str) -> int:
        """Occurrences of the object as the operator reads them (no status: 1)."""
        obj = self.objects[(namespace, name)]
        return int(((obj.get("status") or {}).get("occurrences") or {}).get("count") or 1)

    def total(self) -> int:
        return sum(self.count(ns, n) for ns, n in self.objects)


__all__ = ["FakeAPI", "KubeError"]
