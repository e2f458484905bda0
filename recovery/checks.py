"""The recovery check behind ``manage.py recovery_check``: is anything stuck, lost or inconsistent?

    report = recovery_check_run(thresholds=CheckThresholds(stalled=timedelta(hours=1)))
    report["ok"], report["problems"]

Problems (each makes ``ok`` False): a backend unreachable; sessions in ``processing`` whose latest
accepted write is older than the stall threshold; quiet sessions whose counters disagree with their
stored task rows; dead letters nobody re-queued; records buffered while no flush succeeded for
that waited longer than the overdue threshold (the flusher is not running). Incomplete sessions and buffer
counts are reported but are normal while jobs run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from core.exceptions import StorageUnavailable
from recovery.selectors import dead_letters_pending_count, incomplete_sessions_list
from storage_backends import registry
from storage_backends.base import Filter, Query
from storage_backends.buffer import WriteBuffer, get_write_buffer
from storage_backends.records import us_to_datetime
from system.health import database_healthy
from translation.collections import SESSIONS, TASKS
from translation.models import SessionStatus, TaskStatus
from translation.selectors import task_status_counts

# Sessions per page when comparing counters: one GROUP BY and one buffer lookup per page.
SESSIONS_PER_PAGE = 1000
#: How many offending sessions the report lists (the counts are always complete).
LISTED = 100
#: Buffered records sampled per collection to see whether flushing has stopped.
SAMPLE = 200


@dataclass(frozen=True)
class CheckThresholds:
    #: A processing session with no write for this long is stalled.
    stalled: dt.timedelta = dt.timedelta(hours=1)
    #: Counters are compared only for sessions quiet for this long (a running job's counters lag)
    settle: dt.timedelta = dt.timedelta(minutes=5)
    #: ... and written within this window (older sessions cannot change any more).
    window: dt.timedelta = dt.timedelta(days=7)
    #: A buffered record waiting this long since its latest write means flushing stopped.
    flush_overdue: dt.timedelta = field(
        default_factory=lambda: dt.timedelta(seconds=max(10 * settings.BUFFER_FLUSH_INTERVAL, 300))
    )


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def stalled_sessions_list(
    incomplete: list[dict[str, Any]], *, older_than: dt.timedelta, now: dt.datetime
) -> list[dict[str, Any]]:
    """Processing sessions whose latest accepted write is older than ``older_than``, oldest first."""
    cutoff = now - older_than
    stalled = [r for r in incomplete if r["status"] == SessionStatus.PROCESSING and r["updated_at"] < cutoff]
    stalled.sort(key=lambda r: (r["updated_at"], r["session_id"]))
    return [
        {
            "session_id": r["session_id"],
            "updated_at": _iso(r["updated_at"]),
            "idle_minutes": int((now - r["updated_at"]).total_seconds() // 60),
        }
        for r in stalled
    ]


def _disagreement(row: tuple[Any, ...], actual: dict[str, int]) -> dict[str, Any] | None:
    session_id, status, total, completed, failed, processing = row
    stored = sum(actual.values())
    counters = {"completed_tasks": completed, "failed_tasks": failed, "processing_tasks": processing}
    rows = {
        "completed_tasks": actual.get(TaskStatus.COMPLETED, 0),
        "failed_tasks": actual.get(TaskStatus.FAILED, 0),
        "processing_tasks": actual.get(TaskStatus.PROCESSING, 0),
    }
    if counters == rows and stored <= total:
        return None
    return {
        "session_id": session_id,
        "status": status,
        "counters": {"total_tasks": total, **counters},
        "stored_rows": {"total": stored, **rows},
    }


def counter_mismatches_list(
    *, buffer: WriteBuffer, now: dt.datetime, settle: dt.timedelta, window: dt.timedelta
) -> list[dict[str, Any]]:
    """Quiet sessions whose completed/failed/processing counters differ from their stored task rows,
    or that have more task rows than total_tasks.

    Sessions with buffered writes (session or tasks) are skipped: their stored rows are not final.
    Cost: a primary-key walk over the sessions written within ``window`` and one GROUP BY on the
    (session_id, status) index per page of 1000; the buffer is asked only about disagreeing ones.
    """
    found: list[dict[str, Any]] = []
    last = ""
    backend = registry.backend(SESSIONS)
    fields = ("session_id", "status", "total_tasks", "completed_tasks", "failed_tasks", "processing_tasks")
    recent = (Filter("updated_at", "gte", now - window), Filter("updated_at", "lt", now - settle))
    while True:
        spec = Query(
            filters=(*recent, Filter("session_id", "gt", last)),
            order_by=("session_id",),
            fields=fields,
            limit=SESSIONS_PER_PAGE,
        )
        page = [tuple(row[name] for name in fields) for row in backend.query(SESSIONS, spec)]
        if not page:
            return found
        last = page[-1][0]
        actual = task_status_counts([row[0] for row in page])
        suspects = [m for row in page if (m := _disagreement(row, actual.get(row[0], {}))) is not None]
        if not suspects:
            continue
        # Only suspects are looked up in the buffer (one call each): most pages have none.
        buffered = set(buffer.get_many(SESSIONS, [m["session_id"] for m in suspects]))
        found.extend(
            m
            for m in suspects
            if m["session_id"] not in buffered and not buffer.children(SESSIONS, m["session_id"])
        )


def recovery_check_run(
    *,
    thresholds: CheckThresholds | None = None,
    now: dt.datetime | None = None,
    buffer: WriteBuffer | None = None,
) -> dict[str, Any]:
    """Run every check; never raises for an unreachable backend (that is a problem in the report)."""
    thresholds = thresholds or CheckThresholds()
    now = now or dt.datetime.now(dt.UTC)
    buffer = buffer or get_write_buffer()
    problems: list[str] = []
    report: dict[str, Any] = {
        "ok": True,
        "problems": problems,
        "checked_at": _iso(now),
        "database": "healthy",
        "buffer": {"reachable": True},
        "incomplete_sessions": None,
        "stalled_sessions": [],
        "stalled_sessions_count": None,
        "counter_mismatches": [],
        "counter_mismatches_count": None,
        "dead_letters": None,
    }
    db_ok = database_healthy()
    buffer_ok = buffer.ping()
    if not db_ok:
        report["database"] = "unhealthy"
        problems.append("the database is unreachable")
    if not buffer_ok:
        report["buffer"] = {"reachable": False}
        problems.append("the buffer store (Redis) is unreachable")
    try:
        if buffer_ok:
            counts = buffer.counts()
            last_flush = buffer.last_flush()
            report["buffer"] = {
                "reachable": True,
                "sessions": counts[SESSIONS],
                "tasks": counts[TASKS],
                "last_flush": last_flush,
            }
            waited = _longest_wait_sampled(buffer, now)
            report["buffer"]["longest_wait_seconds"] = int(waited.total_seconds()) if waited else 0
            if waited is not None and waited > thresholds.flush_overdue:
                problems.append(
                    f"{counts[SESSIONS] + counts[TASKS]} records are buffered and some have waited "
                    f"{int(waited.total_seconds())} s for a flush (last successful: {last_flush or 'never'}); "
                    "is the Celery worker/beat running, or is the database refusing writes?"
                )
        if db_ok:
            report["dead_letters"] = dead_letters = dead_letters_pending_count()
            if dead_letters:
                problems.append(f"{dead_letters} dead letters wait for a fix and a re-queue (Django admin)")
        if db_ok and buffer_ok:
            incomplete = incomplete_sessions_list(buffer=buffer)
            report["incomplete_sessions"] = len(incomplete)
            stalled = stalled_sessions_list(incomplete, older_than=thresholds.stalled, now=now)
            report["stalled_sessions"] = stalled[:LISTED]
            report["stalled_sessions_count"] = len(stalled)
            if stalled:
                problems.append(
                    f"{len(stalled)} sessions have been processing with no write for more than "
                    f"{int(thresholds.stalled.total_seconds() // 60)} min"
                )
            mismatches = counter_mismatches_list(
                buffer=buffer, now=now, settle=thresholds.settle, window=thresholds.window
            )
            report["counter_mismatches"] = mismatches[:LISTED]
            report["counter_mismatches_count"] = len(mismatches)
            if mismatches:
                problems.append(
                    f"{len(mismatches)} sessions have counters that disagree with their task rows"
                )
    except (DatabaseError, StorageUnavailable) as exc:
        problems.append(f"the check could not finish: {exc}")
    report["ok"] = not problems
    return report


def _longest_wait_sampled(buffer: WriteBuffer, now: dt.datetime) -> dt.timedelta | None:
    """How long the stalest of a sample of buffered records has waited since its latest write.

    A successful flush removes every record whose latest write it read, so a record that waited
    longer than a few flush intervals means flushing stopped. The sample is the first scan page of
    each collection (arbitrary records, one Redis round trip each), which catches a stopped flusher
    because then every record ages.
    """
    oldest: int | None = None
    for collection in (SESSIONS, TASKS):
        for page in buffer.scan(collection, SAMPLE):
            stalest = min(entry.updated_us for entry in page)
            oldest = stalest if oldest is None else min(oldest, stalest)
            break
    if oldest is None:
        return None
    return now - us_to_datetime(oldest)
