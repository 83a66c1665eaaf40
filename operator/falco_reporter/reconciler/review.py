"""Act on a reviewer's decision: a false-positive review becomes a validated Falco exception.

An accepted false positive is a durable decision, so the report drops its ownerReference
(it survives the deletion of its FalcoAlert) and is labelled for `falco-reporter
suppressions`. A later alert with the same fingerprint lands on the same report name and is
marked suppressed instead of being written again (no model call).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from falco_reporter.knowledge.base import KnowledgeBase
from falco_reporter.kube.errors import KubeNotFound
from falco_reporter.kube.resources import CustomResources
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.resources import (
    COND_FALSE_POSITIVE,
    LABEL_FALSE_POSITIVE,
    REVIEW_FALSE_POSITIVE,
    Condition,
    now_rfc3339,
    set_condition,
)
from falco_reporter.reconciler.errors import retry_on_api_errors
from falco_reporter.reporting.suppression import SuppressionError, alert_from_report, build_suppression


@dataclass(frozen=True)
class ReviewOutcome:
    status: dict[str, Any]
    condition: Condition


class ReviewReconciler:
    def __init__(self, alerts: CustomResources, reports: CustomResources, kb: KnowledgeBase) -> None:
        self._alerts = alerts
        self._reports = reports
        self._kb = kb

    async def accept(
        self,
        *,
        namespace: str,
        name: str,
        generation: int,
        spec: dict[str, Any],
        status: dict[str, Any],
    ) -> ReviewOutcome | None:
        """Produce the Falco exception for a false-positive review; None when it already exists."""
        review = spec.get("review") or {}
        if status.get("suppression") or _refused(status, generation):
            return None
        with retry_on_api_errors():
            alert = await self._alert(namespace, name, spec)
        try:
            snippet, result = build_suppression(self._kb, alert)
        except SuppressionError as exc:
            return ReviewOutcome(
                {},
                Condition(
                    type=COND_FALSE_POSITIVE,
                    status="False",
                    reason="NoExceptionPossible",
                    message=str(exc)[:1000],
                    observed_generation=generation,
                ),
            )
        with retry_on_api_errors():
            # Durable: keep the decision (and its report) when the FalcoAlert is deleted.
            await self._reports.patch(
                namespace,
                name,
                {"metadata": {"ownerReferences": None, "labels": {LABEL_FALSE_POSITIVE: "true"}}},
            )
        suppression = {
            "rule": alert.rule,
            "exception": snippet,
            "validated": result.summary(),
            "fingerprint": alert.fingerprint,
            "acceptedBy": str(review.get("by", "")),
            "acceptedAt": now_rfc3339(),
        }
        return ReviewOutcome(
            {"suppression": suppression},
            Condition(
                type=COND_FALSE_POSITIVE,
                status="True",
                reason="Accepted",
                message="Falco exception produced for exactly this pattern",
                observed_generation=generation,
            ),
        )

    async def withdraw_if_changed(self, namespace: str, name: str) -> None:
        """The report left the false-positive set (or was deleted): undo the acceptance if it stands.

        A watch reports "no longer matches the selector" as a DELETED event with the old body,
        the same as a real deletion, so the current object decides.
        """
        with retry_on_api_errors(), contextlib.suppress(KubeNotFound):  # deleted meanwhile: nothing to undo
            report = await self._reports.find(namespace, name)
            if report is None:
                return
            state = ((report.get("spec") or {}).get("review") or {}).get("state") or "new"
            status = report.get("status") or {}
            labels = (report.get("metadata") or {}).get("labels") or {}
            if state == REVIEW_FALSE_POSITIVE or (
                not status.get("suppression") and LABEL_FALSE_POSITIVE not in labels
            ):
                return
            condition = Condition(
                type=COND_FALSE_POSITIVE,
                status="False",
                reason="NotFalsePositive",
                message=f"review state is {state}",
                observed_generation=int((report.get("metadata") or {}).get("generation") or 1),
            )
            await self._reports.patch(namespace, name, {"metadata": {"labels": {LABEL_FALSE_POSITIVE: None}}})
            conditions = set_condition(list(status.get("conditions") or []), condition)
            await self._reports.patch_status(
                namespace,
                name,
                {"status": {"suppression": None, "conditions": conditions}},
            )

    async def _alert(self, namespace: str, name: str, spec: dict[str, Any]) -> FalcoAlertSpec:
        obj = await self._alerts.find(namespace, name)
        if obj is not None:
            try:
                return FalcoAlertSpec.model_validate(obj["spec"])
            except ValidationError:
                pass
        return alert_from_report(spec)


def _refused(status: dict[str, Any], generation: int) -> bool:
    """This generation was already found to admit no exact exception (nothing new to try)."""
    return any(
        c.get("type") == COND_FALSE_POSITIVE
        and c.get("reason") == "NoExceptionPossible"
        and c.get("observedGeneration") == generation
        for c in status.get("conditions") or []
    )
