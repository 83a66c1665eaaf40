"""kopf handlers: validate input, call one service, translate its errors, return status."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from falco_reporter import API_GROUP, API_VERSION
from falco_reporter.models.resources import ALERTREPORTS, COND_REPORTED, FALCOALERTS, Condition, set_condition
from falco_reporter.reconciler.review import ReviewReconciler
from falco_reporter.reconciler.service import AlertReconciler, InvalidFalcoAlert, RetryLater

log = logging.getLogger(__name__)


def register(
    registry: kopf.OperatorRegistry, reconciler: AlertReconciler, reviewer: ReviewReconciler
) -> None:
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
        generation = int(meta.get("generation") or 1)
        try:
            outcome = await reconciler.reconcile(
                namespace=namespace,
                name=name,
                uid=uid,
                generation=generation,
                spec=dict(spec),
                status=dict(status),
            )
        except InvalidFalcoAlert as exc:
            raise kopf.PermanentError(str(exc)) from exc
        except RetryLater as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
        # The report was written with this count: the event handler need not patch it again.
        memo.setdefault("synced_counts", {})[(namespace, name)] = outcome.count
        patch.status["conditions"] = _merged(status, outcome.conditions)
        patch.status["reportRef"] = {"name": outcome.report_name}
        patch.status["observedGeneration"] = generation
        if outcome.enrichment is not None:
            patch.status["enrichment"] = outcome.enrichment.model_dump(by_alias=True, mode="json")

    @kopf.on.event(API_GROUP, API_VERSION, FALCOALERTS, registry=registry)
    async def sync_occurrences(
        name: str,
        namespace: str | None,
        uid: str,
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
            if await reconciler.sync_occurrences(namespace, name, dict(occurrences), uid=uid):
                synced[key] = count
        except RetryLater as exc:
            # Event handlers are not retried by kopf; the next status change syncs again.
            log.warning("occurrence sync of %s/%s deferred: %s", namespace, name, exc)

    @kopf.on.field(API_GROUP, API_VERSION, ALERTREPORTS, field="spec.review.state", registry=registry)
    async def review_changed(
        name: str,
        namespace: str | None,
        spec: kopf.Spec,
        status: kopf.Status,
        meta: kopf.Meta,
        patch: kopf.Patch,
        **_: Any,
    ) -> None:
        if namespace is None:
            return
        generation = int(meta.get("generation") or 1)
        try:
            outcome = await reviewer.review_changed(
                namespace=namespace,
                name=name,
                generation=generation,
                spec=dict(spec),
                status=dict(status),
            )
        except RetryLater as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
        for key, value in outcome.status.items():
            patch.status[key] = value
        patch.status["conditions"] = _merged(status, [outcome.condition])


def _already_reported(status: kopf.Status) -> bool:
    conditions = status.get("conditions") or []
    return any(c.get("type") == COND_REPORTED and c.get("status") == "True" for c in conditions)


def _merged(status: kopf.Status, new: list[Condition]) -> list[dict[str, Any]]:
    conditions = list(status.get("conditions") or [])
    for condition in new:
        conditions = set_condition(conditions, condition)
    return conditions
