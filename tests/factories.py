"""Builders of valid records (docs/api.md §1) for tests and benchmarks."""

from __future__ import annotations

import itertools
from typing import Any

_counter = itertools.count(1)


def session_record(session_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    record = {
        "session_id": f"sess-{next(_counter)}" if session_id is None else session_id,
        "filename": "game_text.xlsx",
        "file_path": "/uploads/game_text.xlsx",
        "status": "processing",
        "llm_provider": "openai",
        "game_info": {"game_name": "Quest", "source_language": "en", "target_language": "de"},
        "metadata": {"user_id": "u-1"},
        "total_tasks": 10,
        "completed_tasks": 0,
        "failed_tasks": 0,
        "processing_tasks": 0,
    }
    record.update(overrides)
    return record


def task_record(session_id: str, task_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    record = {
        "task_id": f"task-{n}" if task_id is None else task_id,
        "session_id": session_id,
        "batch_id": "batch-1",
        "sheet_name": "Dialogue",
        "row_index": n,
        "column_name": "B",
        "source_text": f"Hello traveller {n}",
        "target_text": None,
        "context": "NPC greeting",
        "status": "pending",
        "confidence": None,
        "error_message": None,
        "retry_count": 0,
        "start_time": None,
        "end_time": None,
        "duration_ms": None,
    }
    record.update(overrides)
    return record
