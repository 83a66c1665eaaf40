"""kopf handlers: validate input, call the reconciler, translate its errors, return status."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from falco_reporter import API_GROUP, API_VERSION
from falco_reporter.models.resources import COND_REPORTED, FALCOALERTS, set_condition
from falco_reporter.reconciler.service import AlertReconciler, InvalidFalcoAlert, RetryLater

log = logging.getLogger(__name__)


def register(registry: kopf.OperatorRegistry, reconciler: AlertReconciler) -> None:
    """Attach the handlers to ``registry`` (one registry per embedded operator)."""

    @kopf.on.resume(API_GROUP, API_VERSION, FALCOALERTS, registry=registry)
    @kopf.on.create(API_GROUP, API_VERSION, FALCOALERTS, registry=registry)
    async def report_alert(
        name: str,
        namespace: str | None,
        uid: str,
        spec: kopf.Spec,
        status: kopf.Status,
        meta: kopf.Meta,
        patch: kopf.Patch,
        memo: Any,
        **_: Any,
    ) -> None:
        if _already_reported(status) or namespace is None:
            return
        try:
            outcome = await reconciler.reconcile(
                namespace=namespace,
                name=name,
                uid=uid,
                generation=int(meta.get("generation") or 1),
                spec=dict(spec),
                status=dict(status),
            )
        except InvalidFalcoAlert as exc:
            raise kopf.PermanentError(str(exc)) from exc
        except RetryLater as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
        conditions = list(status.get("conditions") or [])
        for condition in outcome.conditions:
            conditions = set_condition(conditions, condition)
        # The report was written with this count: the event handler need not patch it again.
        memo.setdefault("synced_counts", {})[(namespace, name)] = outcome.count
        patch.status["conditions"] = conditions
        patch.status["reportRef"] = {"name": outcome.report_name}
        patch.status["observedGeneration"] = int(meta.get("generation") or 1)
        if outcome.enrichment is not None:
            patch.status["enrichment"] = outcome.enrichment.model_dump(by_alias=True, mode="json")

    @kopf.on.event(API_GROUP, API_VERSION, FALCOALERTS, registry=registry)
    async def sync_occurrences(
        name: str,
        namespace: str | None,
        status: kopf.Status,
        memo: Any,
        type: str,
        **_: Any,
    ) -> None:
        occurrences = status.get("occurrences")
        if type == "DELETED" or namespace is None or not occurrences or not _already_reported(status):
            return
        synced: dict[tuple[str, str], int] = memo.setdefault("synced_counts", {})
        key, count = (namespace, name), int(occurrences.get("count", 0))
        if synced.get(key) == count:
            return
        try:
            if await reconciler.sync_occurrences(namespace, name, dict(occurrences)):
                synced[key] = count
        except RetryLater as exc:
            # Event handlers are not retried by kopf; the next status change syncs again.
            log.warning("occurrence sync of %s/%s deferred: %s", namespace, name, exc)


def _already_reported(status: kopf.Status) -> bool:
    return any(
        c.get("type") == COND_REPORTED and c.get("status") == "True" for c in status.get("conditions") or []
    )
