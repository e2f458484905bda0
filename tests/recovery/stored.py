"""Builders of rows already in the database (the state after a flush), for recovery and lifecycle tests.

store_session("s-1", status="completed", updated_at=days_ago(100))
store_tasks("s-1", 5, status="pending")
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from tests.factories import session_record, task_record
from translation.models import Session, Task


def days_ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)


def store_session(
    session_id: str | None = None,
    *,
    created_at: dt.datetime | None = None,
    updated_at: dt.datetime | None = None,
    **overrides: Any,
) -> Session:
    created_at = created_at or dt.datetime.now(dt.UTC)
    return Session.objects.create(
        **session_record(session_id, **overrides), created_at=created_at, updated_at=updated_at or created_at
    )


def store_tasks(
    session_id: str,
    count: int,
    *,
    created_at: dt.datetime | None = None,
    updated_at: dt.datetime | None = None,
    **overrides: Any,
) -> list[str]:
    """Insert ``count`` tasks of the session; returns their ids."""
    created_at = created_at or dt.datetime.now(dt.UTC)
    rows = []
    for _ in range(count):
        record = task_record(session_id, **overrides)
        if record["confidence"] is not None:
            record["confidence"] = Decimal(str(record["confidence"]))
        for name in ("start_time", "end_time"):
            if isinstance(record[name], str):
                record[name] = dt.datetime.fromisoformat(record[name])
        rows.append(Task(**record, created_at=created_at, updated_at=updated_at or created_at))
    Task.objects.bulk_create(rows, batch_size=1000)
    return [row.task_id for row in rows]
