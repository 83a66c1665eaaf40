"""A durable local journal of accepted alerts: SQLite in WAL mode, through the standard library.

The receiver answers 202 once an alert is in this journal and fsynced; a drainer then writes the
journal to FalcoAlerts and deletes what is stored. SQLite rather than a hand-written log file:
its write-ahead log checksums every frame and discards a torn tail on recovery, deletes in any
order cost nothing special (the drainer finishes entries out of order), and it ships with Python.
Each entry also carries a CRC32 of its body, checked on read, so a damaged record is skipped with
a log line instead of crashing the drainer.

Appends are group-committed: every append waiting while a commit runs goes into the next one,
so there is one fsync per batch, not per alert. All SQLite calls run on one thread of our own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import time
import uuid
import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falco_reporter import metrics
from falco_reporter.settings import DEFAULTS

log = logging.getLogger(__name__)
FILE = "journal.sqlite"


class JournalFull(Exception):
    """The journal holds its limit of entries or bytes: refuse (503), never drop silently."""


@dataclass(frozen=True)
class JournalConfig:
    directory: Path
    max_entries: int = DEFAULTS.journal_max_entries
    max_bytes: int = DEFAULTS.journal_max_bytes
    #: True: every group commit is fsynced before its 202 (survives a node crash with a persistent
    #: volume). False: written to the OS before the 202, fsynced at checkpoints (survives a crash
    #: of the process, kill -9 or OOM, not of the node; an emptyDir does not survive the node anyway).
    fsync: bool = True


@dataclass(frozen=True)
class Entry:
    seq: int
    at: float
    body: bytes


class Journal:
    """Append (durably, in groups), read in order, delete when done. One instance per directory."""

    def __init__(self, config: JournalConfig) -> None:
        self.config = config
        self._sync = "FULL" if config.fsync else "NORMAL"
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        self.id = ""
        #: Entries not yet done: seq -> (append time, body size), oldest first.
        self._live: OrderedDict[int, tuple[float, int]] = OrderedDict()
        self._live_bytes = 0
        self._queue: list[tuple[bytes, float, asyncio.Future[int]]] = []
        self._queued_bytes = 0
        self._wake: asyncio.Event | None = None
        self.appended: asyncio.Event | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (or create) the journal; entries left by a previous run are kept for the drainer."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._open)
        self._wake, self.appended = asyncio.Event(), asyncio.Event()
        metrics.JOURNAL_DEPTH.set_function(lambda: len(self._live))
        metrics.JOURNAL_BYTES.set_function(lambda: self._live_bytes)
        metrics.JOURNAL_OLDEST_AGE.set_function(self.oldest_age)

    def _open(self) -> None:
        directory = self.config.directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / FILE
        wal = directory / f"{FILE}-wal"
        if wal.exists() and wal.stat().st_size > 0:
            log.warning(
                "journal %s was not closed cleanly; SQLite replays its write-ahead log and "
                "discards a torn last record (frames are checksummed)",
                path,
            )
        try:
            self._db = self._connect(path)
            rows = self._db.execute("SELECT seq, at, length(body) FROM entries ORDER BY seq").fetchall()
        except sqlite3.DatabaseError as exc:
            # Unreadable as a whole (not a torn tail, which SQLite handles): keep it for a human.
            aside = directory / f"{FILE}.corrupt-{int(time.time())}"
            log.error("journal %s is unreadable (%s); moved to %s, starting empty", path, exc, aside)
            metrics.JOURNAL_CORRUPT.inc()
            if self._db is not None:
                self._db.close()
            shutil.move(str(path), str(aside))
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    (directory / f"{FILE}{suffix}").unlink()
            self._db = self._connect(path)
            rows = []
        for seq, at, size in rows:
            self._live[seq] = (at, size)
            self._live_bytes += size
        if rows:
            log.info("journal %s: %d entries from a previous run to drain", path, len(rows))

    def _connect(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._sync}")  # WAL + FULL: every commit fsyncs the log
        # AUTOINCREMENT: a seq is never reused, even after every entry was deleted, because the
        # FalcoAlerts remember the highest seq they counted (replays skip what is covered).
        db.execute(
            "CREATE TABLE IF NOT EXISTS entries "
            "(seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, crc INTEGER NOT NULL, body BLOB NOT NULL)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = db.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
        if row is None:
            self.id = uuid.uuid4().hex[:16]
            db.execute("INSERT INTO meta VALUES ('id', ?)", (self.id,))
        else:
            self.id = str(row[0])
        return db

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()  # a clean close checkpoints and removes the write-ahead log
            self._db = None

    # --- state ----------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Entries appended (or waiting to be) and not yet done."""
        return len(self._live) + len(self._queue)

    @property
    def full(self) -> bool:
        return (
            self.depth >= self.config.max_entries
            or self._live_bytes + self._queued_bytes >= self.config.max_bytes
        )

    def oldest_age(self) -> float:
        """Seconds since the oldest entry not yet done was appended (0 when empty)."""
        if not self._live:
            return 0.0
        at, _ = self._live[next(iter(self._live))]
        return max(0.0, time.time() - at)

    # --- append (group commit) ------------------------------------------------------------------

    async def append(self, body: bytes) -> int:
        """Append one record durably and return its seq; raises JournalFull at the limit."""
        if self.full:
            metrics.JOURNAL_FULL.inc()
            raise JournalFull(f"journal holds {self.depth} entries / {self._live_bytes} bytes")
        assert self._wake is not None, "journal not open"
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((body, time.time(), future))
        self._queued_bytes += len(body)
        self._wake.set()
        return await future

    async def run_committer(self, stop: asyncio.Event) -> None:
        """Commit queued appends, one transaction (one fsync) per batch, until stopped and empty."""
        assert self._wake is not None
        assert self.appended is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if stop.is_set():
                    return
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                self._wake.clear()
                continue
            batch, self._queue = self._queue, []
            self._queued_bytes -= sum(len(b) for b, _, _ in batch)
            try:
                seqs = await loop.run_in_executor(self._thread, self._write, [(b, at) for b, at, _ in batch])
            except Exception as exc:  # disk full, I/O error: these alerts are not acknowledged
                log.error("journal append of %d entries failed: %s", len(batch), exc)
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(JournalFull(f"journal write failed: {exc}"))
                continue
            for (body, at, future), seq in zip(batch, seqs, strict=True):
                self._live[seq] = (at, len(body))
                self._live_bytes += len(body)
                if not future.done():
                    future.set_result(seq)
            self.appended.set()

    def _write(self, rows: list[tuple[bytes, float]]) -> list[int]:
        assert self._db is not None
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seqs = [
                int(
                    db.execute(
                        "INSERT INTO entries (at, crc, body) VALUES (?, ?, ?)", (at, zlib.crc32(body), body)
                    ).lastrowid
                    or 0
                )
                for body, at in rows
            ]
        except BaseException:
            db.execute("ROLLBACK")
            raise
        started = time.perf_counter()
        db.execute("COMMIT")  # the fsync of the write-ahead log happens here (synchronous=FULL)
        metrics.JOURNAL_FSYNC.observe(time.perf_counter() - started)
        metrics.JOURNAL_APPENDED.inc(len(rows))
        return seqs

    # --- read and finish --------------------------------------------------------------------------

    async def read(self, limit: int) -> list[Entry]:
        """The oldest entries not yet done, in append order; damaged ones are dropped with a log line."""
        loop = asyncio.get_running_loop()
        entries, damaged = await loop.run_in_executor(self._thread, self._read, limit)
        if damaged:
            await self.done(damaged)
        return entries

    def _read(self, limit: int) -> tuple[list[Entry], list[int]]:
        assert self._db is not None
        rows: list[Any] = self._db.execute(
            "SELECT seq, at, crc, body FROM entries ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        entries, damaged = [], []
        for seq, at, crc, body in rows:
            data = bytes(body)
            if zlib.crc32(data) != crc:
                log.error("journal entry %d failed its checksum; skipped", seq)
                metrics.JOURNAL_CORRUPT.inc()
                damaged.append(seq)
                continue
            entries.append(Entry(int(seq), float(at), data))
        return entries, damaged

    async def done(self, seqs: list[int]) -> None:
        """Delete entries that are stored in the API (or given up on)."""
        if not seqs:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._delete, seqs)
        for seq in seqs:
            item = self._live.pop(seq, None)
            if item is not None:
                self._live_bytes -= item[1]

    def _delete(self, seqs: list[int]) -> None:
        assert self._db is not None
        # Not fsynced: a lost delete replays an entry, which the FalcoAlert's marks make a no-op.
        self._db.execute("PRAGMA synchronous=OFF")
        try:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM entries WHERE seq = ?", [(s,) for s in seqs])
            self._db.execute("COMMIT")
        finally:
            self._db.execute(f"PRAGMA synchronous={self._sync}")
