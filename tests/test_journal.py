"""The receiver's journal on its own: durable group-committed appends, limits, damage handling."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from falco_reporter import metrics
from falco_reporter.receiver.journal import FILE, Journal, JournalConfig, JournalFull


async def started(directory: Path, **limits: int) -> tuple[Journal, asyncio.Event, asyncio.Task[None]]:
    journal = Journal(JournalConfig(directory, **limits))
    await journal.open()
    stop = asyncio.Event()
    return journal, stop, asyncio.create_task(journal.run_committer(stop))


async def stopped(journal: Journal, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await task
    await journal.close()


async def test_appends_survive_reopen_in_order_and_done_entries_do_not(tmp_path):
    """Entries come back after a reopen in append order; entries marked done do not."""
    journal, stop, task = await started(tmp_path)
    seqs = [await journal.append(f"alert-{i}".encode()) for i in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    await journal.done(seqs[:2])
    await stopped(journal, stop, task)
    again, stop, task = await started(tmp_path)
    assert [e.body for e in await again.read(100)] == [b"alert-2", b"alert-3", b"alert-4"]
    assert again.depth == 3 and again.oldest_age() >= 0
    await stopped(again, stop, task)


async def test_concurrent_appends_share_commits(tmp_path):
    """200 appends at once need far fewer fsyncs (group commit) and all get distinct seqs."""
    journal, stop, task = await started(tmp_path)
    before = metrics.JOURNAL_FSYNC._sum.get(), sum(b.get() for b in metrics.JOURNAL_FSYNC._buckets)
    seqs = await asyncio.gather(*(journal.append(b"x" * 100) for _ in range(200)))
    commits = sum(b.get() for b in metrics.JOURNAL_FSYNC._buckets) - before[1]
    assert len(set(seqs)) == 200
    assert 1 <= commits <= 20, commits
    await stopped(journal, stop, task)


async def test_seq_is_never_reused_after_everything_was_done(tmp_path):
    """After every entry is done (and across a reopen) new entries get higher seqs."""
    journal, stop, task = await started(tmp_path)
    seqs = [await journal.append(b"a") for _ in range(3)]
    await journal.done(seqs)
    await stopped(journal, stop, task)
    again, stop, task = await started(tmp_path)
    assert await again.append(b"b") > max(seqs)
    assert again.id == journal.id
    await stopped(again, stop, task)


async def test_full_journal_refuses_and_recovers(tmp_path):
    """At its entry or byte limit the journal raises JournalFull (counted), and takes entries again once drained."""
    journal, stop, task = await started(tmp_path, max_entries=3, max_bytes=10_000)
    seqs = [await journal.append(b"e") for _ in range(3)]
    full = metrics.JOURNAL_FULL._value.get()
    with pytest.raises(JournalFull):
        await journal.append(b"e")
    assert journal.full and metrics.JOURNAL_FULL._value.get() == full + 1
    await journal.done(seqs[:1])
    assert not journal.full
    await journal.append(b"e")
    await stopped(journal, stop, task)
    small, stop, task = await started(tmp_path / "bytes", max_entries=100, max_bytes=50)
    await small.append(b"y" * 60)
    with pytest.raises(JournalFull):
        await small.append(b"y")
    await stopped(small, stop, task)


async def test_damaged_record_is_skipped_with_a_log_line(tmp_path, caplog):
    """A record whose body no longer matches its checksum is skipped (and removed), the others are read."""
    journal, stop, task = await started(tmp_path)
    for body in (b"one", b"two", b"three"):
        await journal.append(body)
    await stopped(journal, stop, task)
    with sqlite3.connect(tmp_path / FILE) as db:
        db.execute("UPDATE entries SET body = ? WHERE body = ?", (b"tw0", b"two"))
    again, stop, task = await started(tmp_path)
    assert [e.body for e in await again.read(10)] == [b"one", b"three"]
    assert "failed its checksum; skipped" in caplog.text
    assert again.depth == 2
    await stopped(again, stop, task)


def _append_and_die(directory: str, count: int) -> None:
    """Child process: append ``count`` entries durably, then exit without closing (a crash)."""

    async def main() -> None:
        journal, _stop, _task = await started(Path(directory))
        for i in range(count):
            await journal.append(f"entry-{i}".encode() * 50)
        os._exit(0)

    asyncio.run(main())


def test_torn_last_record_starts_cleanly(tmp_path, caplog):
    """A crash leaves a write-ahead log whose last frame is cut short: the journal opens, logs it,
    and keeps every whole record before it."""
    child = multiprocessing.get_context("spawn").Process(target=_append_and_die, args=(str(tmp_path), 20))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    wal = tmp_path / f"{FILE}-wal"
    assert wal.stat().st_size > 0, "the crash left no write-ahead log"
    intact = tmp_path / "intact"
    intact.mkdir()
    for name in (FILE, f"{FILE}-wal"):
        shutil.copy(tmp_path / name, intact / name)
    with wal.open("r+b") as f:  # tear the last frame: cut its second half off
        f.truncate(wal.stat().st_size - 700)

    async def reopen(directory: Path) -> list[bytes]:
        journal, stop, task = await started(directory)
        bodies = [e.body for e in await journal.read(100)]
        await journal.append(b"after")  # and it takes new entries
        await stopped(journal, stop, task)
        return bodies

    torn = asyncio.run(reopen(tmp_path))
    whole = asyncio.run(reopen(intact))
    assert len(whole) == 20
    assert 0 < len(torn) < 20 and torn == whole[: len(torn)]
    assert "was not closed cleanly" in caplog.text


def test_unreadable_journal_file_is_moved_aside(tmp_path, caplog):
    """A journal file that is not a database at all is kept aside for a human; the receiver starts empty."""
    (tmp_path / FILE).write_bytes(b"this is not sqlite" * 100)

    async def main() -> int:
        journal, stop, task = await started(tmp_path)
        await journal.append(b"new")
        depth = journal.depth
        await stopped(journal, stop, task)
        return depth

    assert asyncio.run(main()) == 1
    assert list(tmp_path.glob(f"{FILE}.corrupt-*")) and "unreadable" in caplog.text
