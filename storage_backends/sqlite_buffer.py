"""The embedded-mode write buffer: a table in the service's SQLite file, flushed by a background thread.

With no ``REDIS_URL`` the service runs on one machine on one SQLite file, and the buffer lives in
that file (the ``persistence_buffer*`` tables of ``storage_backends.models``). It keeps the Redis
buffer's semantics (all-or-nothing adds, coalescing, sequence numbers, compare-and-delete after
commit, tombstones, capacity by records and bytes, failure counts, token-owned flush locks) and
its durability: ``add`` returns only after its transaction is committed to the write-ahead log,
so a 202 survives a ``kill -9`` of any process.

    buffer = SQLiteWriteBuffer()                       # the "default" database, which must be SQLite
    buffer.add("translation_sessions", [{"session_id": "s-1", ...}])

Durability and PRAGMAs (set for every SQLite connection in ``persistence_site.config``):

- ``journal_mode=WAL``: readers never wait for the writer, and a commit is one append to the log.
- ``synchronous=FULL``: every commit is fsynced to the log before it returns. A ``kill -9`` could
  not lose a commit even with NORMAL (the data is in the operating system's page cache, which
  outlives the process), but NORMAL lets a *power loss* or an OS crash drop the last commits; with
  FULL a 202 survives those too, as long as the disk honours fsync. The cost is one fsync per
  batch (not per record), a millisecond or less on an SSD.
- ``transaction_mode=IMMEDIATE``: every transaction takes SQLite's single write lock at BEGIN, so
  two writers queue on the busy timeout instead of one failing with "database is locked" when it
  upgrades a read transaction. The buffer refuses to start without it.

Why raw SQL on Django's connection (not the ORM, not a private sqlite3 connection): each change is a
few SQLite statements inside one ``BEGIN IMMEDIATE`` (an upsert that keeps ``created_us``, a
compare-and-delete by seq, a lock take-over) that the ORM cannot express without extra round trips;
and sharing the thread's Django connection means a buffer call made inside a caller's transaction
(``dead_letters_requeue`` holds one) joins it instead of waiting on a second connection for the
write lock that its own thread holds. Raw cursors also keep the record data out of DEBUG's query log.

Concurrency: every process (gunicorn workers, ``manage.py flush_buffer``) and every thread uses its
own connection on the same file; SQLite serialises the writes. The flush lock is a row with an owner
token and an expiry (``BUFFER_LOCK_TTL``), renewed by ``extend_lease`` and released only by its
owner; a lock whose owner process is gone (``kill -9``) is taken over at once instead of after the
expiry. The buffer has one shard whatever ``BUFFER_SHARDS`` says: its flushers run in one process
and SQLite serialises their writes anyway, so parallel flushers would gain nothing. Acceptance times come from this machine's clock and never go backwards: the last one is
kept in the table, and a clock stepped back reuses it.

Cost: an add is one transaction (a few indexed statements plus one COUNT/SUM over the buffer table's
covering index, about a millisecond per 10,000 buffered records) and one fsync. Measured on the
development machine: a batch of 1,000 tasks 20-70 ms; a batch of 10 with 100,000 records buffered
(the database down) about 13 ms. Memory: one batch, one ``scan`` chunk.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction

from core import tracing
from core.exceptions import BufferFull, RecordsBeingDeleted, StorageUnavailable
from storage_backends import catalog
from storage_backends.buffer import ParentsDeleted, ParentsNotBuffered, WriteBuffer, child_of
from storage_backends.records import BufferedRecord, decode, encode

logger = logging.getLogger(__name__)

BUFFER = "persistence_buffer"
TOMBSTONES = "persistence_buffer_tombstones"
LOCKS = "persistence_buffer_locks"
STATE = "persistence_buffer_state"

# Entries per compare-and-delete transaction: each holds the write lock for a few milliseconds, so
# batch writes arriving during a flush do not queue behind it for long.
REMOVE_SLICE = 500
# How often a flusher waiting for a lock held elsewhere asks again.
LOCK_POLL_SECONDS = 0.05
# After a failed background flush the thread waits this long before the next round (the size
# trigger would otherwise retry at once, in a loop, while the database is down).
FAILED_FLUSH_PAUSE_SECONDS = 1.0

_COLUMNS = "record_id, seq, created_us, updated_us, data"

_UPSERT = f"""
INSERT INTO {BUFFER} (collection, record_id, session_id, seq, created_us, updated_us, size, failures, data)
VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
ON CONFLICT (collection, record_id) DO UPDATE SET
  session_id = excluded.session_id, seq = excluded.seq, updated_us = excluded.updated_us,
  size = excluded.size, failures = 0, data = excluded.data
"""
# Append-only collections (declared ``keep_first``, storage_backends.catalog): the first accepted write of an id stays buffered.
_INSERT_KEEP_FIRST = f"""
INSERT INTO {BUFFER} (collection, record_id, session_id, seq, created_us, updated_us, size, failures, data)
VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
ON CONFLICT (collection, record_id) DO NOTHING
"""


def _now_us() -> int:
    return time.time_ns() // 1000


def _ids_json(ids: Iterable[str]) -> str:
    """Ids as one JSON array parameter, read back with ``json_each``: one statement (one consistent
    read) for any number of ids, with no limit on SQL variables."""
    return orjson.dumps(list(ids)).decode()


def _entry(row: tuple[Any, ...]) -> BufferedRecord:
    record_id, seq, created_us, updated_us, data = row
    return BufferedRecord(record_id, seq, created_us, updated_us, bytes(data))


def _process_start(pid: int) -> str:
    """The start time of a process (clock ticks since boot), so a reused pid is not taken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(owner: str) -> bool:
    """Whether the process that took a lock still runs (always True for another host's owner)."""
    try:
        host, pid_text, started, _token = owner.rsplit(":", 3)
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname() or pid == os.getpid():
        return True  # another machine, or another thread of this process: trust the expiry
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _process_start(pid) == started


class _SQLiteFlushLock:
    def __init__(self, buffer: SQLiteWriteBuffer, name: str, owner: str) -> None:
        self._buffer = buffer
        self.name = name
        self.owner = owner

    def release(self) -> None:
        try:
            with self._buffer._write() as cursor:
                cursor.execute(f"DELETE FROM {LOCKS} WHERE name = ? AND owner = ?", (self.name, self.owner))
                released = cursor.rowcount
        except StorageUnavailable:
            logger.warning("flush lock not released; it expires", extra={"lock": self.name})
            return
        if not released:
            logger.warning("flush lock expired before release", extra={"lock": self.name})

    def extend_lease(self) -> bool:
        now = _now_us()
        with self._buffer._write() as cursor:
            cursor.execute(
                f"UPDATE {LOCKS} SET expires_us = ? WHERE name = ? AND owner = ? AND expires_us > ?",
                (now + settings.BUFFER_LOCK_TTL * 1_000_000, self.name, self.owner, now),
            )
            return cursor.rowcount == 1


class SQLiteWriteBuffer(WriteBuffer):
    """``background=True`` (the embedded service) runs the flusher thread and flushes at exit.

    ``using``: the Django database alias whose SQLite file holds the buffer tables.
    """

    def __init__(self, *, using: str = "default", background: bool = False) -> None:
        db = connections.settings.get(using, {})
        if not db.get("ENGINE", "").endswith("sqlite3"):
            raise ImproperlyConfigured(
                "The embedded write buffer needs a SQLite database (DATABASE_URL=sqlite:///path); "
                "with MySQL/MariaDB set REDIS_URL (redis://host:6379/0) for the Redis buffer."
            )
        if (db.get("OPTIONS", {}).get("transaction_mode") or "").upper() != "IMMEDIATE":
            raise ImproperlyConfigured(
                f"DATABASES[{using!r}]['OPTIONS']['transaction_mode'] must be 'IMMEDIATE' for the "
                "embedded write buffer (persistence_site.config sets it for sqlite:/// URLs)."
            )
        self.using = using
        self._background = background
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._start_lock = threading.Lock()

    # --- connection ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """A cursor inside one ``BEGIN IMMEDIATE`` transaction of this thread's connection (or inside
        the caller's transaction, as a savepoint); committed when the block ends, rolled back if it
        raises. SQLite errors (busy past the timeout, disk full, tables missing) become
        ``StorageUnavailable``: nothing was changed."""
        try:
            with transaction.atomic(using=self.using):
                cursor = connections[self.using].connection.cursor()
                try:
                    yield cursor
                finally:
                    cursor.close()
        except (sqlite3.Error, DatabaseError) as exc:
            raise self._unavailable(exc) from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement (SQLite reads each statement from one snapshot), outside any transaction of
        its own: readers never wait for the write lock."""
        try:
            connection = connections[self.using]
            connection.ensure_connection()
            cursor = connection.connection.cursor()
            try:
                rows: list[tuple[Any, ...]] = cursor.execute(sql, params).fetchall()
                return rows
            finally:
                cursor.close()
        except (sqlite3.Error, DatabaseError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> StorageUnavailable:
        logger.error("embedded buffer unavailable", extra={"error": str(exc)})
        hint = " (run manage.py migrate)" if "no such table" in str(exc) else ""
        return StorageUnavailable(
            f"The write buffer (SQLite) cannot be used{hint}: {exc}. Nothing from this request was "
            "accepted; retry later."
        )

    # --- writes --------------------------------------------------------------------------
    def add(
        self, collection: str, records: list[dict[str, Any]], *, require_parents: Collection[str] = ()
    ) -> None:
        declared = catalog.spec(collection)
        id_field = declared.id_field
        parent = catalog.parent(collection)
        parent_field = declared.parent_field if parent is not None else None
        is_parent = catalog.child(collection) is not None
        # The session_id column holds a child record's parent id ("" for others).
        rows = [(r[id_field], r[parent_field] if parent_field else "", encode(r)) for r in records]
        incoming_bytes = sum(len(data) for _, _, data in rows)
        with (
            tracing.span("buffer.add", collection=collection, record_count=len(rows), store="sqlite"),
            self._write() as cursor,
        ):
            clock = _now_us()
            if parent_field:
                deleted = cursor.execute(
                    f"SELECT session_id FROM {TOMBSTONES} "
                    "WHERE session_id IN (SELECT value FROM json_each(?)) AND expires_us > ?",
                    (_ids_json({sid for _, sid, _ in rows}), clock),
                ).fetchall()
                if deleted:
                    raise ParentsDeleted({sid for (sid,) in deleted})
            elif is_parent:
                deleting = cursor.execute(
                    f"SELECT session_id FROM {TOMBSTONES} WHERE session_id IN (SELECT value FROM json_each(?)) "
                    "AND deleting AND expires_us > ?",
                    (_ids_json(record_id for record_id, _, _ in rows), clock),
                ).fetchall()
                if deleting:
                    raise RecordsBeingDeleted({sid for (sid,) in deleting}, noun=declared.item_type)
            if require_parents:
                found = cursor.execute(
                    f"SELECT record_id FROM {BUFFER} "
                    "WHERE collection = ? AND record_id IN (SELECT value FROM json_each(?))",
                    (parent, _ids_json(set(require_parents))),
                ).fetchall()
                missing = set(require_parents) - {sid for (sid,) in found}
                if missing:
                    raise ParentsNotBuffered(missing)
            count, size = cursor.execute(f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM {BUFFER}").fetchone()
            if count + len(rows) > settings.BUFFER_CAPACITY:
                raise BufferFull(
                    f"The write buffer holds {count} records (capacity {settings.BUFFER_CAPACITY}); "
                    "retry after it drains."
                )
            if size + incoming_bytes > settings.BUFFER_CAPACITY_BYTES:
                raise BufferFull(
                    f"The write buffer holds {size} bytes of records (capacity "
                    f"{settings.BUFFER_CAPACITY_BYTES}); retry after it drains."
                )
            state = cursor.execute(f"SELECT seq, last_accepted_us FROM {STATE} WHERE id = 1").fetchone()
            seq, last_accepted = state or (0, 0)
            # Never before an earlier acceptance: the database's guard on updated_at orders writes
            # by it, so a clock stepped back must not make a newer write look older.
            now = max(clock, last_accepted)
            cursor.executemany(
                _INSERT_KEEP_FIRST if catalog.spec(collection).keep_first else _UPSERT,
                [
                    (collection, record_id, sid, seq + i, now, now, len(data), data)
                    for i, (record_id, sid, data) in enumerate(rows, start=1)
                ],
            )
            if is_parent:  # the parents are written anew: their children are welcome again
                cursor.execute(
                    f"DELETE FROM {TOMBSTONES} WHERE session_id IN (SELECT value FROM json_each(?))",
                    (_ids_json(record_id for record_id, _, _ in rows),),
                )
            cursor.execute(
                f"INSERT INTO {STATE} (id, seq, last_accepted_us, last_flush) VALUES (1, ?, ?, '') "
                "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, last_accepted_us = excluded.last_accepted_us",
                (seq + len(rows), now),
            )
        self._ensure_flusher()
        if count + len(rows) >= settings.BUFFER_FLUSH_SIZE:
            self.request_flush()

    def begin_delete(self, collection: str, ids: Collection[str], *, keep_active: bool) -> dict[str, int]:
        child = child_of(collection)
        dropped: dict[str, int] = {}
        with self._write() as cursor:
            now = _now_us()
            cursor.execute(f"DELETE FROM {TOMBSTONES} WHERE expires_us <= ?", (now,))
            for record_id in ids:
                if (
                    keep_active
                    and cursor.execute(
                        f"SELECT 1 FROM {BUFFER} WHERE (collection = ? AND record_id = ?) "
                        "OR (collection = ? AND session_id = ?) LIMIT 1",
                        (collection, record_id, child, record_id),
                    ).fetchone()
                ):
                    continue
                cursor.execute(
                    f"DELETE FROM {BUFFER} WHERE collection = ? AND record_id = ?", (collection, record_id)
                )
                cursor.execute(
                    f"DELETE FROM {BUFFER} WHERE collection = ? AND session_id = ?", (child, record_id)
                )
                dropped[record_id] = cursor.rowcount
                self._tombstone(cursor, record_id, now, deleting=True)
        return dropped

    def end_delete(self, collection: str, ids: Collection[str], *, deleted: bool) -> None:
        child_of(collection)
        with self._write() as cursor:
            now = _now_us()
            for record_id in ids:
                if deleted:
                    self._tombstone(cursor, record_id, now, deleting=False)
                else:
                    cursor.execute(f"DELETE FROM {TOMBSTONES} WHERE session_id = ?", (record_id,))

    @staticmethod
    def _tombstone(cursor: sqlite3.Cursor, record_id: str, now: int, *, deleting: bool) -> None:
        cursor.execute(
            f"INSERT INTO {TOMBSTONES} (session_id, expires_us, deleting) VALUES (?, ?, ?) "
            "ON CONFLICT (session_id) DO UPDATE SET expires_us = excluded.expires_us, deleting = excluded.deleting",
            (record_id, now + settings.BUFFER_TOMBSTONE_TTL * 1_000_000, deleting),
        )

    # --- reads ---------------------------------------------------------------------------
    def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        return self.get_many(collection, [record_id]).get(record_id)

    def get_many(self, collection: str, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(record_ids))
        if not ids:
            return {}
        rows = self._read(
            f"SELECT {_COLUMNS} FROM {BUFFER} "
            "WHERE collection = ? AND record_id IN (SELECT value FROM json_each(?))",
            (collection, _ids_json(ids)),
        )
        return {row[0]: decode(collection, _entry(row)) for row in rows}

    def records(self, collection: str) -> Iterator[dict[str, Any]]:
        for chunk in self.scan(collection, 1000):
            for entry in chunk:
                yield decode(collection, entry)

    def children(self, collection: str, parent_id: str) -> list[dict[str, Any]]:
        child = child_of(collection)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM {BUFFER} WHERE session_id = ? AND collection = ?", (parent_id, child)
        )
        return [decode(child, _entry(row)) for row in rows]

    # --- the flusher's side ----------------------------------------------------------------
    def scan(
        self, collection: str, chunk_size: int, shard: int | None = None
    ) -> Iterator[list[BufferedRecord]]:
        # One shard (the embedded mode is one process: BUFFER_SHARDS does not apply), so ``shard``
        # is 0 or None, both meaning everything.
        # Pages in row order: a rewrite keeps its row (the upsert updates it in place), so each id is
        # seen once per scan unless it is purged and written again meanwhile.
        last = 0
        while True:
            rows = self._read(
                f"SELECT id, {_COLUMNS} FROM {BUFFER} WHERE collection = ? AND id > ? ORDER BY id LIMIT ?",
                (collection, last, chunk_size),
            )
            if not rows:
                return
            yield [_entry(row[1:]) for row in rows]
            if len(rows) < chunk_size:
                return
            last = rows[-1][0]

    def remove_flushed(self, collection: str, entries: list[BufferedRecord]) -> int:
        removed = 0
        for start in range(0, len(entries), REMOVE_SLICE):
            with self._write() as cursor:
                cursor.executemany(
                    f"DELETE FROM {BUFFER} WHERE collection = ? AND record_id = ? AND seq = ?",
                    [(collection, e.record_id, e.seq) for e in entries[start : start + REMOVE_SLICE]],
                )
                removed += cursor.rowcount
        return removed

    def record_failures(self, collection: str, entries: list[BufferedRecord]) -> dict[str, int]:
        """Entries no longer buffered as that write (flushed, purged or rewritten) count nothing: 0."""
        attempts: dict[str, int] = {}
        with self._write() as cursor:
            for entry in entries:
                row = cursor.execute(
                    f"UPDATE {BUFFER} SET failures = failures + 1 "
                    "WHERE collection = ? AND record_id = ? AND seq = ? RETURNING failures",
                    (collection, entry.record_id, entry.seq),
                ).fetchone()
                attempts[entry.record_id] = row[0] if row else 0
        return attempts

    def retrying_count(self) -> int:
        return int(self._read(f"SELECT COUNT(*) FROM {BUFFER} WHERE failures > 0")[0][0])

    def flush_lock(self, collection: str, wait: float, shard: int = 0) -> _SQLiteFlushLock | None:
        name = f"flush:{collection}"
        owner = f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid())}:{uuid.uuid4().hex}"
        deadline = time.monotonic() + wait
        while True:
            if self._take_lock(name, owner):
                return _SQLiteFlushLock(self, name, owner)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(LOCK_POLL_SECONDS, remaining))

    def _take_lock(self, name: str, owner: str) -> bool:
        with self._write() as cursor:
            now = _now_us()
            held = cursor.execute(f"SELECT owner, expires_us FROM {LOCKS} WHERE name = ?", (name,)).fetchone()
            if held is not None and held[1] > now and _owner_alive(held[0]):
                return False
            if held is not None and held[1] > now:
                logger.warning("flush lock of a process that is gone taken over", extra={"lock": name})
            cursor.execute(
                f"INSERT INTO {LOCKS} (name, owner, expires_us) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_us = excluded.expires_us",
                (name, owner, now + settings.BUFFER_LOCK_TTL * 1_000_000),
            )
        return True

    def mark_flushed(self) -> None:
        stamp = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        with self._write() as cursor:
            cursor.execute(
                f"INSERT INTO {STATE} (id, seq, last_accepted_us, last_flush) VALUES (1, 0, 0, ?) "
                "ON CONFLICT (id) DO UPDATE SET last_flush = excluded.last_flush",
                (stamp,),
            )

    def request_flush(self) -> None:
        """Wakes this process's flusher thread (the one that took the write); no other process."""
        self._wake.set()

    # --- state ---------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            self._read(f"SELECT 1 FROM {STATE} LIMIT 1")
        except StorageUnavailable:
            return False
        return True

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(catalog.buffered_collections(), 0)
        counts.update(self._read(f"SELECT collection, COUNT(*) FROM {BUFFER} GROUP BY collection"))
        return counts

    def size_bytes(self) -> int:
        return int(self._read(f"SELECT COALESCE(SUM(size), 0) FROM {BUFFER}")[0][0])

    def last_flush(self) -> str | None:
        rows = self._read(f"SELECT last_flush FROM {STATE} WHERE id = 1")
        return (rows[0][0] or None) if rows else None

    def clear(self) -> None:
        """Empty every buffer table (tests use it; never the service)."""
        with self._write() as cursor:
            for table in (BUFFER, TOMBSTONES, LOCKS, STATE):
                cursor.execute(f"DELETE FROM {table}")

    # --- the background flusher ----------------------------------------------------------------
    def start_background(self) -> None:
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        # The pid check: a thread does not survive fork, so a worker forked from a process that had
        # started one (gunicorn --preload) starts its own.
        if not self._background or (self._thread is not None and self._thread_pid == os.getpid()):
            return
        with self._start_lock:
            if self._thread is not None and self._thread_pid == os.getpid():
                return
            self._thread = threading.Thread(target=self._run, name="buffer-flusher", daemon=True)
            self._thread_pid = os.getpid()
            self._thread.start()
        atexit.register(self._flush_at_exit)

    def _run(self) -> None:
        from storage_backends.flush import flush_all

        # Records a killed process left on disk are flushed at start, not after the first interval.
        with contextlib.suppress(Exception):
            if any(self.counts().values()):
                self._wake.set()
        while True:
            self._wake.wait(timeout=settings.BUFFER_FLUSH_INTERVAL)
            self._wake.clear()
            try:
                flush_all(self, wait=0)
            except Exception:  # kept buffered on disk; the next round retries
                logger.exception("background flush failed; records stay buffered")
                time.sleep(FAILED_FLUSH_PAUSE_SECONDS)
            finally:
                connections[self.using].close()  # never keep a read snapshot open between rounds

    def _flush_at_exit(self) -> None:
        from storage_backends.flush import flush_all

        try:
            result = flush_all(self, wait=10)
            logger.info("flushed the buffer at shutdown", extra=result.as_dict())
        except Exception:
            # Nothing is lost: the records stay in the buffer table and the next start flushes them.
            logger.warning("flush at shutdown failed; the records stay buffered on disk", exc_info=True)
