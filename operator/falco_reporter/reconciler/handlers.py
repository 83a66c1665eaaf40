"""kopf handlers: validate input, call one service, translate its errors, return status.

kopf stores no diff base for our objects (see ``persistence``), so every event is offered to
the handlers below; their ``when`` filters and the handlers themselves decide from the object
alone what is left to do.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from falco_reporter import API_GROUP, API_VERSION
from falco_reporter.models.resources import (
    ALERTREPORTS,
    COND_REPORTED,
    FALCOALERTS,
    REVIEW_FALSE_POSITIVE,
    Condition,
    set_condition,
)
from falco_reporter.reconciler.errors import InvalidFalcoAlert, RetryLater
from falco_reporter.reconciler.review import ReviewReconciler
from falco_reporter.reconciler.service import AlertReconciler

log = logging.getLogger(__name__)

WITHDRAW_ATTEMPTS = 6


def register(
    registry: kopf.OperatorRegistry, reconciler: AlertReconciler, reviewer: ReviewReconciler
) -> None:
    """Attach the handlers to ``registry`` (one registry per embedded operator)."""

    # `when` filters: an event with nothing to do (most of them) costs kopf no handler call.
    @kopf.on.create(API_GROUP, API_VERSION, FALCOALERTS, registry=registry, when=_unreported)
    async def report_alert(
        name: str,
        namespace: str | None,
        uid: str,
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
        patch.status["conditions"] = _merged(status, outcome.conditions)
        patch.status["reportRef"] = {"name": outcome.report_name, "occurrences": outcome.count}
        patch.status["observedGeneration"] = generation
        if outcome.enrichment is not None:
            patch.status["enrichment"] = outcome.enrichment.model_dump(by_alias=True, mode="json")

    @kopf.on.create(API_GROUP, API_VERSION, FALCOALERTS, registry=registry, when=_unsynced)
    async def sync_occurrences(
        name: str, namespace: str | None, uid: str, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        if namespace is None:
            return
        occurrences = dict(status.get("occurrences") or {})
        try:
            synced = await reconciler.sync_occurrences(namespace, name, occurrences, uid=uid)
        except RetryLater as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
        if synced:
            ref = dict(status.get("reportRef") or {})
            patch.status["reportRef"] = {**ref, "occurrences": int(occurrences.get("count", 0))}

    @kopf.on.cleanup(registry=registry)
    async def tell_pending_incidents(**_: Any) -> None:
        if reconciler.incidents is not None:
            await reconciler.incidents.flush()

    @kopf.on.event(API_GROUP, API_VERSION, FALCOALERTS, registry=registry, when=_deleted)
    async def alert_deleted(
        name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status, **_: Any
    ) -> None:
        # The report goes with its alert (ownerReference); the rest of its incident is re-told.
        if namespace is not None:
            reconciler.forget(namespace, name, dict(spec), dict(status))

    @kopf.on.create(API_GROUP, API_VERSION, ALERTREPORTS, registry=registry)
    async def reviewed_report(
        name: str,
        namespace: str | None,
        spec: kopf.Spec,
        status: kopf.Status,
        meta: kopf.Meta,
        patch: kopf.Patch,
        **_: Any,
    ) -> None:
        # Only reports reviewed as false positives reach here (a server-side field selector).
        if namespace is None or ((spec.get("review") or {}).get("state")) != REVIEW_FALSE_POSITIVE:
            return
        generation = int(meta.get("generation") or 1)
        try:
            outcome = await reviewer.accept(
                namespace=namespace,
                name=name,
                generation=generation,
                spec=dict(spec),
                status=dict(status),
            )
        except RetryLater as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
        if outcome is None:
            return  # already accepted: nothing to write
        for key, value in outcome.status.items():
            patch.status[key] = value
        patch.status["conditions"] = _merged(status, [outcome.condition])

    @kopf.on.event(API_GROUP, API_VERSION, ALERTREPORTS, registry=registry)
    async def review_withdrawn(name: str, namespace: str | None, type: str, **_: Any) -> None:
        # A report whose review leaves false-positive drops out of the watched set, which the
        # watch reports as DELETED (with the old body): look at the object to tell the cases apart.
        if type != "DELETED" or namespace is None:
            return
        # kopf does not retry event handlers: retry here, briefly. Should it still fail, the
        # leftover suppression is inert (readers also require spec.review.state).
        for attempt in range(WITHDRAW_ATTEMPTS):
            try:
                await reviewer.withdraw_if_changed(namespace, name)
                return
            except RetryLater as exc:
                if attempt + 1 == WITHDRAW_ATTEMPTS:
                    log.warning("withdrawing the false positive of %s/%s failed: %s", namespace, name, exc)
                    return
                await asyncio.sleep(min(exc.delay, 10))


def _deleted(type: str, **_: Any) -> bool:
    return type == "DELETED"


def _unreported(status: kopf.Status, **_: Any) -> bool:
    return not _already_reported(status)


def _unsynced(status: kopf.Status, **_: Any) -> bool:
    """Reported, and the alert's count differs from what was last copied into the report."""
    count = int((status.get("occurrences") or {}).get("count", 0))
    return (
        bool(count)
        and _already_reported(status)
        and count != int((status.get("reportRef") or {}).get("occurrences", 0))
    )


def _already_reported(status: kopf.Status) -> bool:
    conditions = status.get("conditions") or []
    return any(c.get("type") == COND_REPORTED and c.get("status") == "True" for c in conditions)


def _merged(status: kopf.Status, new: list[Condition]) -> list[dict[str, Any]]:
    conditions = list(status.get("conditions") or [])
    for condition in new:
        conditions = set_condition(conditions, condition)
    return conditions
