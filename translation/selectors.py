"""Reads of the query endpoints (docs/api.md §3): filtered pages, details with read-your-writes, stats.

    sessions_page(query=request.query_params)            # {"total", "page", ..., "items": [...]}
    session_detail_get(session_id="s-1")                  # stored row overlaid with the buffer
    stats_get()                                           # cached for STATS_CACHE_SECONDS

Lists read the storage only: a write appears in them once flushed (within
BUFFER_FLUSH_INTERVAL). Details read the buffer too, so a client sees its own accepted writes at
once. Each list is two queries (COUNT and the page) that select only the returned columns; the
orderings end with the primary key (stable pages) and follow the indexes of translation.models.

Every read goes to the backend serving its collection (``registry.backend``), through the
``Query`` spec of storage_backends.base, so routing a collection elsewhere moves its reads too.
The statistics need aggregates the spec does not express: the SQL plugin's ``aggregate``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q

from core.errors import InvalidQuery, NotFound
from core.pagination import PageParams, form_errors, page_body, page_params
from storage_backends import registry
from storage_backends.base import Filter, Query
from storage_backends.buffer import WriteBuffer, get_write_buffer
from storage_backends.sql import sql_backend
from translation.collections import SESSIONS, TASKS
from translation.filters import SessionFilter, SessionTaskFilter, TaskFilter, query_filters
from translation.models import SessionStatus, TaskStatus
from translation.representation import (
    SUMMARY_FIELDS,
    TASK_FIELDS,
    session_detail,
    session_summary,
    task_from_record,
)

# Ids per ``IN (...)`` lookup: keeps statements short however many sessions are buffered.
IDS_PER_QUERY = 1000


def _chunks(ids: list[str], size: int = IDS_PER_QUERY) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def stored_created_at(session_ids: Iterable[str]) -> dict[str, dt.datetime]:
    """session_id -> created_at of the stored sessions among ``session_ids``."""
    ids = list(session_ids)
    backend = registry.backend(SESSIONS)
    found: dict[str, dt.datetime] = {}
    for part in _chunks(ids):
        spec = Query(filters=(Filter("session_id", "in", part),), fields=("session_id", "created_at"))
        found.update((row["session_id"], row["created_at"]) for row in backend.query(SESSIONS, spec))
    return found


def overlay(buffered: dict[str, Any], stored_created: dt.datetime | None) -> dict[str, Any]:
    """A buffered record as it will be stored: its fields, the stored row's created_at if any."""
    if stored_created is not None:
        buffered["created_at"] = stored_created
    return buffered


def session_row_get(*, session_id: str, buffer: WriteBuffer | None = None) -> dict[str, Any] | None:
    """The session's latest accepted state (``SESSION_FIELDS``), or None when it exists nowhere."""
    buffer = buffer or get_write_buffer()
    buffered = buffer.get(SESSIONS, session_id)
    stored = registry.backend(SESSIONS).read(SESSIONS, session_id)
    if buffered is None:
        return stored
    return overlay(buffered, stored["created_at"] if stored else None)


def task_status_counts(session_ids: list[str]) -> dict[str, dict[str, int]]:
    """session_id -> status -> stored task rows (sessions without tasks are absent).

    Read from the (session_id, status) index alone: one GROUP BY per 1000 sessions.
    """
    backend = sql_backend(TASKS)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for part in _chunks(session_ids):
        rows = backend.count_by(TASKS, ("session_id", "status"), (Filter("session_id", "in", part),))
        for session_id, status, n in rows:
            counts[session_id][status] = n
    return dict(counts)


SORT_FIELDS = ("created_at", "updated_at")
STATS_CACHE_KEY = "translation:stats"
#: Seconds out-of-date statistics may still be served while one request recomputes them.
STATS_REFRESH_TIMEOUT = 60
#: How often a request waiting for the first computation of the statistics looks for them.
STATS_WAIT_POLL_SECONDS = 0.05


class SortForm(forms.Form):
    sort_by = forms.ChoiceField(choices=[(f, f) for f in SORT_FIELDS], required=False)
    order = forms.ChoiceField(choices=[("asc", "asc"), ("desc", "desc")], required=False)


def _page(collection: str, spec: Query, params: PageParams, render: Any) -> dict[str, Any]:
    """The contract's page object of ``spec``'s records (COUNT, then the page unless past the end)."""
    backend = registry.backend(collection)
    total = backend.count(collection, spec)
    rows = []
    if params.offset < total:
        rows = backend.query(collection, replace(spec, limit=params.page_size, offset=params.offset))
    return page_body(total, rows, params, render=render)


def _session_ordering(query: Mapping[str, Any]) -> tuple[str, str]:
    form = SortForm(query)
    if not form.is_valid():
        raise InvalidQuery("Invalid sort parameters.", errors=form_errors(form))
    field = form.cleaned_data["sort_by"] or "created_at"
    sign = "" if form.cleaned_data["order"] == "asc" else "-"
    # Ties by the primary key, in the same direction: one index range scan, backwards for desc.
    return f"{sign}{field}", f"{sign}session_id"


def _not_found(kind: str, record_id: str) -> NotFound:
    return NotFound(f"{kind.capitalize()} not found", extra={f"{kind}_id": record_id})


def sessions_page(*, query: Mapping[str, Any]) -> dict[str, Any]:
    """Session summaries: filters status, llm_provider, from_date, to_date; sort_by, order."""
    params = page_params(query)
    ordering = _session_ordering(query)
    spec = Query(filters=query_filters(SessionFilter, query), order_by=ordering, fields=SUMMARY_FIELDS)
    return _page(SESSIONS, spec, params, session_summary)


def session_detail_get(*, session_id: str, buffer: WriteBuffer | None = None) -> dict[str, Any]:
    """Every field plus the derived ones, as last accepted (stored or buffered); 404 if unknown."""
    row = session_row_get(session_id=session_id, buffer=buffer)
    if row is None:
        raise _not_found("session", session_id)
    return session_detail(row)


def session_exists(session_id: str, buffer: WriteBuffer | None = None) -> bool:
    """Stored or buffered. The buffer is asked first: a flush commits a session before it leaves
    the buffer, so one flushed between the two reads is seen in the database, never in neither."""
    if (buffer or get_write_buffer()).get(SESSIONS, session_id) is not None:
        return True
    return bool(registry.backend(SESSIONS).existing_ids(SESSIONS, [session_id]))


def session_tasks_page(*, session_id: str, query: Mapping[str, Any]) -> dict[str, Any]:
    """The session's stored tasks by row_index, then task_id; filters status, sheet_name."""
    params = page_params(query)
    filters = (Filter("session_id", "eq", session_id), *query_filters(SessionTaskFilter, query))
    if not session_exists(session_id):
        raise _not_found("session", session_id)
    spec = Query(filters=filters, order_by=("row_index", "task_id"), fields=TASK_FIELDS)
    return {"session_id": session_id, **_page(TASKS, spec, params, task_from_record)}


def tasks_page(*, query: Mapping[str, Any]) -> dict[str, Any]:
    """Stored tasks by task_id; filters session_id, status, batch_id, from_date, to_date."""
    params = page_params(query)
    spec = Query(filters=query_filters(TaskFilter, query), order_by=("task_id",), fields=TASK_FIELDS)
    return _page(TASKS, spec, params, task_from_record)


def task_detail_get(*, task_id: str, buffer: WriteBuffer | None = None) -> dict[str, Any]:
    """Every task field as last accepted (stored or buffered); 404 if unknown."""
    buffered = (buffer or get_write_buffer()).get(TASKS, task_id)
    stored = registry.backend(TASKS).read(TASKS, task_id)
    if buffered is None:
        if stored is None:
            raise _not_found("task", task_id)
        return task_from_record(stored)
    return task_from_record(overlay(buffered, stored["created_at"] if stored else None))


def _seconds(value: Any) -> float:
    return round(value.total_seconds(), 3) if value is not None else 0.0


def stats_compute() -> dict[str, Any]:
    """The statistics of docs/api.md §3: one conditional aggregation per table plus the catalogue."""
    session_statuses = SessionStatus.values
    task_statuses = TaskStatus.values
    sessions = sql_backend(SESSIONS).aggregate(
        SESSIONS,
        total=Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in session_statuses},
        average_session_time=Avg(
            ExpressionWrapper(F("updated_at") - F("created_at"), output_field=DurationField()),
            filter=Q(status=SessionStatus.COMPLETED),
        ),
    )
    tasks = sql_backend(TASKS).aggregate(
        TASKS,
        total=Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in task_statuses},
        average_duration_ms=Avg("duration_ms", filter=Q(status=TaskStatus.COMPLETED)),
    )
    finished = tasks["completed"] + tasks["failed"]
    average_ms = tasks.pop("average_duration_ms")
    return {
        "sessions": {"total": sessions["total"], **{s: sessions[s] for s in session_statuses}},
        "tasks": tasks,
        "performance": {
            "average_session_time": _seconds(sessions["average_session_time"]),
            "average_task_time": round(float(average_ms) / 1000, 3) if average_ms is not None else 0.0,
            "success_rate": round(100 * tasks["completed"] / finished, 1) if finished else 0.0,
        },
        "storage": {
            "database_size_mb": database_size_mb(),
            "sessions_table_rows": sessions["total"],
            "tasks_table_rows": tasks["total"],
        },
    }


def stats_get() -> dict[str, Any]:
    """``stats_compute`` cached for STATS_CACHE_SECONDS (0: always computed).

    On a large database the computation takes a second or more (it reads both tables), so one
    request at a time computes them (a lock in the cache): while the cached figures are out of
    date the others keep answering with them, for up to a minute more, and with nothing cached yet
    they wait for the first computation instead of all starting one. Figures stay fresh for
    STATS_CACHE_SECONDS after they were computed, or for as long as computing them took if that is
    longer, so a slow computation is not running again as soon as it ends.
    """
    seconds = settings.STATS_CACHE_SECONDS
    if seconds <= 0:
        return stats_compute()
    lock = STATS_CACHE_KEY + ":refreshing"
    waited_until = time.monotonic() + STATS_REFRESH_TIMEOUT
    while True:
        cached = cache.get(STATS_CACHE_KEY)
        if cached is not None and time.time() - cached["computed_at"] < max(seconds, cached["took"]):
            return cached["stats"]
        if cache.add(lock, 1, STATS_REFRESH_TIMEOUT):
            break
        if cached is not None:
            return cached["stats"]  # another request is refreshing them
        if time.monotonic() > waited_until:
            return stats_compute()  # the first computation is stuck or gone: answer anyway
        time.sleep(STATS_WAIT_POLL_SECONDS)
    try:
        started = time.time()
        stats = stats_compute()
        finished = time.time()
        took = finished - started
        cache.set(
            STATS_CACHE_KEY,
            {"stats": stats, "computed_at": finished, "took": took},
            max(seconds, took) + STATS_REFRESH_TIMEOUT,
        )
    finally:
        cache.delete(lock)
    return stats


def database_size_mb() -> float:
    """Data plus indexes of the tables of the databases holding sessions and tasks (each counted
    once; one database unless the routes put them apart)."""
    backends = {backend.database: backend for backend in (sql_backend(SESSIONS), sql_backend(TASKS))}
    size = sum(backend.database_size_bytes() for backend in backends.values())
    return round(size / (1024 * 1024), 2)
