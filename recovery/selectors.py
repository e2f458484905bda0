"""Reads for recovery: sessions as the client last wrote them, whether stored or still buffered.

A buffered record is the latest accepted write of its id, so it replaces the stored row, except
``created_at``, which the stored row has from the first write (the buffer only knows when the
first *buffered* write came). The buffer is read before the database: a flush that finishes in
between then shows the record in both places (same data) instead of in neither.

    row = session_row_get(session_id="s-1")      # stored row overlaid with the buffer, or None
    rows = incomplete_sessions_list()              # pending/processing, newest first
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError

from storage_backends import registry
from storage_backends.base import Filter, Query
from storage_backends.buffer import WriteBuffer, get_write_buffer
from storage_backends.models import DeadLetter
from storage_backends.object_store import object_store_health
from system.health import database_healthy
from translation.collections import SESSIONS, TASKS
from translation.models import INCOMPLETE_STATUSES
from translation.representation import SESSION_FIELDS
from translation.selectors import overlay, stored_created_at

#: The stored sessions whose status is pending or processing (the (status, created_at) index).
_INCOMPLETE = (Filter("status", "in", tuple(str(status) for status in INCOMPLETE_STATUSES)),)


def _newest_first(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # Two stable sorts: created_at descending, ties by primary key ascending (docs/api.md pagination rule).
    ordered = sorted(rows, key=lambda r: r["session_id"])
    ordered.sort(key=lambda r: r["created_at"], reverse=True)
    return ordered


def incomplete_sessions_list(*, buffer: WriteBuffer | None = None) -> list[dict[str, Any]]:
    """Every session whose latest accepted status is pending or processing, newest first.

    Cost: one indexed query (status, created_at) for the stored ones, one scan of the buffered
    sessions (bounded by BUFFER_CAPACITY) and one lookup per 1000 buffered ids for created_at.
    Memory: one row per incomplete session.
    """
    buffer = buffer or get_write_buffer()
    buffered = {r["session_id"]: r for r in buffer.records(SESSIONS)}
    stored = registry.backend(SESSIONS).query(SESSIONS, Query(filters=_INCOMPLETE, fields=SESSION_FIELDS))
    rows = {row["session_id"]: row for row in stored}
    created = stored_created_at(buffered)
    for session_id, record in buffered.items():
        if record["status"] in INCOMPLETE_STATUSES:
            rows[session_id] = overlay(record, created.get(session_id))
        else:  # a newer write finished (or cancelled) it
            rows.pop(session_id, None)
    return _newest_first(rows.values())


def incomplete_sessions_count(*, buffer: WriteBuffer | None = None) -> int:
    """How many sessions ``incomplete_sessions_list`` would return, without loading their rows."""
    buffer = buffer or get_write_buffer()
    statuses = {r["session_id"]: r["status"] for r in buffer.records(SESSIONS)}
    spec = Query(filters=_INCOMPLETE, fields=("session_id",))
    ids = {row["session_id"] for row in registry.backend(SESSIONS).query(SESSIONS, spec)}
    for session_id, status in statuses.items():
        if status in INCOMPLETE_STATUSES:
            ids.add(session_id)
        else:
            ids.discard(session_id)
    return len(ids)


def dead_letters_pending_count() -> int:
    """Dead letters not re-queued yet (each is a record the database refused and nobody fixed)."""
    return DeadLetter.objects.filter(requeued_at__isnull=True).count()


def recovery_status_get(*, buffer: WriteBuffer | None = None) -> dict[str, Any]:
    """Readiness for a client's recovery (docs/api.md §4): never raises for an unreachable backend.

    ``incomplete_sessions`` is None when the database is down, and counts stored sessions only
    when the buffer store is down (``ready`` is False in both cases).
    """
    buffer = buffer or get_write_buffer()
    buffer_ok = buffer.ping()
    db_ok = database_healthy()
    counts = buffer.counts() if buffer_ok else None
    retrying = buffer.retrying_count() if buffer_ok else None
    incomplete = dead_letters = None
    if db_ok:
        try:
            if buffer_ok:
                incomplete = incomplete_sessions_count(buffer=buffer)
            else:
                incomplete = registry.backend(SESSIONS).count(SESSIONS, Query(filters=_INCOMPLETE))
            dead_letters = dead_letters_pending_count()
        except DatabaseError:
            db_ok = False
    return {
        "ready": db_ok and buffer_ok,
        "incomplete_sessions": incomplete,
        "buffered": {
            "sessions": counts[SESSIONS] if counts else None,
            "tasks": counts[TASKS] if counts else None,
            "total": counts[SESSIONS] + counts[TASKS] if counts else None,
        },
        # Records that failed a flush attempt with an error not known to be permanent: retried at
        # the next flushes, dead-lettered after FLUSH_MAX_ATTEMPTS.
        "retrying": retrying,
        "last_flush": buffer.last_flush() if buffer_ok else None,
        "dead_letters": dead_letters,
        "storage": {
            "database": "healthy" if db_ok else "unhealthy",
            "buffer": "healthy" if buffer_ok else "unhealthy",
            "object_store": object_store_health(),  # files only; not part of "ready"
        },
        "checked_at": dt.datetime.now(dt.UTC),
    }
