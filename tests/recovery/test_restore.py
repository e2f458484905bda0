"""POST /recovery/restore/{id} (docs/api.md §4): the session and exactly its pending and processing tasks."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from recovery import restore
from storage_backends.flush import flush_all
from tests.factories import session_record, task_record
from tests.recovery.stored import days_ago, store_session, store_tasks

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS, TASKS = "translation_sessions", "translation_tasks"
TASK_KEYS = {
    "task_id",
    "session_id",
    "batch_id",
    "sheet_name",
    "row_index",
    "column_name",
    "source_text",
    "target_text",
    "context",
    "status",
    "confidence",
    "error_message",
    "retry_count",
    "start_time",
    "end_time",
    "duration_ms",
    "created_at",
    "updated_at",
}


def restore_session(client, session_id: str):
    response = client.post(f"/api/v1/translation/recovery/restore/{session_id}")
    body = (
        orjson.loads(b"".join(response.streaming_content)) if response.status_code == 200 else response.json()
    )
    return response, body


def test_returns_exactly_the_pending_and_processing_tasks(api_client, write_buffer):
    store_session("s-1")
    pending = store_tasks("s-1", 3, status="pending")
    processing = store_tasks("s-1", 2, status="processing")
    store_tasks("s-1", 4, status="completed")
    store_tasks("s-1", 1, status="failed")
    store_session("other")
    store_tasks("other", 2, status="pending")

    response, body = restore_session(api_client, "s-1")

    assert response.status_code == 200
    assert sorted(t["task_id"] for t in body["tasks"]) == sorted(pending + processing)
    assert body["tasks_count"] == 5
    assert body["session_id"] == "s-1"


def test_tasks_carry_every_field_with_its_stored_value(api_client, write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1")])
    sent = task_record(
        "s-1",
        "t-1",
        status="processing",
        target_text="Hallo",
        confidence=0.9731,
        error_message=None,
        retry_count=2,
        start_time="2025-09-30T10:15:30Z",
        end_time=None,
        duration_ms=1500,
        source_text="Hello ünïcödé ",
    )
    write_buffer.add(TASKS, [sent])
    flush_all(write_buffer, wait=5)

    _, body = restore_session(api_client, "s-1")

    (task,) = body["tasks"]
    assert set(task) == TASK_KEYS
    for key, value in sent.items():
        if key != "start_time":
            assert task[key] == value, key
    assert isinstance(task["confidence"], float)
    assert dt.datetime.fromisoformat(task["start_time"]) == dt.datetime(
        2025, 9, 30, 10, 15, 30, tzinfo=dt.UTC
    )
    assert task["created_at"].endswith("Z") and task["updated_at"].endswith("Z")


def test_includes_a_session_and_tasks_accepted_but_not_flushed(api_client, write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1", status="processing", total_tasks=3)])
    write_buffer.add(TASKS, [task_record("s-1", f"t-{i}", status="pending") for i in range(3)])

    response, body = restore_session(api_client, "s-1")

    assert response.status_code == 200
    assert body["session"]["status"] == "processing"
    assert sorted(t["task_id"] for t in body["tasks"]) == ["t-0", "t-1", "t-2"]
    assert body["tasks_count"] == 3


def test_a_buffered_update_replaces_the_stored_task(api_client, write_buffer):
    # given: t-done stored pending, now buffered completed; t-again stored completed, now buffered pending
    created = days_ago(1).replace(microsecond=0)
    store_session("s-1")
    store_tasks("s-1", 1, status="pending", task_id="t-done", created_at=created)
    store_tasks("s-1", 1, status="completed", task_id="t-again", created_at=created)
    write_buffer.add(
        TASKS,
        [
            task_record("s-1", "t-done", status="completed"),
            task_record("s-1", "t-again", status="processing", retry_count=1),
        ],
    )

    _, body = restore_session(api_client, "s-1")

    (task,) = body["tasks"]
    assert task["task_id"] == "t-again"
    assert task["status"] == "processing" and task["retry_count"] == 1
    assert dt.datetime.fromisoformat(task["created_at"]) == created
    assert body["tasks_count"] == 1


def test_buffered_session_fields_win_over_the_stored_row(api_client, write_buffer):
    store_session("s-1", status="processing", completed_tasks=1)
    write_buffer.add(
        SESSIONS, [session_record("s-1", status="processing", completed_tasks=7, total_tasks=10)]
    )

    _, body = restore_session(api_client, "s-1")

    assert body["session"]["completed_tasks"] == 7
    assert body["session"]["progress"] == 70.0


def test_session_detail_has_every_field_and_the_derived_ones(api_client, write_buffer):
    store_session(
        "s-1",
        status="processing",
        total_tasks=10,
        completed_tasks=4,
        failed_tasks=1,
        processing_tasks=2,
        created_at=dt.datetime(2025, 1, 1, 10, 0, tzinfo=dt.UTC),
        updated_at=dt.datetime(2025, 1, 1, 10, 5, tzinfo=dt.UTC),
    )

    _, body = restore_session(api_client, "s-1")

    session = body["session"]
    assert session["pending_tasks"] == 3
    assert session["progress"] == 40.0
    assert session["game_info"] == session_record()["game_info"]
    assert session["file_path"] == "/uploads/game_text.xlsx"
    # 5 tasks finished in 5 minutes, 5 left: 5 more minutes after the latest write
    assert dt.datetime.fromisoformat(session["estimated_completion"]) == dt.datetime(
        2025, 1, 1, 10, 10, tzinfo=dt.UTC
    )


def test_estimated_completion_is_null_before_any_task_finished(api_client, write_buffer):
    store_session("s-1", status="processing", total_tasks=10, completed_tasks=0)

    _, body = restore_session(api_client, "s-1")

    assert body["session"]["estimated_completion"] is None


@pytest.mark.parametrize("mysql_json", [True, False], ids=["mysql-json", "orm"])
def test_tasks_spanning_many_pages_come_once_each(api_client, write_buffer, monkeypatch, mysql_json):
    monkeypatch.setattr(restore, "PAGE_ROWS", 7)
    monkeypatch.setattr(restore, "MYSQL_JSON_PATH", mysql_json)
    store_session("s-1")
    expected = store_tasks("s-1", 30, status="pending") + store_tasks("s-1", 15, status="processing")
    store_tasks("s-1", 10, status="completed")
    write_buffer.add(TASKS, [task_record("s-1", expected[3], status="completed")])

    _, body = restore_session(api_client, "s-1")

    returned = [t["task_id"] for t in body["tasks"]]
    assert len(returned) == len(set(returned)) == 44
    assert set(returned) == set(expected) - {expected[3]}
    assert body["tasks_count"] == 44


def test_a_session_without_open_tasks_restores_an_empty_list(api_client, write_buffer):
    store_session("s-1", status="completed")
    store_tasks("s-1", 2, status="completed")

    response, body = restore_session(api_client, "s-1")

    assert response.status_code == 200
    assert body["tasks"] == [] and body["tasks_count"] == 0
    assert body["restored_at"].endswith("Z")


def test_unknown_session_is_404_with_its_id(api_client, write_buffer):
    response, body = restore_session(api_client, "nope")

    assert response.status_code == 404
    assert body["error_code"] == "NOT_FOUND"
    assert body["detail"] == "Session not found"
    assert body["session_id"] == "nope"


def test_the_answer_is_streamed(api_client, write_buffer):
    store_session("s-1")
    store_tasks("s-1", 3, status="pending")

    response = api_client.post("/api/v1/translation/recovery/restore/s-1")

    assert response.streaming
    assert response["Content-Type"] == "application/json"


def test_unreachable_buffer_is_503_before_anything_is_sent(api_client, redis_down):
    store_session("s-1")

    response = api_client.post("/api/v1/translation/recovery/restore/s-1")

    assert response.status_code == 503
    assert not response.streaming


def test_count_and_list_agree_when_a_flush_lands_during_the_restore(api_client, write_buffer):
    # given: tasks buffered when the restore reads the buffer, flushed before it reads the database
    store_session("s-1")
    store_tasks("s-1", 3, status="pending")
    write_buffer.add(TASKS, [task_record("s-1", f"new-{i}", status="pending") for i in range(2)])
    body_parts = restore.session_restore(session_id="s-1").chunks()

    # when
    flush_all(write_buffer, wait=5)
    body = orjson.loads(b"".join(body_parts))

    # then: each task once, and the count matches
    returned = [t["task_id"] for t in body["tasks"]]
    assert len(returned) == len(set(returned)) == 5
    assert body["tasks_count"] == 5


@pytest.mark.parametrize("mysql_json", [True, False], ids=["mysql-json", "orm"])
def test_both_rendering_paths_give_the_same_tasks(api_client, write_buffer, monkeypatch, mysql_json):
    # given: values that stress rendering: escapes, control and non-BMP characters, decimals, times
    write_buffer.add(SESSIONS, [session_record("s-1")])
    tricky = 'quote " backslash \\ newline \n tab \t ctrl \x01 del \x7f ü 😀 \u2028 </script>'
    sent = [
        task_record("s-1", "t-1", status="pending", source_text=tricky, context="", confidence=0.5),
        task_record("s-1", "t-2", status="processing", confidence=0.0, start_time="2025-09-30T10:15:30Z"),
        task_record(
            "s-1", "t-3", status="processing", confidence=1.0, start_time="2025-09-30T10:15:30.000123+02:00"
        ),
        task_record(
            "s-1", "t-4", status="pending", duration_ms=2**63 - 1, retry_count=2**31 - 1, row_index=0
        ),
    ]
    write_buffer.add(TASKS, sent)
    flush_all(write_buffer, wait=5)
    monkeypatch.setattr(restore, "MYSQL_JSON_PATH", mysql_json)

    _, body = restore_session(api_client, "s-1")

    tasks = {t["task_id"]: t for t in body["tasks"]}
    for record in sent:
        task = tasks[record["task_id"]]
        assert set(task) == TASK_KEYS
        for key in ("source_text", "context", "confidence", "duration_ms", "retry_count", "row_index"):
            assert task[key] == record[key], key
    assert tasks["t-2"]["start_time"] == "2025-09-30T10:15:30Z"
    assert tasks["t-3"]["start_time"] == "2025-09-30T08:15:30.000123Z"
    assert tasks["t-1"]["start_time"] is None
