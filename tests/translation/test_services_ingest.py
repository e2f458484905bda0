"""Accepting task batches (translation.services.ingest): the session check and its cache of sessions
known to be stored, against the real buffer (Redis) and MariaDB."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import SessionNotFound
from tests.factories import task_record
from tests.recovery.stored import store_session
from translation.models import Session
from translation.services import ingest
from translation.services.ingest import task_batch_upsert
from translation.services.lifecycle import session_delete

pytestmark = pytest.mark.django_db(transaction=True)
TASKS = "translation_tasks"


def session_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "translation_sessions" in q["sql"]]


def test_tasks_of_a_stored_session_ask_the_database_once_then_not_again(write_buffer):
    store_session("s-1")

    with CaptureQueriesContext(connection) as first:
        task_batch_upsert(records=[task_record("s-1", "t-1")])
    with CaptureQueriesContext(connection) as second:
        task_batch_upsert(records=[task_record("s-1", "t-2")])

    assert len(session_queries(first.captured_queries)) == 1
    assert session_queries(second.captured_queries) == []
    assert set(write_buffer.get_many(TASKS, ["t-1", "t-2"])) == {"t-1", "t-2"}


def test_a_session_deleted_while_remembered_refuses_its_tasks(write_buffer):
    store_session("s-1")
    task_batch_upsert(records=[task_record("s-1", "t-1")])  # the session is now remembered as stored
    session_delete(session_id="s-1")

    with pytest.raises(SessionNotFound) as exc:
        task_batch_upsert(records=[task_record("s-1", "t-2")])

    assert exc.value.errors == [{"field": "tasks[0].session_id", "message": "session 's-1' not found"}]
    assert write_buffer.get_many(TASKS, ["t-1", "t-2"]) == {}


def test_a_remembered_session_is_checked_again_after_the_cache_time(write_buffer, monkeypatch):
    monkeypatch.setattr(ingest, "STORED_SESSION_CACHE_SECONDS", 0.2)
    store_session("s-1")
    task_batch_upsert(records=[task_record("s-1", "t-1")])
    # Gone without the service (no tombstone): only the expiry of the cache can notice.
    Session.objects.filter(pk="s-1").delete()
    time.sleep(0.3)

    with pytest.raises(SessionNotFound):
        task_batch_upsert(records=[task_record("s-1", "t-2")])

    assert "t-2" not in write_buffer.get_many(TASKS, ["t-2"])


def test_the_cache_never_outlives_half_the_tombstones(settings):
    settings.BUFFER_TOMBSTONE_TTL = 4

    assert ingest._stored_seconds() == 2


def test_an_unknown_session_is_not_remembered(write_buffer):
    with pytest.raises(SessionNotFound):
        task_batch_upsert(records=[task_record("nope", "t-1")])

    assert "nope" not in ingest._stored
