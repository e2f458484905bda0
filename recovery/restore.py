"""Restoring a session after a client crash: the session and every pending or processing task.

The answer for a session with 100,000+ tasks is tens of megabytes, so it is streamed: tasks are
read in keyset pages of the (session_id, status) index and written out page by page, and memory
stays at one page of rows whatever the session's size.

    body = session_restore(session_id="s-1")   # raises NotFound before anything is sent
    StreamingHttpResponse(body.chunks(), content_type="application/json")

Consistency: the session's buffered tasks are read first, then every database read of the answer
(count and pages) runs in one REPEATABLE READ transaction, so ``tasks_count`` equals the number of
tasks sent even while flushes and writes go on. A buffered task replaces its stored row (it is the
newer write), keeping the stored created_at. The transaction takes no locks, but it stays open while
the client reads; behind a buffering proxy (nginx) that is about the time the service needs to
produce the answer (~1 s for 100,000 tasks, bench/restore.py), not the client's download time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core import json_codec
from core.errors import NotFound
from storage_backends.base import Filter, Query
from storage_backends.buffer import WriteBuffer, get_write_buffer
from storage_backends.sql import SQLBackend, sql_backend
from translation.collections import SESSIONS, TASKS
from translation.models import TaskStatus
from translation.representation import TASK_FIELDS, session_detail, task_from_record
from translation.selectors import IDS_PER_QUERY, session_row_get

RESTORE_STATUSES = (TaskStatus.PENDING.value, TaskStatus.PROCESSING.value)
# Rows per database page: ~1 MB of typical tasks, so a page is one quick indexed range read and the
# process holds only this many rows at a time (measured in bench/restore.py).
PAGE_ROWS = 2000
# translation.models.Task.Meta.indexes: (session_id, status) then the primary key, task_id.
_SESSION_STATUS_INDEX = "task_session_status_idx"


def _page_spec(session_id: str, status: str, last: str) -> Query:
    """One keyset page of a session's stored tasks of one status: ``session_id = ? AND status = ?
    AND task_id > ?`` ordered by task_id reads the (session_id, status, task_id) index in order, so
    each page costs the same however deep it is (OFFSET would rescan every earlier row)."""
    return Query(
        filters=(
            Filter("session_id", "eq", session_id),
            Filter("status", "eq", status),
            Filter("task_id", "gt", last),
        ),
        order_by=("task_id",),
        fields=TASK_FIELDS,
        limit=PAGE_ROWS,
    )


@dataclass
class RestoreBody:
    """The restore answer, produced lazily by ``chunks()`` (JSON bytes)."""

    session_id: str
    session: dict[str, Any]
    buffered_tasks: dict[str, dict[str, Any]]

    def chunks(self) -> Iterator[bytes]:
        """The JSON document in pieces of about ``PAGE_ROWS`` tasks.

        Cost: one COUNT over the (session_id, status) index, one lookup per 1000 buffered tasks,
        and one indexed page query per ``PAGE_ROWS`` tasks. Memory: one page of rows and its JSON.
        """
        backend = sql_backend(TASKS)
        with backend.read_snapshot():
            stored_state = _stored_state(backend, list(self.buffered_tasks))
            buffered_out = [
                _with_stored_created(task, stored_state.get(task_id))
                for task_id, task in sorted(self.buffered_tasks.items())
                if task["status"] in RESTORE_STATUSES
            ]
            replaced = sum(1 for _, status in stored_state.values() if status in RESTORE_STATUSES)
            stored_count = backend.count(TASKS, _stored_tasks(self.session_id))
            tasks_count = stored_count - replaced + len(buffered_out)

            head = json_codec.dumps(
                {"session_id": self.session_id, "session": self.session, "tasks_count": tasks_count}
            )
            yield head[:-1] + b',"tasks":['  # the object stays open for the task array
            first = True
            use_json = MYSQL_JSON_PATH and backend.json_rows_supported()
            pages = self._stored_pages_mysql(backend) if use_json else self._stored_pages(backend)
            for page in pages:
                if page:
                    yield (b"" if first else b",") + page
                    first = False
            if buffered_out:
                yield (b"" if first else b",") + json_codec.dumps(buffered_out)[1:-1]
        restored_at = json_codec.dumps(dt.datetime.now(dt.UTC))
        yield b'],"restored_at":' + restored_at + b"}"

    def _stored_pages(self, backend: SQLBackend) -> Iterator[bytes]:
        """Stored pending/processing tasks not replaced by a buffered write, as comma-joined JSON
        objects, page by page (the portable path: rows from ``query``, rendered by orjson)."""
        skip = self.buffered_tasks
        for status in RESTORE_STATUSES:
            last = ""
            while True:
                rows = backend.query(TASKS, _page_spec(self.session_id, status, last))
                if not rows:
                    break
                last = rows[-1]["task_id"]
                yield json_codec.dumps([task_from_record(row) for row in rows if row["task_id"] not in skip])[
                    1:-1
                ]
                if len(rows) < PAGE_ROWS:
                    break

    def _stored_pages_mysql(self, backend: SQLBackend) -> Iterator[bytes]:
        """The same pages with each task rendered to JSON by MySQL/MariaDB (the SQL plugin's
        ``query_json``): bench/restore.py measured the portable path at ~25 us per task, most of it
        in Python (the driver parsing datetimes, Django making them aware, building dicts). Here
        the server renders each row (in C) and Python only joins bytes. Same keyset pages; the
        (session_id, status) index is forced (on a small or freshly analysed table the planner may
        pick a primary-key range scan from ``task_id > ?``, reading other sessions' rows)."""
        skip = self.buffered_tasks
        for status in RESTORE_STATUSES:
            last = ""
            while True:
                spec = _page_spec(self.session_id, status, last)
                rows = backend.query_json(TASKS, spec, index=_SESSION_STATUS_INDEX)
                if not rows:
                    break
                last = rows[-1][0]
                yield b",".join(body for task_id, body in rows if task_id not in skip)
                if len(rows) < PAGE_ROWS:
                    break


#: Off only in tests that check both paths give the same answer.
MYSQL_JSON_PATH = True


def _stored_tasks(session_id: str) -> Query:
    return Query(filters=(Filter("session_id", "eq", session_id), Filter("status", "in", RESTORE_STATUSES)))


def _stored_state(backend: SQLBackend, task_ids: list[str]) -> dict[str, tuple[dt.datetime, str]]:
    """task_id -> (created_at, status) of the stored rows among ``task_ids``."""
    found: dict[str, tuple[dt.datetime, str]] = {}
    for start in range(0, len(task_ids), IDS_PER_QUERY):
        spec = Query(
            filters=(Filter("task_id", "in", task_ids[start : start + IDS_PER_QUERY]),),
            fields=("task_id", "created_at", "status"),
        )
        for row in backend.query(TASKS, spec):
            found[row["task_id"]] = (row["created_at"], row["status"])
    return found


def _with_stored_created(task: dict[str, Any], stored: tuple[dt.datetime, str] | None) -> dict[str, Any]:
    if stored is not None:
        task["created_at"] = stored[0]
    return task


def session_restore(*, session_id: str, buffer: WriteBuffer | None = None) -> RestoreBody:
    """Everything a client needs to resume ``session_id``; raises ``NotFound`` when it exists nowhere.

    The session and its buffered tasks are read here (so a 404 or an unreachable buffer is known
    before any byte is sent); the stored tasks are read while ``chunks()`` is consumed. Memory for
    the buffered tasks is bounded by the buffer's capacity (normally a few thousand per session).
    """
    buffer = buffer or get_write_buffer()
    buffered_tasks = {
        task["task_id"]: task_from_record(task) for task in buffer.children(SESSIONS, session_id)
    }
    row = session_row_get(session_id=session_id, buffer=buffer)
    if row is None:
        raise NotFound("Session not found", extra={"session_id": session_id})
    return RestoreBody(session_id=session_id, session=session_detail(row), buffered_tasks=buffered_tasks)
