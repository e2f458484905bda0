"""GET /recovery/incomplete-sessions (docs/api.md §4): stored and buffered sessions, newest first."""

from __future__ import annotations

import datetime as dt

import pytest

from storage_backends.flush import flush_all
from tests.factories import session_record
from tests.recovery.stored import days_ago, store_session

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/translation/recovery/incomplete-sessions"
SESSIONS = "translation_sessions"


def ids(response) -> list[str]:
    return [s["session_id"] for s in response.json()["sessions"]]


def test_lists_stored_pending_and_processing_sessions_only(api_client, write_buffer):
    for status in ("pending", "processing", "completed", "failed", "cancelled"):
        store_session(f"s-{status}", status=status)

    response = api_client.get(URL)

    assert response.status_code == 200
    assert sorted(ids(response)) == ["s-pending", "s-processing"]
    assert response.json()["count"] == 2


def test_includes_sessions_accepted_but_not_flushed(api_client, write_buffer):
    write_buffer.add(SESSIONS, [session_record("buffered-1", status="pending")])

    response = api_client.get(URL)

    assert ids(response) == ["buffered-1"]


def test_a_buffered_write_that_finishes_a_stored_session_removes_it(api_client, write_buffer):
    store_session("s-1", status="processing")
    write_buffer.add(SESSIONS, [session_record("s-1", status="completed")])

    assert ids(api_client.get(URL)) == []


def test_a_buffered_write_that_reopens_a_session_lists_it_with_the_stored_created_at(
    api_client, write_buffer
):
    created = days_ago(3).replace(microsecond=0)
    store_session("s-1", status="completed", created_at=created)
    write_buffer.add(SESSIONS, [session_record("s-1", status="processing", completed_tasks=4)])

    (item,) = api_client.get(URL).json()["sessions"]

    assert item["status"] == "processing"
    assert item["completed_tasks"] == 4
    assert dt.datetime.fromisoformat(item["created_at"]) == created


def test_newest_first_with_ties_broken_by_session_id(api_client, write_buffer):
    same = days_ago(1)
    store_session("b", status="pending", created_at=same)
    store_session("a", status="pending", created_at=same)
    store_session("old", status="pending", created_at=days_ago(5))
    write_buffer.add(SESSIONS, [session_record("new", status="pending")])

    assert ids(api_client.get(URL)) == ["new", "a", "b", "old"]


def test_items_are_summaries_with_pending_tasks_and_progress(api_client, write_buffer):
    store_session(
        "s-1", status="processing", total_tasks=8, completed_tasks=3, failed_tasks=1, processing_tasks=2
    )

    (item,) = api_client.get(URL).json()["sessions"]

    assert set(item) == {
        "session_id",
        "filename",
        "status",
        "total_tasks",
        "completed_tasks",
        "failed_tasks",
        "processing_tasks",
        "pending_tasks",
        "progress",
        "created_at",
        "updated_at",
    }
    assert item["pending_tasks"] == 2
    assert item["progress"] == 37.5
    assert item["created_at"].endswith("Z")


def test_same_session_stored_and_buffered_is_listed_once(api_client, write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1", status="pending")])
    flush_all(write_buffer, wait=5)
    write_buffer.add(SESSIONS, [session_record("s-1", status="processing")])

    body = api_client.get(URL).json()

    assert body["count"] == 1
    assert body["sessions"][0]["status"] == "processing"


def test_unreachable_buffer_is_503_rather_than_a_partial_list(api_client, redis_down):
    store_session("s-1", status="pending")

    response = api_client.get(URL)

    assert response.status_code == 503
    assert response.json()["error_code"] == "STORAGE_UNAVAILABLE"
