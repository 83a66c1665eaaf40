"""Ingest bookkeeping against a fake API layer: every re-queue, fallback and replay path."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from falco_reporter import metrics
from falco_reporter.models.falco import FalcoAlertSpec, normalise
from falco_reporter.receiver.drain import DrainConfig, Drainer
from falco_reporter.receiver.ingest import IngestConfig, IngestService
from falco_reporter.receiver.journal import Journal, JournalConfig
from tests.fakes import FakeAPI
from tests.objects import alert_for

FALLBACK = "falco-reporter"


def spec(ns: str, pod: str, when: str = "2026-11-20T09:12:44.120345678Z", **fields: Any) -> FalcoAlertSpec:
    payload = alert_for(ns, pod, **fields)
    payload["time"] = when
    return normalise(payload)


def service(api: FakeAPI, **config: Any) -> IngestService:
    return IngestService(api, api, IngestConfig(fallback_namespace=FALLBACK, **config))  # type: ignore[arg-type]


def dropped(reason: str) -> float:
    return metrics.INGEST_DROPPED.labels(reason)._value.get()


# --- direct mode (no journal) ------------------------------------------------------------------


async def test_repeats_survive_a_failed_flush_and_a_deletion_meanwhile():
    """A flush during an outage keeps the repeats with their spec; the object deleted meanwhile is
    recreated with every acknowledged occurrence."""
    api = FakeAPI({"shop", FALLBACK})
    ingest = service(api)
    first = await ingest.ingest(spec("shop", "web"))
    assert first.created and first.namespace == "shop"
    for i in range(4):
        assert ingest.merge_known(spec("shop", "web", when=f"2026-11-20T09:13:0{i}Z")) is not None
    api.down = True
    await ingest.flush()
    assert len(ingest.pending) == 1, "the repeats were dropped by a failed flush"
    api.down = False
    api.delete("shop", first.name)
    await ingest.flush()  # 404 -> recreate (1 occurrence) and re-queue the other 3
    await ingest.flush()
    assert api.count("shop", first.name) == 4
    assert not ingest.pending


async def test_namespace_deleted_while_cached_sends_repeats_to_the_fallback_without_looping():
    """Object and namespace gone, the alert already in the fallback: the repeats land there, no loop."""
    api = FakeAPI({"shop", FALLBACK})
    ingest = service(api)
    first = await ingest.ingest(spec("shop", "web"))
    api.objects[(FALLBACK, first.name)] = {
        **api.objects[("shop", first.name)],
        "metadata": {**api.objects[("shop", first.name)]["metadata"], "namespace": FALLBACK},
    }
    for _ in range(3):
        ingest.merge_known(spec("shop", "web"))
    api.namespaces.discard("shop")
    api.delete("shop", first.name)
    for _ in range(3):  # GET 404, POST 404, POST 409 in the fallback, then the repeats go there
        await ingest.flush()
    assert api.count(FALLBACK, first.name) == 4
    assert not ingest.pending
    calls = sum(api.calls.values())
    await ingest.flush()
    assert sum(api.calls.values()) == calls, "a flush with nothing pending still calls the API"


async def test_terminating_namespace_falls_back_and_the_answer_names_it():
    """A 403 'being terminated' on create stores the alert in the fallback and the result says so."""
    api = FakeAPI({"shop", FALLBACK})
    api.terminating.add("shop")
    result = await service(api).ingest(spec("shop", "web"))
    assert result.created and result.namespace == FALLBACK
    assert (FALLBACK, result.name) in api.objects


async def test_unwritable_repeats_are_dropped_after_bounded_attempts_with_metric_and_log(caplog):
    """Repeats the API server refuses (not an outage) are retried max_attempts times, then dropped, counted and logged."""
    api = FakeAPI({"shop", FALLBACK})
    ingest = service(api, max_attempts=3)
    await ingest.ingest(spec("shop", "web"))
    ingest.merge_known(spec("shop", "web"))
    ingest.merge_known(spec("shop", "web"))
    api.refuse_patches = True
    before = dropped("repeats_unwritable")
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            await ingest.flush()
    assert not ingest.pending
    assert dropped("repeats_unwritable") == before + 2
    assert "giving up on 2 repeats" in caplog.text


async def test_outage_does_not_count_towards_the_attempt_bound():
    """Flushes failing because the API server is down never drop repeats, however many there are."""
    api = FakeAPI({"shop", FALLBACK})
    ingest = service(api, max_attempts=2)
    first = await ingest.ingest(spec("shop", "web"))
    ingest.merge_known(spec("shop", "web"))
    api.down = True
    for _ in range(5):
        await ingest.flush()
    api.down = False
    await ingest.flush()
    assert api.count("shop", first.name) == 2


async def test_repeats_keep_a_sample_of_varying_values():
    """Distinct values of fields outside the fingerprint are kept in status.samples with counts."""
    api = FakeAPI({"shop", FALLBACK})
    ingest = service(api)
    first = await ingest.ingest(spec("shop", "web", **{"proc.pname": "sshd"}))
    for parent in ("containerd-shim", "runc", "runc"):
        ingest.merge_known(spec("shop", "web", **{"proc.pname": parent}))
    await ingest.flush()
    samples = api.objects[("shop", first.name)]["status"]["samples"]["proc.pname"]
    assert {s["value"]: s["count"] for s in samples} == {"sshd": 1, "containerd-shim": 1, "runc": 2}
    assert "container.id" not in api.objects[("shop", first.name)]["status"]["samples"]


async def test_shutdown_waits_for_requests_in_flight_before_the_last_flush():
    """A request still waiting on the API server when the stop comes gets its 202, and the repeat it
    counts is in the final flush (the flush used to run beside such requests and miss it)."""
    import aiohttp

    from falco_reporter.receiver.http import ReceiverSettings
    from falco_reporter.receiver.lifecycle import run_receiver
    from tests.operator_proc import free_port

    api = FakeAPI({"shop", FALLBACK})
    ingest = service(api, flush_interval=60)
    first = await ingest.ingest(spec("shop", "web"))
    other = service(api)  # another receiver's memory: ours does not know the object yet

    async def ready() -> bool:
        return True

    settings = ReceiverSettings(host="127.0.0.1", port=free_port())
    stop = asyncio.Event()
    server = asyncio.create_task(run_receiver(other, settings, ready, stop))
    await asyncio.sleep(0.3)
    api.create_delay = 1.0  # the create answers 409 after a second: then it is counted as a repeat
    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(
            session.post(f"http://127.0.0.1:{settings.port}/v1/alerts", json=alert_for("shop", "web"))
        )
        await asyncio.sleep(0.3)
        stop.set()
        response = await request
        assert response.status == 202
        assert (await response.json())["name"] == first.name
    await server
    assert api.count("shop", first.name) == 2


# --- journal mode ----------------------------------------------------------------------------


async def journaled(tmp_path, specs: list[FalcoAlertSpec]) -> Journal:
    journal = Journal(JournalConfig(tmp_path))
    await journal.open()
    stop = asyncio.Event()
    committer = asyncio.create_task(journal.run_committer(stop))
    await asyncio.gather(*(journal.append(s.model_dump_json(by_alias=True).encode()) for s in specs))
    stop.set()
    await committer
    return journal


async def test_drainer_stores_every_entry_once_even_when_replayed(tmp_path):
    """Entries drained, then drained again as after a crash before their delete: nothing created or counted twice."""
    api = FakeAPI({"shop", FALLBACK})
    specs = [spec("shop", "web")] * 5 + [spec("shop", "db")] * 2 + [spec("gone", "x")]
    journal = await journaled(tmp_path, specs)
    entries = await journal.read(100)
    assert await Drainer(journal, service(api)).drain(entries)
    assert journal.depth == 0
    totals = {key: api.count(*key) for key in api.objects}
    assert sorted(totals.values()) == [1, 2, 5] and len(api.objects) == 3
    assert any(ns == FALLBACK for ns, _ in api.objects), (
        "the alert of a missing namespace is not in the fallback"
    )
    # A crash after the writes but before the deletes: a new process replays the same entries.
    creates = api.calls["create"]
    assert await Drainer(journal, service(api)).drain(entries)
    assert {key: api.count(*key) for key in api.objects} == totals
    assert api.calls["create"] - creates == 3  # each answered 409 and changed nothing


async def test_drainer_keeps_entries_while_the_api_is_down_and_stores_them_after(tmp_path):
    """While the API server is down the drain fails and keeps every entry; once back, all are stored exactly."""
    api = FakeAPI({"shop", FALLBACK})
    journal = await journaled(tmp_path, [spec("shop", f"p{i % 7}") for i in range(50)])
    drainer = Drainer(journal, service(api))
    api.down = True
    assert not await drainer.drain(await journal.read(100))
    assert journal.depth == 50 and not api.objects
    api.down = False
    assert await drainer.drain(await journal.read(100))
    assert journal.depth == 0 and api.total() == 50 and len(api.objects) == 7


async def test_drainer_run_loop_drains_after_an_outage_and_stops(tmp_path):
    """The drain loop retries with back-off through an outage and empties the journal once the API is back."""
    api = FakeAPI({"shop", FALLBACK})
    journal = await journaled(tmp_path, [spec("shop", f"p{i}") for i in range(30)])
    api.down = True
    stop = asyncio.Event()
    task = asyncio.create_task(Drainer(journal, service(api), DrainConfig(backoff_max=0.2)).run(stop))
    await asyncio.sleep(0.5)
    assert journal.depth == 30
    api.down = False
    async with asyncio.timeout(10):
        while journal.depth:
            await asyncio.sleep(0.05)
    stop.set()
    await task
    assert api.total() == 30


async def test_drainer_gives_up_on_a_refused_group_with_metric(tmp_path, caplog):
    """A group the API server keeps refusing is dropped after max_attempts, counted and logged; others are stored."""
    api = FakeAPI({"shop", FALLBACK})
    journal = await journaled(tmp_path, [spec("shop", "web")] * 3)
    ingest = service(api)
    drainer = Drainer(journal, ingest, DrainConfig(max_attempts=2))
    await drainer.drain(await journal.read(1))  # the create
    api.refuse_patches = True
    before = dropped("journal_unwritable")
    assert not await drainer.drain(await journal.read(10))
    assert await drainer.drain(await journal.read(10))
    assert journal.depth == 0 and dropped("journal_unwritable") == before + 2
    assert "giving up on 2 journaled occurrences" in caplog.text


async def test_drainer_recreates_an_object_deleted_after_it_was_known(tmp_path):
    """Entries for an object deleted after its creation recreate it with their occurrences."""
    api = FakeAPI({"shop", FALLBACK})
    journal = await journaled(tmp_path, [spec("shop", "web")] * 4)
    drainer = Drainer(journal, service(api))
    assert await drainer.drain(await journal.read(1))
    api.objects.clear()
    assert await drainer.drain(await journal.read(10))
    assert api.total() == 3
