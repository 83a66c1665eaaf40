"""How kopf keeps its bookkeeping on our objects, and which objects it watches at all.

Our handlers are level-triggered: each compares the object with what it already did (its
conditions, ``status.reportRef``, ``status.suppression``) and does only what is missing. So
kopf needs no copy of the last handled spec: without one, every event is a "creation" to kopf
and reaches the same idempotent handler. Storing that copy cost one extra PATCH per alert and
about 1.4 KB per object (twice: in etcd and in every listed body the operator holds).

Handler retry progress lives in ``status.kopf`` (declared in both CRDs), so kopf writes it in
the same status PATCH as our results instead of a separate one on the main resource.
"""

from __future__ import annotations

from typing import Any

import kopf

from falco_reporter import API_GROUP
from falco_reporter.models.resources import ALERTREPORTS, REVIEW_FALSE_POSITIVE


class LevelTriggered(kopf.DiffBaseStorage):
    """A diff-base storage that remembers nothing: every event reaches the (idempotent) handlers."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        # kopf would deep-copy the whole body twice per event to build an essence we never use.
        return {}

    def fetch(self, *, body: Any) -> None:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


#: Server-side filter (the CRD declares spec.review.state selectable): the operator lists and
#: holds only the reports whose review is a false positive, not every report in the cluster.
REVIEWED_REPORTS = f"spec.review.state={REVIEW_FALSE_POSITIVE}"


def configure(settings: kopf.OperatorSettings, *, max_workers: int) -> None:
    """Apply our persistence, watch filters and concurrency to kopf's settings (at start-up)."""
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = LevelTriggered()
    settings.watching.field_selectors[f"{ALERTREPORTS}.{API_GROUP}"] = REVIEWED_REPORTS
    # List in pages: the first listing of a large namespace is not one giant response.
    settings.watching.chunk_size = 500
    # kopf starts a worker per object at once; with 10,000 alerts pending at start-up that was
    # 10,000 handlers in flight (550 MB). Bounded, the rest wait as raw events (235 MB, as fast).
    # A worker otherwise lingers 5 s for more events of its object, holding its slot.
    settings.queueing.worker_limit = max_workers
    settings.queueing.idle_timeout = 0.5
