"""The write buffer between an accepted batch (202) and the database.

A record is buffered under its collection and id; a newer write of the same id replaces the older
one (coalescing), keeping the acceptance time of the first buffered write as ``created_at`` and of
the latest as ``updated_at``. Records leave the buffer only after the database has committed them.

    buffer = get_write_buffer()
    buffer.add("translation_tasks", [{"task_id": "t-1", "session_id": "s-1", ...}])
    buffer.get("translation_tasks", "t-1")   # -> model-ready dict, or None once flushed

Records going in are validated dicts of model field names with JSON-compatible values (the
session of a task under ``session_id``). Records coming out are *model-ready*: datetimes are aware
``datetime`` objects and ``confidence`` a ``Decimal``, so ``Task(**record)`` builds an instance.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings

SESSIONS = "translation_sessions"
TASKS = "translation_tasks"
COLLECTIONS = (SESSIONS, TASKS)
ITEM_TYPE = {SESSIONS: "session", TASKS: "task"}


class WriteBuffer:
    """Interface of a write buffer; ``RedisWriteBuffer`` and ``InMemoryWriteBuffer`` implement it."""

    # --- writes ----------------------------------------------------------------------
    def add(self, collection: str, records: list[dict[str, Any]]) -> None:
        """Buffer ``records`` atomically (all or none), stamping their acceptance time.

        Raises ``BufferFull`` above ``BUFFER_CAPACITY`` and ``ServiceUnavailable`` when the
        buffer store cannot be reached; in both cases nothing was buffered.
        """
        raise NotImplementedError

    def purge_session(self, session_id: str) -> int:
        """Drop the buffered session and its buffered tasks; returns how many tasks were dropped."""
        raise NotImplementedError

    # --- reads (read-your-writes overlays) -------------------------------------------------
    def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        """The latest accepted, not yet flushed record with this id (model-ready), or None."""
        raise NotImplementedError

    def get_many(self, collection: str, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``get`` for several ids at once: id -> record for those that are buffered."""
        raise NotImplementedError

    def records(self, collection: str) -> Iterator[dict[str, Any]]:
        """Every buffered record of a collection (model-ready); bounded by ``BUFFER_CAPACITY``."""
        raise NotImplementedError

    def session_tasks(self, session_id: str) -> list[dict[str, Any]]:
        """The buffered tasks of one session (model-ready)."""
        raise NotImplementedError

    # --- state ------------------------------------------------------------------------
    def ping(self) -> bool:
        """True when the buffer store answers."""
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        """Buffered records per collection."""
        raise NotImplementedError

    def last_flush(self) -> str | None:
        """ISO 8601 time of the last successful flush, if any."""
        raise NotImplementedError

    def empty_stats(self) -> dict[str, Any]:
        return self._stats_from(dict.fromkeys(COLLECTIONS, 0), None)

    def stats(self) -> dict[str, Any]:
        """The ``buffer`` object of /health."""
        return self._stats_from(self.counts(), self.last_flush())

    def _stats_from(self, counts: dict[str, int], last_flush: str | None) -> dict[str, Any]:
        sessions = counts.get(SESSIONS, 0)
        tasks = counts.get(TASKS, 0)
        capacity = settings.BUFFER_FLUSH_SIZE
        total = sessions + tasks
        return {
            "sessions_count": sessions,
            "tasks_count": tasks,
            "total_count": total,
            "capacity": capacity,
            "usage_percent": round(100.0 * total / capacity, 1) if capacity else 0.0,
            "last_flush": last_flush,
        }


@functools.cache
def _buffer_for(url: str | None) -> WriteBuffer:
    if url:
        from storage_backends.redis_buffer import RedisWriteBuffer

        return RedisWriteBuffer(url)
    from storage_backends.memory_buffer import InMemoryWriteBuffer

    return InMemoryWriteBuffer()


def get_write_buffer() -> WriteBuffer:
    """The process's buffer, chosen by ``REDIS_URL`` (none: the in-process embedded buffer)."""
    return _buffer_for(settings.REDIS_URL)
