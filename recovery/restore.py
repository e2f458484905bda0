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

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from core import json_codec
from core.errors import NotFound
from storage_backends.buffer import WriteBuffer, get_write_buffer
from translation.models import Task, TaskStatus
from translation.representation import (
    TASK_FIELDS,
    session_detail,
    task_from_record,
    task_from_values,
)
from translation.selectors import IDS_PER_QUERY, session_row_get

RESTORE_STATUSES = (TaskStatus.PENDING.value, TaskStatus.PROCESSING.value)
# Rows per database page: ~1 MB of typical tasks, so a page is one quick indexed range read and the
# process holds only this many rows at a time (measured in bench/restore.py).
PAGE_ROWS = 2000


@contextlib.contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent view of the database for every read inside (a read-only transaction).

    The service runs MySQL/MariaDB at READ COMMITTED, where each statement sees newer commits;
    ``SET TRANSACTION`` without a scope changes only the next transaction to REPEATABLE READ, whose
    snapshot is taken at its first read. Plain reads take no row locks, so writers are not held up.

    SQLite's transactions are snapshots already, but ``atomic()`` there begins IMMEDIATE (config.py),
    which takes the file's single write lock: held while the answer streams, it would stop every
    write (the embedded buffer's included) for the client's download time. A DEFERRED transaction
    is a read snapshot in WAL mode and blocks no writer.
    """
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        with _sqlite_read_snapshot():
            yield
        return
    if connection.vendor == "mysql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    with transaction.atomic():
        yield


@contextlib.contextmanager
def _sqlite_read_snapshot() -> Iterator[None]:
    """A DEFERRED transaction on the SQLite connection, for reads only: Django still sees autocommit,
    so the ORM's reads inside run in it, and it ends with a rollback."""
    connection.ensure_connection()
    raw = connection.connection
    raw.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        raw.execute("ROLLBACK")  # nothing to keep: it only read


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
        with _snapshot():
            stored_state = _stored_state(list(self.buffered_tasks))
            buffered_out = [
                _with_stored_created(task, stored_state.get(task_id))
                for task_id, task in sorted(self.buffered_tasks.items())
                if task["status"] in RESTORE_STATUSES
            ]
            replaced = sum(1 for _, status in stored_state.values() if status in RESTORE_STATUSES)
            stored_count = _stored_tasks(self.session_id).count()
            tasks_count = stored_count - replaced + len(buffered_out)

            head = json_codec.dumps(
                {"session_id": self.session_id, "session": self.session, "tasks_count": tasks_count}
            )
            yield head[:-1] + b',"tasks":['  # the object stays open for the task array
            first = True
            pages = self._stored_pages_mysql() if _use_mysql_json() else self._stored_pages()
            for page in pages:
                if page:
                    yield (b"" if first else b",") + page
                    first = False
            if buffered_out:
                yield (b"" if first else b",") + json_codec.dumps(buffered_out)[1:-1]
        restored_at = json_codec.dumps(dt.datetime.now(dt.UTC))
        yield b'],"restored_at":' + restored_at + b"}"

    def _stored_pages(self) -> Iterator[bytes]:
        """Stored pending/processing tasks not replaced by a buffered write, as comma-joined JSON
        objects, page by page (the portable path: ORM rows, rendered by orjson).

        Keyset pagination per status: ``session_id = ? AND status = ? AND task_id > ?`` ordered by
        task_id reads the (session_id, status, task_id) index in order, so each page costs the
        same however deep it is (OFFSET would rescan every earlier row).
        """
        skip = self.buffered_tasks
        for status in RESTORE_STATUSES:
            last = ""
            while True:
                rows = list(
                    Task.objects.filter(session_id=self.session_id, status=status, task_id__gt=last)
                    .order_by("task_id")
                    .values_list(*TASK_FIELDS)[:PAGE_ROWS]
                )
                if not rows:
                    break
                last = rows[-1][0]
                yield json_codec.dumps([task_from_values(row) for row in rows if row[0] not in skip])[1:-1]
                if len(rows) < PAGE_ROWS:
                    break

    def _stored_pages_mysql(self) -> Iterator[bytes]:
        """The same pages with each task rendered to JSON by MySQL/MariaDB (``JSON_OBJECT``).

        bench/restore.py measured the portable path at ~25 us per task, most of it in Python:
        the driver parsing datetimes, Django making them aware, building dicts. Here the server
        renders each row (in C) and Python only joins bytes. Same keyset pages and index.
        """
        skip = self.buffered_tasks
        sql = _mysql_page_sql()
        with connection.cursor() as cursor:
            for status in RESTORE_STATUSES:
                last = ""
                while True:
                    cursor.execute(sql, [self.session_id, status, last, PAGE_ROWS])
                    rows = cursor.fetchall()
                    if not rows:
                        break
                    last = rows[-1][0]
                    yield b",".join(body for task_id, body in rows if task_id not in skip)
                    if len(rows) < PAGE_ROWS:
                        break


#: Off only in tests that check both paths give the same answer.
MYSQL_JSON_PATH = True


def _use_mysql_json() -> bool:
    return MYSQL_JSON_PATH and connection.vendor == "mysql"


def _mysql_json_value(field: str) -> str:
    column = connection.ops.quote_name(Task._meta.get_field(field).column)
    if field in _DATETIME_FIELDS:
        # Stored as naive UTC (Django's MySQL convention). Same text as orjson's OPT_UTC_Z: no
        # fraction when the microseconds are 0. NULL stays NULL (JSON null).
        return (
            f"DATE_FORMAT({column}, IF(MICROSECOND({column}) = 0, "
            f"'%%Y-%%m-%%dT%%H:%%i:%%sZ', '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ'))"
        )
    return column  # strings, integers and the DECIMAL confidence render as JSON strings/numbers


_DATETIME_FIELDS = frozenset({"start_time", "end_time", "created_at", "updated_at"})
_SESSION_STATUS_INDEX = "task_session_status_idx"  # translation.models.Task.Meta.indexes


def _mysql_page_sql() -> str:
    pairs = ", ".join(f"'{field}', {_mysql_json_value(field)}" for field in TASK_FIELDS)
    qn = connection.ops.quote_name
    # BINARY: the driver hands back bytes (UTF-8), ready to join, instead of decoding to str.
    return (
        # FORCE INDEX: on a small or freshly analysed table the optimizer may pick a primary-key
        # range scan from ``task_id > ?`` (reading other sessions' rows); the composite index is
        # always right here: equality on its first two columns, range and order on the third.
        f"SELECT {qn('task_id')}, CAST(JSON_OBJECT({pairs}) AS BINARY) FROM {qn(Task._meta.db_table)} "
        f"FORCE INDEX ({qn(_SESSION_STATUS_INDEX)}) "
        f"WHERE {qn('session_id')} = %s AND {qn('status')} = %s AND {qn('task_id')} > %s "
        f"ORDER BY {qn('task_id')} LIMIT %s"
    )


def _stored_tasks(session_id: str) -> Any:
    return Task.objects.filter(session_id=session_id, status__in=RESTORE_STATUSES).order_by()


def _stored_state(task_ids: list[str]) -> dict[str, tuple[dt.datetime, str]]:
    """task_id -> (created_at, status) of the stored rows among ``task_ids``."""
    found: dict[str, tuple[dt.datetime, str]] = {}
    for start in range(0, len(task_ids), IDS_PER_QUERY):
        part = task_ids[start : start + IDS_PER_QUERY]
        for task_id, created_at, status in (
            Task.objects.filter(pk__in=part).order_by().values_list("pk", "created_at", "status")
        ):
            found[task_id] = (created_at, status)
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
    buffered_tasks = {task["task_id"]: task_from_record(task) for task in buffer.session_tasks(session_id)}
    row = session_row_get(session_id=session_id, buffer=buffer)
    if row is None:
        raise NotFound("Session not found", extra={"session_id": session_id})
    return RestoreBody(session_id=session_id, session=session_detail(row), buffered_tasks=buffered_tasks)
