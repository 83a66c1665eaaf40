"""Create, read and patch our custom resources (FalcoAlert, AlertReport)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from falco_reporter import API_GROUP, API_VERSION
from falco_reporter.kube.client import Kube
from falco_reporter.kube.errors import KubeConflict, KubeNotFound

MERGE_PATCH = "application/merge-patch+json"
#: Lists of metadata alone (labels, names, timestamps): a fraction of the bytes of whole reports.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
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

    async def create(self, namespace: str, body: Obj, *, dry_run: bool = False, answer: bool = True) -> Obj:
        """Create; raises KubeConflict when the name is taken (the idempotent 'already done').

        ``answer=False`` returns {} instead of decoding the stored object (a report's is large).
        """
        query = [("dryRun", "All")] if dry_run else None
        return await self._kube.request("POST", self._path(namespace), body, query=query, answer=answer)

    async def get(self, namespace: str, name: str) -> Obj:
        return await self._kube.request("GET", self._path(namespace, name))

    async def find(self, namespace: str, name: str) -> Obj | None:
        """Get, or None when absent."""
        try:
            return await self.get(namespace, name)
        except KubeNotFound:
            return None

    async def patch(self, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch of the main resource."""
        return await self._kube.request("PATCH", self._path(namespace, name), patch, content_type=MERGE_PATCH)

    async def patch_status(self, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch of the status subresource; include metadata.resourceVersion to precondition it."""
        path = self._path(namespace, name, "status")
        return await self._kube.request("PATCH", path, patch, content_type=MERGE_PATCH)

    async def list(
        self, namespace: str | None = None, *, label_selector: str = "", metadata_only: bool = False
    ) -> list[Obj]:
        """All objects in a namespace, or cluster-wide when namespace is None (paginated)."""
        accept = METADATA_LIST if metadata_only else "application/json"
        items: list[Obj] = []
        token = ""
        while True:
            query = [("limit", "500")]
            query += [("labelSelector", label_selector)] if label_selector else []
            query += [("continue", token)] if token else []
            page = await self._kube.request("GET", self._path(namespace), query=query, accept=accept)
            items.extend(page.get("items", []))
            token = page.get("metadata", {}).get("continue") or ""
            if not token:
                return items

    async def delete(self, namespace: str, name: str) -> None:
        try:
            await self._kube.request("DELETE", self._path(namespace, name))
        except KubeNotFound:
            return


JOURNAL_ANNOTATION = "falcoreporter.io/journal-entry"
MAX_JOURNAL_MARKS = 16
MAX_SAMPLES = 10


async def add_repeats(
    alerts: CustomResources,
    namespace: str,
    name: str,
    delta: int,
    first_seen: str,
    last_seen: str,
    *,
    samples: dict[str, list[str]] | None = None,
    attempts: int = 8,
) -> int:
    """Add ``delta`` repeats to status.occurrences atomically; return the new count.

    No ``status.occurrences`` means the object's creation is its only occurrence so far (count 1
    at ``spec.time``), so every receiver adds only the repeats it saw. Read-modify-write
    preconditioned on resourceVersion: concurrent receivers (and the operator's own status
    writes) never lose an increment; a 409 re-reads and retries.
    """
    times = [first_seen, last_seen] if delta > 1 else [last_seen]
    return await _add_occurrences(alerts, namespace, name, delta, times, samples or {}, None, attempts)


async def add_journal_repeats(
    alerts: CustomResources,
    namespace: str,
    name: str,
    journal: str,
    occurrences: list[tuple[int, str]],
    *,
    samples: dict[str, list[str]] | None = None,
    attempts: int = 8,
) -> int:
    """Count journal entries ``(seq, time)`` as repeats, exactly once each; return the new count.

    The object remembers, per journal, the newest entry it counted (``status.journalMarks``, and
    the annotation written at creation), so a replay of the journal after a crash skips entries
    already counted. Entries of one object must be applied in seq order.
    """

    def fresh(obj: Obj) -> list[tuple[int, str]]:
        applied = _journal_mark(obj, journal)
        return [(seq, when) for seq, when in occurrences if seq > applied]

    top = max(seq for seq, _ in occurrences)
    return await _add_occurrences(
        alerts, namespace, name, 0, [], samples or {}, (journal, top, fresh), attempts
    )


def _journal_mark(obj: Obj, journal: str) -> int:
    """The newest entry of ``journal`` already counted in ``obj`` (0: none)."""
    marks = ((obj.get("status") or {}).get("journalMarks")) or []
    seq = max((int(m.get("seq") or 0) for m in marks if m.get("journal") == journal), default=0)
    note = str(((obj.get("metadata") or {}).get("annotations") or {}).get(JOURNAL_ANNOTATION) or "")
    owner, _, created = note.rpartition(":")
    if owner == journal and created.isdigit():
        seq = max(seq, int(created))
    return seq


async def _add_occurrences(
    alerts: CustomResources,
    namespace: str,
    name: str,
    delta: int,
    times: list[str],
    samples: dict[str, list[str]],
    journal: tuple[str, int, Any] | None,
    attempts: int,
) -> int:
    for _ in range(attempts):
        obj = await alerts.get(namespace, name)
        status = obj.get("status") or {}
        occ = status.get("occurrences") or {}
        current = int(occ["count"]) if occ.get("count") else 1
        patch_status: Obj = {}
        if journal is not None:
            entries = journal[2](obj)
            if not entries:
                return current
            delta, times = len(entries), [when for _, when in entries]
            marks = [m for m in status.get("journalMarks") or [] if m.get("journal") != journal[0]]
            patch_status["journalMarks"] = [{"journal": journal[0], "seq": journal[1]}, *marks][
                :MAX_JOURNAL_MARKS
            ]
        created_at = str((obj.get("spec") or {}).get("time") or "")
        count = current + delta
        first = min(filter(None, [occ.get("firstSeen") or created_at, *times]), default="")
        last = max(filter(None, [occ.get("lastSeen") or created_at, *times]), default="")
        patch_status["occurrences"] = {"count": count, "firstSeen": first, "lastSeen": last}
        if samples:
            patch_status["samples"] = merge_samples(
                status.get("samples") or {}, obj.get("spec") or {}, samples
            )
        patch = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "status": patch_status}
        try:
            await alerts.patch_status(namespace, name, patch)
        except KubeConflict:
            continue
        return count
    raise KubeConflict(f"could not update occurrences of {namespace}/{name} after {attempts} attempts", 409)


def merge_samples(current: Obj, spec: Obj, seen: dict[str, list[str]]) -> Obj:
    """The last MAX_SAMPLES distinct values of each varying field, with counts (most recent last).

    A field is sampled only once a repeat carries a value different from the first occurrence's,
    whose value then seeds the sample.
    """
    out: Obj = {k: [dict(v) for v in vs] for k, vs in current.items()}
    original = spec.get("outputFields") or {}
    for field, values in seen.items():
        base = str(original.get(field, ""))[:256]
        if field not in out and all(v == base for v in values):
            continue
        sample = out.setdefault(field, [{"value": base, "count": 1}])
        for value in values:
            hit = next((s for s in sample if s["value"] == value), None)
            if hit is not None:
                sample.remove(hit)
                hit["count"] = int(hit.get("count") or 1) + 1
            else:
                hit = {"value": value, "count": 1}
            sample.append(hit)
        out[field] = sample[-MAX_SAMPLES:]
    return out
