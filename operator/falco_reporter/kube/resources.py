"""Create, read and patch our custom resources (FalcoAlert, AlertReport)."""

from __future__ import annotations

import json
from typing import Any, cast
from urllib.parse import quote

from kubernetes.client.exceptions import ApiException

from falco_reporter import API_GROUP, API_VERSION
from falco_reporter.kube.client import Kube
from falco_reporter.kube.errors import KubeConflict, KubeNotFound, call

MERGE_PATCH = "application/merge-patch+json"
Obj = dict[str, Any]


class CustomResources:
    """Typed-by-plural access to one of our namespaced custom resources."""

    def __init__(self, kube: Kube, plural: str) -> None:
        self._kube = kube
        self._plural = plural

    def _path(self, namespace: str | None, name: str = "", subresource: str = "") -> str:
        """The resource's URL path; no namespace means the cluster-wide collection."""
        scope = f"namespaces/{quote(namespace, safe='')}/" if namespace is not None else ""
        path = f"/apis/{API_GROUP}/{API_VERSION}/{scope}{self._plural}"
        if name:
            path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
        return path

    def _send(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        """One request through the client's connection pool and auth, without its model layer.

        These calls carry our plain dicts: the generated API methods would validate every
        argument with pydantic and walk the body to "sanitize" it, about a third of the
        receiver's CPU per stored alert.
        """

        def send() -> Obj:
            api = self._kube.api
            method_, url, headers, _, _ = api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or None,
                header_params={"Accept": "application/json", "Content-Type": content_type},
                auth_settings=["BearerToken"],
            )
            response = api.call_api(method_, url, headers, body, _request_timeout=self._kube.timeout)
            data: bytes = response.read() or b""  # type: ignore[no-untyped-call]
            if not 200 <= response.status < 300:
                raise ApiException(http_resp=response)
            return cast(Obj, json.loads(data))

        return call(send)

    def create(self, namespace: str, body: Obj, *, dry_run: bool = False) -> Obj:
        """Create; raises KubeConflict when the name is taken (the idempotent 'already done')."""
        return self._send("POST", self._path(namespace), body, query=[("dryRun", "All")] if dry_run else None)

    def get(self, namespace: str, name: str) -> Obj:
        return self._send("GET", self._path(namespace, name))

    def find(self, namespace: str, name: str) -> Obj | None:
        """Get, or None when absent."""
        try:
            return self.get(namespace, name)
        except KubeNotFound:
            return None

    def patch(self, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch of the main resource."""
        return self._send("PATCH", self._path(namespace, name), patch, content_type=MERGE_PATCH)

    def patch_status(self, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch of the status subresource; include metadata.resourceVersion to precondition it."""
        return self._send("PATCH", self._path(namespace, name, "status"), patch, content_type=MERGE_PATCH)

    def list(self, namespace: str | None = None, *, label_selector: str = "") -> list[Obj]:
        """All objects in a namespace, or cluster-wide when namespace is None (paginated)."""
        items: list[Obj] = []
        token = ""
        while True:
            query = [("limit", "500")]
            query += [("labelSelector", label_selector)] if label_selector else []
            query += [("continue", token)] if token else []
            page = self._send("GET", self._path(namespace), query=query)
            items.extend(page.get("items", []))
            token = page.get("metadata", {}).get("continue") or ""
            if not token:
                return items

    def delete(self, namespace: str, name: str) -> None:
        try:
            self._send("DELETE", self._path(namespace, name))
        except KubeNotFound:
            return


def add_repeats(
    alerts: CustomResources,
    namespace: str,
    name: str,
    delta: int,
    first_seen: str,
    last_seen: str,
    *,
    attempts: int = 8,
) -> int:
    """Add ``delta`` repeats to status.occurrences atomically; return the new count.

    No ``status.occurrences`` means the object's creation is its only occurrence so far (count 1
    at ``spec.time``), so every receiver adds only the repeats it saw. Read-modify-write
    preconditioned on resourceVersion: concurrent receivers (and the operator's own status
    writes) never lose an increment; a 409 re-reads and retries.
    """
    for _ in range(attempts):
        obj = alerts.get(namespace, name)
        occ = (obj.get("status") or {}).get("occurrences") or {}
        created_at = str((obj.get("spec") or {}).get("time") or "")
        count = (int(occ["count"]) if occ.get("count") else 1) + delta
        first = min(filter(None, [occ.get("firstSeen") or created_at, first_seen]), default="")
        last = max(filter(None, [occ.get("lastSeen") or created_at, last_seen]), default="")
        patch = {
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "status": {"occurrences": {"count": count, "firstSeen": first, "lastSeen": last}},
        }
        try:
            alerts.patch_status(namespace, name, patch)
        except KubeConflict:
            continue
        return count
    raise KubeConflict(f"could not update occurrences of {namespace}/{name} after {attempts} attempts", 409)
