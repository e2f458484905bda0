"""The embedded-mode write buffer: in this process's memory, flushed by a background thread.

For a single process on a laptop (``make run`` without REDIS_URL). It keeps the same semantics as
the Redis buffer (coalescing, sequence numbers, compare-and-delete after commit) but not its
durability: records accepted and not yet flushed are lost if the process is killed with SIGKILL.
A normal shutdown (SIGTERM, Ctrl-C) flushes them first.

    buffer = InMemoryWriteBuffer()
    buffer.add("translation_sessions", [{"session_id": "s-1", ...}])
"""

from __future__ import annotations

import atexit
import datetime as dt
import itertools
import logging
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from django.conf import settings

from persistence_site.errors import BufferFull
from storage_backends.buffer import COLLECTIONS, SESSIONS, TASKS, SessionsNotBuffered, WriteBuffer
from storage_backends.records import ID_FIELDS, BufferedRecord, datetime_to_us, decode, encode

logger = logging.getLogger(__name__)


class _ThreadFlushLock:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def release(self) -> None:
        self._lock.release()

    def extend_lease(self) -> bool:
        return True  # a thread lock does not expire


class InMemoryWriteBuffer(WriteBuffer):
    """``background=True`` (the embedded service) runs the flusher thread and flushes at exit."""

    def __init__(self, *, background: bool = False) -> None:
        self._background = background
        self._mutex = threading.Lock()
        self._data: dict[str, dict[str, BufferedRecord]] = {c: {} for c in COLLECTIONS}
        self._task_session: dict[str, str] = {}
        self._by_session: dict[str, set[str]] = {}
        self._seq = itertools.count(1)
        self._locks = {c: threading.Lock() for c in COLLECTIONS}
        self._last_flush: str | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- writes --------------------------------------------------------------------------
    def add(
        self, collection: str, records: list[dict[str, Any]], *, require_sessions: Collection[str] = ()
    ) -> None:
        id_field = ID_FIELDS[collection]
        encoded = [(r[id_field], encode(r), r.get("session_id", "")) for r in records]
        with self._mutex:
            missing = {sid for sid in require_sessions if sid not in self._data[SESSIONS]}
            if missing:
                raise SessionsNotBuffered(missing)
            size = sum(len(d) for d in self._data.values())
            if size + len(records) > settings.BUFFER_CAPACITY:
                raise BufferFull(f"The write buffer holds {size} records; retry after it drains.")
            now = datetime_to_us(dt.datetime.now(dt.UTC))
            data = self._data[collection]
            for record_id, body, session_id in encoded:
                old = data.get(record_id)
                data[record_id] = BufferedRecord(
                    record_id, next(self._seq), old.created_us if old else now, now, body
                )
                if collection == TASKS:
                    old_sid = self._task_session.get(record_id)
                    if old_sid is not None and old_sid != session_id:
                        self._by_session.get(old_sid, set()).discard(record_id)
                    self._task_session[record_id] = session_id
                    self._by_session.setdefault(session_id, set()).add(record_id)
            size += len(records)
        self._ensure_flusher()
        if size >= settings.BUFFER_FLUSH_SIZE:
            self.request_flush()

    def purge_session(self, session_id: str) -> int:
        with self._mutex:
            self._data[SESSIONS].pop(session_id, None)
            ids = self._by_session.pop(session_id, set())
            for task_id in ids:
                self._data[TASKS].pop(task_id, None)
                self._task_session.pop(task_id, None)
            return len(ids)

    # --- reads ---------------------------------------------------------------------------
    def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        entry = self._data[collection].get(record_id)
        return decode(collection, entry) if entry else None

    def get_many(self, collection: str, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        data = self._data[collection]
        return {i: decode(collection, data[i]) for i in record_ids if i in data}

    def records(self, collection: str) -> Iterator[dict[str, Any]]:
        with self._mutex:
            entries = list(self._data[collection].values())
        return (decode(collection, e) for e in entries)

    def session_tasks(self, session_id: str) -> list[dict[str, Any]]:
        with self._mutex:
            ids = list(self._by_session.get(session_id, ()))
        return list(self.get_many(TASKS, ids).values())

    # --- the flusher's side ----------------------------------------------------------------
    def scan(self, collection: str, chunk_size: int) -> Iterator[list[BufferedRecord]]:
        with self._mutex:
            entries = list(self._data[collection].values())
        for start in range(0, len(entries), chunk_size):
            yield entries[start : start + chunk_size]

    def remove_flushed(self, collection: str, entries: list[BufferedRecord]) -> int:
        removed = 0
        with self._mutex:
            data = self._data[collection]
            for entry in entries:
                current = data.get(entry.record_id)
                if current is not None and current.seq == entry.seq:
                    del data[entry.record_id]
                    removed += 1
                    if collection == TASKS:
                        sid = self._task_session.pop(entry.record_id, None)
                        if sid is not None:
                            self._by_session.get(sid, set()).discard(entry.record_id)
        return removed

    def flush_lock(self, collection: str, wait: float) -> _ThreadFlushLock | None:
        lock = self._locks[collection]
        acquired = lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)
        return _ThreadFlushLock(lock) if acquired else None

    def mark_flushed(self) -> None:
        self._last_flush = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")

    def request_flush(self) -> None:
        self._wake.set()

    # --- state ---------------------------------------------------------------------------
    def ping(self) -> bool:
        return True

    def counts(self) -> dict[str, int]:
        return {c: len(d) for c, d in self._data.items()}

    def last_flush(self) -> str | None:
        return self._last_flush

    # --- the background flusher ----------------------------------------------------------------
    def _ensure_flusher(self) -> None:
        if self._thread is not None or not self._background:
            return
        with self._mutex:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="buffer-flusher", daemon=True)
            self._thread.start()
        atexit.register(self._flush_at_exit)

    def _run(self) -> None:
        from storage_backends.flush import flush_all

        while True:
            self._wake.wait(timeout=settings.BUFFER_FLUSH_INTERVAL)
            self._wake.clear()
            try:
                flush_all(self, wait=0)
            except Exception:  # kept buffered; the next round retries
                logger.exception("background flush failed; records stay buffered")
                time.sleep(1)

    def _flush_at_exit(self) -> None:
        from storage_backends.flush import flush_all

        try:
            result = flush_all(self, wait=10)
            logger.info("flushed the buffer at shutdown", extra=result.as_dict())
        except Exception:
            logger.exception(
                "flush at shutdown failed; %s records were not stored", sum(self.counts().values())
            )
