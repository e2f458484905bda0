"""Output shapes of sessions and tasks for the query, recovery and lifecycle answers (docs/api.md §1, §4, §5).

Plain functions over ``.values()`` rows (or the buffer's model-ready dicts), not DRF serializers:
a restore renders 100,000+ tasks, and a serializer costs tens of microseconds per row where these
cost one or two. Datetimes stay ``datetime`` objects; the orjson renderer writes them as ISO 8601
with ``Z``.

    row = registry.backend("translation_sessions").read("translation_sessions", sid)
    body = session_detail(row)   # every field + pending_tasks, progress, estimated_completion

The fields come from the records' validation schemas (translation.validation); the OpenAPI
descriptions of these shapes (translation.openapi, documentation only) are derived from them too.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from translation.models import INCOMPLETE_STATUSES
from translation.validation import SessionIn, TaskIn

#: The timestamps the service sets on every stored record (translation.models).
SERVICE_TIMESTAMPS = ("created_at", "updated_at")
#: Every stored field, in answer order: the record's validation schema (its one declaration), then
#: the service's timestamps.
SESSION_FIELDS = (*SessionIn.model_fields, *SERVICE_TIMESTAMPS)
TASK_FIELDS = (*TaskIn.model_fields, *SERVICE_TIMESTAMPS)
#: The stored fields of a session list item (docs/api.md §3/§4), in answer order.
SUMMARY_FIELDS = (
    "session_id",
    "filename",
    "status",
    "total_tasks",
    "completed_tasks",
    "failed_tasks",
    "processing_tasks",
    *SERVICE_TIMESTAMPS,
)
_CONFIDENCE = TASK_FIELDS.index("confidence")


def pending_tasks(row: dict[str, Any]) -> int:
    """``max(total - completed - failed - processing, 0)`` (docs/api.md §1)."""
    done = row["completed_tasks"] + row["failed_tasks"] + row["processing_tasks"]
    return max(row["total_tasks"] - done, 0)


def progress(row: dict[str, Any]) -> float:
    """Percent of tasks completed, one decimal; 0.0 for a session without tasks."""
    total = row["total_tasks"]
    return round(100 * row["completed_tasks"] / total, 1) if total else 0.0


def estimated_completion(row: dict[str, Any]) -> dt.datetime | None:
    """When the session should finish at the rate its tasks finished so far (completed or failed
    tasks per second between created_at and the latest write).

    None when there is nothing to project from: a finished session, no finished task yet, or no
    time elapsed.
    """
    if row["status"] not in INCOMPLETE_STATUSES:
        return None
    finished = row["completed_tasks"] + row["failed_tasks"]
    remaining = row["total_tasks"] - finished
    elapsed = (row["updated_at"] - row["created_at"]).total_seconds()
    if finished <= 0 or remaining <= 0 or elapsed <= 0:
        return None
    return row["updated_at"] + dt.timedelta(seconds=remaining * elapsed / finished)


def session_summary(row: dict[str, Any]) -> dict[str, Any]:
    """The list item of docs/api.md §3/§4: counters, pending_tasks and progress."""
    return {
        "session_id": row["session_id"],
        "filename": row["filename"],
        "status": row["status"],
        "total_tasks": row["total_tasks"],
        "completed_tasks": row["completed_tasks"],
        "failed_tasks": row["failed_tasks"],
        "processing_tasks": row["processing_tasks"],
        "pending_tasks": pending_tasks(row),
        "progress": progress(row),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def session_detail(row: dict[str, Any]) -> dict[str, Any]:
    """Every stored field plus pending_tasks, progress and estimated_completion."""
    body = {name: row[name] for name in SESSION_FIELDS if name not in ("created_at", "updated_at")}
    body["pending_tasks"] = pending_tasks(row)
    body["progress"] = progress(row)
    body["estimated_completion"] = estimated_completion(row)
    body["created_at"] = row["created_at"]
    body["updated_at"] = row["updated_at"]
    return body


def task_from_values(values: tuple[Any, ...]) -> dict[str, Any]:
    """A task from a ``values_list(*TASK_FIELDS)`` tuple; confidence as a JSON number."""
    task = dict(zip(TASK_FIELDS, values, strict=True))
    confidence = values[_CONFIDENCE]
    if confidence is not None:
        task["confidence"] = float(confidence)
    return task


def task_from_record(record: dict[str, Any]) -> dict[str, Any]:
    """A task from a buffered (model-ready) record, with the same keys in the same order."""
    task = {name: record.get(name) for name in TASK_FIELDS}
    if isinstance(task["confidence"], Decimal):
        task["confidence"] = float(task["confidence"])
    return task
