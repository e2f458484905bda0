"""GET /recovery/status (docs/api.md §4): readiness for a client's recovery."""

from __future__ import annotations

import datetime as dt

import pytest

from storage_backends.flush import flush_all
from storage_backends.models import DeadLetter
from tests.factories import session_record, task_record
from tests.recovery.stored import store_session

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/translation/recovery/status"
SESSIONS, TASKS = "translation_sessions", "translation_tasks"


def test_reports_incomplete_sessions_buffered_items_and_ready(api_client, write_buffer):
    store_session("stored-open", status="processing")
    store_session("stored-done", status="completed")
    write_buffer.add(SESSIONS, [session_record("buffered-open", status="pending")])
    write_buffer.add(TASKS, [task_record("buffered-open") for _ in range(3)])

    response = api_client.get(URL)

    body = response.json()
    assert response.status_code == 200
    assert body["ready"] is True
    assert body["incomplete_sessions"] == 2
    assert body["buffered"] == {"sessions": 1, "tasks": 3, "total": 4}
    assert body["storage"] == {"database": "healthy", "buffer": "healthy", "object_store": "healthy"}


def test_last_flush_is_the_time_of_the_latest_successful_flush(api_client, write_buffer):
    assert api_client.get(URL).json()["last_flush"] is None
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)

    flush_all(write_buffer, wait=5)

    last = dt.datetime.fromisoformat(api_client.get(URL).json()["last_flush"])
    assert last >= before


def test_counts_dead_letters_not_requeued(api_client, write_buffer):
    now = dt.datetime.now(dt.UTC)
    for requeued in (None, None, now):
        DeadLetter.objects.create(
            collection=TASKS, record_id="t", payload="{}", error="x", accepted_at=now, requeued_at=requeued
        )

    assert api_client.get(URL).json()["dead_letters"] == 2


def test_unreachable_buffer_is_reported_not_an_error(api_client, redis_down):
    store_session("s-1", status="pending")

    response = api_client.get(URL)

    body = response.json()
    assert response.status_code == 200
    assert body["ready"] is False
    assert body["storage"]["buffer"] == "unhealthy"
    assert body["buffered"]["total"] is None
    assert body["incomplete_sessions"] == 1  # stored ones still counted
