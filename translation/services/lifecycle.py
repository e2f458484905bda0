"""Session lifecycle: delete (with its tasks and buffered writes), status change, retention cleanup.

    deleted_tasks = session_delete(session_id="s-1")
    row = session_status_update(session_id="s-1", status="cancelled")
    result = sessions_cleanup(completed_days=90, failed_days=30, dry_run=True)

Deleting without long locks or resurrection:
- Tasks are deleted by the service in bounded statements (``DELETE_CHUNK_ROWS`` rows each), never
  by one statement per session: the MariaDB foreign key cascades (migration 0002), but a cascade of
  100,000 rows is one long transaction, and SQLite has no constraint at all. Django's Python cascade
  is never used (the model's FK is DO_NOTHING on purpose).
- The buffered writes are dropped (``begin_delete``) while flushes are paused (``flush_paused``), so
  a flush that already read the session's records cannot write them back afterwards.
- No write is accepted that the delete would then remove: from ``begin_delete`` to ``end_delete``
  the buffer refuses the session's writes (503, retry) and its tasks' (SESSION_NOT_FOUND), in the
  same atomic step as it would buffer them. So a 202 is never followed by a silent removal.
- A delete runs in three steps so flushes are paused only briefly: (0) paused: check, drop the
  buffered writes and mark the session deleting; (1) delete its stored tasks chunk by chunk;
  (2) delete the session row. Then the mark becomes a "deleted" tombstone: task
  writes for the session are refused, a session write creates it anew.
- Retention cleanup re-checks each session before step 0, with flushes paused, and skips one with
  a buffered write (of its own or of a task): a session written to again is kept whole, never left
  without the tasks a cleanup had already deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit.services import audited
from core.errors import NotFound
from core.exceptions import FlushFailed, StorageUnavailable
from storage_backends import catalog, registry
from storage_backends.base import Filter, Query
from storage_backends.buffer import WriteBuffer, get_write_buffer
from storage_backends.flush import flush_paused
from translation.collections import SESSIONS, TASKS
from translation.models import SessionStatus
from translation.representation import SESSION_FIELDS
from translation.selectors import session_row_get, task_status_counts

logger = logging.getLogger(__name__)

# Rows per DELETE statement: each commits in a few milliseconds on MariaDB, so a delete of millions
# of rows never holds row locks (or the undo log) for long, and a flush waits at most one statement.
DELETE_CHUNK_ROWS = 1000
# Sessions examined per cleanup round: one candidate page, one GROUP BY of their tasks (an index
# read of ~200,000 entries at 1,000 tasks per session, a fraction of a second), one buffer lookup;
# flushes are paused only for the round's final step (normally one DELETE of the session rows).
CLEANUP_SESSIONS_PER_ROUND = 200

#: Fields a session write carries (the service sets created_at and updated_at).
SESSION_WRITE_FIELDS = tuple(f for f in SESSION_FIELDS if f not in ("created_at", "updated_at"))

#: Called with the ids of sessions just deleted (session_delete and the retention cleanup), after
#: their rows are gone. Other apps register in their AppConfig.ready (files deletes the sessions'
#: files), so translation imports none of them.
SESSION_DELETE_HOOKS: list[Callable[[list[str]], None]] = []


def _after_delete(session_ids: list[str]) -> None:
    if session_ids:
        for hook in SESSION_DELETE_HOOKS:
            hook(session_ids)


# --- shared deletion steps ---------------------------------------------------------------


@contextlib.contextmanager
def _flushes_paused(buffer: WriteBuffer, session_ids: list[str]) -> Iterator[None]:
    """Flushes of the sessions' shards (their sessions and tasks) paused; other shards go on."""
    try:
        with flush_paused((SESSIONS, TASKS), buffer, shard_keys=session_ids):
            yield
    except FlushFailed as exc:  # a long flush kept its lock: nothing of this step was done
        raise StorageUnavailable(f"A flush is running and did not yield; retry. ({exc.detail})") from exc


def _delete_task_pages(session_id: str, status: str) -> int:
    """Delete one session's tasks of one status, ``DELETE_CHUNK_ROWS`` primary keys at a time.

    Keyset over the (session_id, status, task_id) index: each page starts where the last ended, so
    no statement rescans rows already deleted (and not yet purged by InnoDB).
    """
    backend = registry.backend(TASKS)
    deleted, last = 0, ""
    while True:
        page = Query(
            filters=(
                Filter("session_id", "eq", session_id),
                Filter("status", "eq", status),
                Filter("task_id", "gt", last),
            ),
            order_by=("task_id",),
            fields=("task_id",),
            limit=DELETE_CHUNK_ROWS,
        )
        ids = [row["task_id"] for row in backend.query(TASKS, page)]
        if not ids:
            return deleted
        deleted += backend.delete(TASKS, ids)
        last = ids[-1]
        if len(ids) < DELETE_CHUNK_ROWS:
            return deleted


def _delete_stored_tasks(session_ids: list[str], counts: dict[str, dict[str, int]] | None = None) -> int:
    """Delete every stored task of ``session_ids`` in statements of about ``DELETE_CHUNK_ROWS`` rows.

    Small sessions are grouped into one ``session_id IN (...)`` statement up to the row budget; a
    larger one is deleted page by page. ``counts`` (from ``task_status_counts``) saves the GROUP BY when
    the caller has it. Cost: one GROUP BY per 1000 sessions plus one statement per chunk. Memory:
    one chunk of primary keys.
    """
    deleted = 0
    group: list[str] = []
    group_rows = 0
    for session_id, by_status in (counts if counts is not None else task_status_counts(session_ids)).items():
        rows = sum(by_status.values())
        if rows > DELETE_CHUNK_ROWS:
            for status in by_status:
                deleted += _delete_task_pages(session_id, status)
            continue
        if group and group_rows + rows > DELETE_CHUNK_ROWS:
            deleted += _delete_tasks_of(group)
            group, group_rows = [], 0
        group.append(session_id)
        group_rows += rows
    if group:
        deleted += _delete_tasks_of(group)
    return deleted


def _delete_tasks_of(session_ids: list[str]) -> int:
    """Delete every stored task of a few small sessions (about ``DELETE_CHUNK_ROWS`` in all)."""
    backend = registry.backend(TASKS)
    spec = Query(filters=(Filter("session_id", "in", session_ids),), fields=("task_id",))
    return backend.delete(TASKS, [row["task_id"] for row in backend.query(TASKS, spec)])


def _buffered_tasks_stored(buffer: WriteBuffer, session_ids: list[str]) -> dict[str, int]:
    """Per session, how many of its buffered tasks also have a stored row (counted once, not twice)."""
    backend = registry.backend(TASKS)
    stored: dict[str, int] = {}
    for session_id in session_ids:
        ids = [task[catalog.id_field(TASKS)] for task in buffer.children(SESSIONS, session_id)]
        stored[session_id] = len(backend.existing_ids(TASKS, ids)) if ids else 0
    return stored


def _begin_delete(buffer: WriteBuffer, session_ids: list[str], *, keep_active: bool) -> tuple[list[str], int]:
    """Step 0 (flushes paused by the caller): drop the buffered writes, mark the sessions deleting.

    Returns the sessions marked and their dropped buffered tasks that had no stored row.
    """
    overlap = _buffered_tasks_stored(buffer, session_ids)
    dropped = buffer.begin_delete(SESSIONS, session_ids, keep_active=keep_active)
    removed = sum(max(n - overlap[session_id], 0) for session_id, n in dropped.items())
    return [session_id for session_id in session_ids if session_id in dropped], removed


@contextlib.contextmanager
def _deleting(buffer: WriteBuffer, session_ids: list[str]) -> Iterator[None]:
    """Steps 1 and 2 of a delete of sessions marked by ``_begin_delete``: on success the marks become
    "deleted" tombstones; if a step fails they are lifted (the sessions' writes are accepted again)."""
    try:
        yield
    except BaseException:
        buffer.end_delete(SESSIONS, session_ids, deleted=False)
        raise
    buffer.end_delete(SESSIONS, session_ids, deleted=True)


def _delete_rows(session_ids: list[str]) -> int:
    """Steps 1 and 2: the stored tasks in bounded statements, then the session rows (after their
    tasks: on MariaDB the foreign key would cascade them in one long transaction). No flush can
    write the sessions' records meanwhile: their buffered writes are gone and new ones refused.
    Returns the tasks deleted."""
    removed = _delete_stored_tasks(session_ids)
    registry.backend(SESSIONS).delete(SESSIONS, session_ids)
    return removed


# --- delete -----------------------------------------------------------------------------


def session_delete(*, session_id: str, buffer: WriteBuffer | None = None) -> int:
    """Delete a session, its stored tasks and its buffered writes; returns the tasks removed.

    Raises ``NotFound`` when the session is neither stored nor buffered, ``StorageUnavailable``
    when the buffer store is down or a flush holds its lock for more than 10 s (nothing is deleted
    in either case when it happens before the first step).

    Cost: about one DELETE per ``DELETE_CHUNK_ROWS`` tasks (100,000 tasks: ~100 statements, a few
    seconds on MariaDB); flushes are paused only around the first and last steps; the session's
    writes are refused (503, retry) while it is being deleted.
    """
    with audited("session.delete", resource_type="session", resource_id=session_id) as event:
        buffer = buffer or get_write_buffer()
        with _flushes_paused(buffer, [session_id]):
            if (
                buffer.get(SESSIONS, session_id) is None
                and registry.backend(SESSIONS).read(SESSIONS, session_id) is None
            ):
                raise NotFound("Session not found", extra={"session_id": session_id})
            marked, removed = _begin_delete(buffer, [session_id], keep_active=False)
        with _deleting(buffer, marked):
            removed += _delete_rows(marked)
        _after_delete(marked)
        logger.info("session deleted", extra={"session_id": session_id, "deleted_tasks": removed})
        event.details["deleted_tasks"] = removed
        return removed


# --- status -----------------------------------------------------------------------------


def session_status_update(
    *, session_id: str, status: str, buffer: WriteBuffer | None = None
) -> dict[str, Any]:
    """Change a session's status; returns its new state (``SESSION_FIELDS``).

    The change is a whole-record write through the buffer, like any client write, so last accepted
    write wins: writing the stored row directly could be overwritten by an older buffered write at
    the next flush. A session known only to the buffer is handled the same way. The record read
    here and the one written are not atomic: a write accepted between them is overtaken (the client
    sees it in the answer). Raises ``NotFound`` for an unknown session.
    """
    with audited(
        "session.status_change", resource_type="session", resource_id=session_id, details={"status": status}
    ) as event:
        buffer = buffer or get_write_buffer()
        current = session_row_get(session_id=session_id, buffer=buffer)
        if current is None:
            raise NotFound("Session not found", extra={"session_id": session_id})
        record = {name: current[name] for name in SESSION_WRITE_FIELDS}
        event.details["previous_status"] = record["status"]
        record["status"] = status
        buffer.add(SESSIONS, [record])
        updated = session_row_get(session_id=session_id, buffer=buffer)
        if updated is None:  # deleted in between: the write was purged, or will be dead-lettered
            raise NotFound("Session not found", extra={"session_id": session_id})
        return updated


# --- retention cleanup ----------------------------------------------------------------------


@dataclass
class CleanupResult:
    deleted_sessions: int = 0
    deleted_tasks: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "completed",
            "deleted_sessions": self.deleted_sessions,
            "deleted_tasks": self.deleted_tasks,
            "dry_run": self.dry_run,
        }


#: Called once per session deleted (or that would be): session_id, status, updated_at, stored tasks.
SessionCallback = Callable[[str, str, dt.datetime, int], None]


#: Groups of filters (a Query's ``any_of``): a session is expired when it matches one group.
Expired = tuple[tuple[Filter, ...], ...]


def expired_sessions_filters(*, completed_days: int, failed_days: int, now: dt.datetime) -> Expired:
    """Completed sessions not updated for ``completed_days``; failed or cancelled ones for ``failed_days``."""
    return (
        (
            Filter("status", "eq", SessionStatus.COMPLETED.value),
            Filter("updated_at", "lt", now - dt.timedelta(days=completed_days)),
        ),
        (
            Filter("status", "in", (SessionStatus.FAILED.value, SessionStatus.CANCELLED.value)),
            Filter("updated_at", "lt", now - dt.timedelta(days=failed_days)),
        ),
    )


def _expired_page(expired: Expired, after: str) -> list[tuple[str, str, dt.datetime]]:
    """The next ``CLEANUP_SESSIONS_PER_ROUND`` expired sessions by session_id after ``after``."""
    spec = Query(
        filters=(Filter("session_id", "gt", after),),
        any_of=expired,
        order_by=("session_id",),
        fields=("session_id", "status", "updated_at"),
        limit=CLEANUP_SESSIONS_PER_ROUND,
    )
    rows = registry.backend(SESSIONS).query(SESSIONS, spec)
    return [(row["session_id"], row["status"], row["updated_at"]) for row in rows]


def _still_expired(expired: Expired, ids: list[str]) -> set[str]:
    spec = Query(filters=(Filter("session_id", "in", ids),), any_of=expired, fields=("session_id",))
    return {row["session_id"] for row in registry.backend(SESSIONS).query(SESSIONS, spec)}


def sessions_cleanup(
    *,
    completed_days: int | None = None,
    failed_days: int | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    buffer: WriteBuffer | None = None,
    on_session: SessionCallback | None = None,
) -> CleanupResult:
    """Delete expired sessions with their tasks (docs/api.md §5); ``dry_run`` only counts.
    ``completed_days`` and ``failed_days`` default to RETENTION_COMPLETED_DAYS and RETENTION_FAILED_DAYS.

    A session with a buffered write is not expired (its latest accepted write is recent) and is
    skipped, in a dry run too, so a dry run counts what a real run would delete.

    Cost: sessions are visited in primary-key pages of ``CLEANUP_SESSIONS_PER_ROUND`` (each visited
    once; a page query filters on status and updated_at); tasks are deleted in statements of about
    ``DELETE_CHUNK_ROWS`` rows with flushes running, after a short flush-paused step per round that
    re-checks expiry and marks the sessions deleting (``_cleanup_round``). Memory:
    one page of sessions and one chunk of task ids.
    """
    completed_days = settings.RETENTION_COMPLETED_DAYS if completed_days is None else completed_days
    failed_days = settings.RETENTION_FAILED_DAYS if failed_days is None else failed_days
    with audited(
        "session.cleanup",
        resource_type="session",
        details={"dry_run": dry_run, "completed_days": completed_days, "failed_days": failed_days},
    ) as event:
        buffer = buffer or get_write_buffer()
        now = now or timezone.now()
        expired = expired_sessions_filters(completed_days=completed_days, failed_days=failed_days, now=now)
        result = CleanupResult(dry_run=dry_run)
        last = ""
        while True:
            page = _expired_page(expired, last)
            if not page:
                break
            last = page[-1][0]
            rewritten = buffer.get_many(SESSIONS, [session_id for session_id, _, _ in page])
            candidates = [row for row in page if row[0] not in rewritten]
            ids = [session_id for session_id, _, _ in candidates]
            counts = task_status_counts(ids)
            totals = {sid: sum(by_status.values()) for sid, by_status in counts.items()}
            if dry_run:
                result.deleted_sessions += len(ids)
                result.deleted_tasks += sum(totals.values())
                gone = set(ids)
            else:
                gone = _cleanup_round(buffer, ids, expired, result)
            if on_session is not None:
                for session_id, status, updated_at in candidates:
                    if session_id in gone:
                        on_session(session_id, status, updated_at, totals.get(session_id, 0))
            if len(page) < CLEANUP_SESSIONS_PER_ROUND:
                break
        logger.info("sessions cleanup", extra=result.as_dict())
        event.details.update(deleted_sessions=result.deleted_sessions, deleted_tasks=result.deleted_tasks)
        return result


def _cleanup_round(
    buffer: WriteBuffer,
    ids: list[str],
    expired: Expired,
    result: CleanupResult,
) -> set[str]:
    """Delete one page of expired sessions; returns the ids deleted.

    The re-check and the mark happen together with flushes paused: a session whose newer write
    was flushed meanwhile is no longer expired in the database, and one with a write still
    buffered is skipped by ``begin_delete`` atomically, so no session written to again loses
    anything. From the mark on, the sessions' writes are refused until the delete ends.
    """
    if not ids:
        return set()
    with _flushes_paused(buffer, ids):
        still_expired = _still_expired(expired, ids)
        gone, removed = _begin_delete(buffer, [sid for sid in ids if sid in still_expired], keep_active=True)
    kept = [sid for sid in ids if sid not in gone]
    if kept:
        logger.warning("sessions written during cleanup were kept", extra={"session_ids": kept[:20]})
    with _deleting(buffer, gone):
        removed += _delete_rows(gone)
    _after_delete(gone)
    result.deleted_tasks += removed
    result.deleted_sessions += len(gone)
    return set(gone)
