"""Act on a reviewer's decision: a false-positive review becomes a validated Falco exception.

An accepted false positive is a durable decision, so the report drops its ownerReference
(it survives the deletion of its FalcoAlert) and is labelled for `falco-reporter
suppressions`. A later alert with the same fingerprint lands on the same report name and is
marked suppressed instead of being written again (no model call).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from falco_reporter.knowledge.base import KnowledgeBase
from falco_reporter.kube.errors import KubeError, KubeUnavailable
from falco_reporter.kube.resources import CustomResources
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.resources import COND_FALSE_POSITIVE, LABEL_FALSE_POSITIVE, Condition, now_rfc3339
from falco_reporter.reconciler.service import RetryLater
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

    async def review_changed(
        self,
        *,
        namespace: str,
        name: str,
        generation: int,
        spec: dict[str, Any],
        status: dict[str, Any],
    ) -> ReviewOutcome:
        """Accept or withdraw a false positive according to spec.review.state."""
        review = spec.get("review") or {}
        try:
            if review.get("state") != "false-positive":
                await asyncio.to_thread(
                    self._reports.patch,
                    namespace,
                    name,
                    {"metadata": {"labels": {LABEL_FALSE_POSITIVE: None}}},
                )
                return ReviewOutcome(
                    {"suppression": None},
                    Condition(
                        type=COND_FALSE_POSITIVE,
                        status="False",
                        reason="NotFalsePositive",
                        message=f"review state is {review.get('state', 'new')}",
                        observed_generation=generation,
                    ),
                )
            if status.get("suppression"):
                return ReviewOutcome(
                    {},
                    Condition(
                        type=COND_FALSE_POSITIVE,
                        status="True",
                        reason="Accepted",
                        message="exception already produced",
                        observed_generation=generation,
                    ),
                )
            alert = await self._alert(namespace, name, spec)
        except KubeUnavailable as exc:
            raise RetryLater(str(exc), delay=5) from exc
        except KubeError as exc:
            raise RetryLater(str(exc), delay=30) from exc
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
        try:
            # Durable: keep the decision (and its report) when the FalcoAlert is deleted.
            await asyncio.to_thread(
                self._reports.patch,
                namespace,
                name,
                {"metadata": {"ownerReferences": None, "labels": {LABEL_FALSE_POSITIVE: "true"}}},
            )
        except KubeError as exc:
            raise RetryLater(str(exc), delay=5) from exc
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

    async def _alert(self, namespace: str, name: str, spec: dict[str, Any]) -> FalcoAlertSpec:
        obj = await asyncio.to_thread(self._alerts.find, namespace, name)
        if obj is not None:
            try:
                return FalcoAlertSpec.model_validate(obj["spec"])
            except ValidationError:
                pass
        return alert_from_report(spec)
