"""Accepting batch writes into the buffer, and flushing it on demand (docs/api.md §2).

task_batch_upsert(records=validate_batch(body, kind="tasks"))
result = buffer_flush()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, NoReturn

from django.conf import settings

from core.errors import SessionNotFound
from core.exceptions import FlushFailed, StorageUnavailable
from storage_backends import registry
from storage_backends.buffer import ParentsDeleted, ParentsNotBuffered, get_write_buffer
from storage_backends.flush import FlushResult, flush_all
from translation.collections import SESSIONS, TASKS

logger = logging.getLogger(__name__)

#: The flush endpoint answers within this many seconds (docs/api.md §2).
FLUSH_BUDGET_SECONDS = 10.0

#: Sessions this process found stored in the database, with when: a task batch naming only these
#: needs neither the buffer's session check nor a database query (bench/ingest.py: a job's tasks
#: arrive long after its session was flushed, and the check cost a Redis round trip and a query per
#: batch). Safe for ``_stored_seconds()``: a session deleted meanwhile left a tombstone in the
#: buffer, which refuses its tasks in the same atomic step as buffering them, and tombstones live
#: at least twice as long. Bounded: cleared when it grows past ``_STORED_MAX`` sessions.
STORED_SESSION_CACHE_SECONDS = 5.0
_STORED_MAX = 10_000
_stored: dict[str, float] = {}
_stored_lock = threading.Lock()


def _stored_seconds() -> float:
    return min(STORED_SESSION_CACHE_SECONDS, settings.BUFFER_TOMBSTONE_TTL / 2)


def _recently_stored(session_ids: Iterable[str]) -> set[str]:
    since = time.monotonic() - _stored_seconds()
    return {sid for sid in session_ids if _stored.get(sid, since) > since}


def _remember_stored(session_ids: Iterable[str]) -> None:
    now = time.monotonic()
    with _stored_lock:
        if len(_stored) >= _STORED_MAX:
            _stored.clear()
        _stored.update(dict.fromkeys(session_ids, now))


def session_batch_upsert(*, records: list[dict[str, Any]]) -> int:
    """Buffer validated session records; returns how many were accepted."""
    get_write_buffer().add(SESSIONS, records)
    return len(records)


def task_batch_upsert(*, records: list[dict[str, Any]]) -> int:
    """Buffer validated task records after checking that every session they name exists.

    A session exists when it is stored or still buffered. Raises ``SessionNotFound`` listing the
    offending indexes; nothing is buffered then.

    A session deleted between the database check and the buffering is caught by the buffer's
    tombstone, in the same atomic step as the buffering: such tasks get ``SessionNotFound`` too,
    instead of being buffered for a session that is gone (and dead-lettered by the next flush).
    """
    buffer = get_write_buffer()
    session_ids = {record["session_id"] for record in records}
    try:
        # The common cases, a job streaming tasks of a session still buffered or stored moments
        # ago, take one round trip.
        buffer.add(TASKS, records, require_parents=session_ids - _recently_stored(session_ids))
        return len(records)
    except ParentsDeleted as exc:
        _session_not_found(records, exc.ids)
    except ParentsNotBuffered as exc:
        stored = registry.backend(SESSIONS).existing_ids(SESSIONS, exc.ids)
        _remember_stored(stored)
        missing = exc.ids - stored
        if missing:
            _session_not_found(records, missing)
    try:
        buffer.add(TASKS, records)
    except ParentsDeleted as exc:
        _session_not_found(records, exc.ids)
    return len(records)


def _session_not_found(records: list[dict[str, Any]], missing: set[str]) -> NoReturn:
    raise SessionNotFound(
        f"{len(missing)} session(s) named by tasks do not exist; nothing was accepted.",
        errors=[
            {"field": f"tasks[{i}].session_id", "message": f"session {record['session_id']!r} not found"}
            for i, record in enumerate(records)
            if record["session_id"] in missing
        ],
    )


def buffer_flush() -> FlushResult:
    """Write everything buffered to the database now, sessions first, within 10 s.

    Waits for a flush already running (it holds the collection's lock) and then flushes what is
    left. Raises ``FlushFailed`` when storage fails or the budget runs out; the data stays buffered.
    """
    try:
        result = flush_all(get_write_buffer(), wait=FLUSH_BUDGET_SECONDS, budget=FLUSH_BUDGET_SECONDS)
    except FlushFailed:
        raise
    except StorageUnavailable as exc:
        raise FlushFailed(f"Flush failed: {exc.detail}") from exc
    except Exception as exc:  # never a 500: the records stay buffered whatever went wrong
        logger.exception("flush failed unexpectedly")
        raise FlushFailed("Flush failed unexpectedly; the data stays buffered.") from exc
    if not result.complete:
        raise FlushFailed(
            f"Flush did not finish within {FLUSH_BUDGET_SECONDS:.0f} s; the rest stays buffered and "
            "flushing continues in the background."
        )
    return result
