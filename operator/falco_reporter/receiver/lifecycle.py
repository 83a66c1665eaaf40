"""Run the receiver with its background work, and shut it down in the order that loses nothing.

On stop: the server stops accepting and waits for in-flight requests (each may still be appending
to the journal or creating an object); only then do the background workers get their stop, so
the last flush (or drain) sees every acknowledged alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from falco_reporter.receiver.drain import DrainConfig, Drainer
from falco_reporter.receiver.http import ReadyProbe, ReceiverSettings, build_app, serve
from falco_reporter.receiver.ingest import IngestService
from falco_reporter.receiver.journal import Journal

log = logging.getLogger(__name__)


async def run_receiver(
    service: IngestService,
    settings: ReceiverSettings,
    probe: ReadyProbe,
    stop: asyncio.Event,
    *,
    journal: Journal | None = None,
    drain: DrainConfig | None = None,
) -> None:
    """Serve until ``stop``; then finish requests, then the final flush (or drain) and close."""
    workers_stop = asyncio.Event()
    work: list[Coroutine[Any, Any, None]]
    if journal is not None:
        await journal.open()
        work = [journal.run_committer(workers_stop), Drainer(journal, service, drain).run(workers_stop)]
    else:
        work = [service.run_flusher(workers_stop)]
    tasks = [asyncio.create_task(w, name="receiver-worker") for w in work]
    try:
        await serve(build_app(service, settings, probe, journal), settings, stop)
    finally:
        workers_stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if journal is not None:
            await journal.close()
        log.info("receiver stopped")
