"""Session delete, status change and retention cleanup (translation.services.lifecycle)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import NotFound
from storage_backends.flush import flush_all
from storage_backends.models import DeadLetter
from tests.factories import session_record, task_record
from tests.recovery.stored import days_ago, store_session, store_tasks
from translation.models import Session, Task
from translation.services import lifecycle
from translation.services.lifecycle import session_delete, session_status_update, sessions_cleanup

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS, TASKS, AUDIT_LOGS = "translation_sessions", "translation_tasks", "audit_logs"


def task_deletes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("DELETE FROM `translation_tasks`")]


# --- delete --------------------------------------------------------------------------------


def test_delete_removes_the_session_and_all_its_tasks(write_buffer):
    store_session("s-1")
    store_tasks("s-1", 5, status="pending")
    store_tasks("s-1", 3, status="completed")
    store_session("other")
    store_tasks("other", 2)

    deleted = session_delete(session_id="s-1")

    assert deleted == 8
    assert not Session.objects.filter(pk="s-1").exists()
    assert not Task.objects.filter(session_id="s-1").exists()
    assert Task.objects.filter(session_id="other").count() == 2


def test_delete_removes_tasks_in_bounded_statements(write_buffer, monkeypatch):
    monkeypatch.setattr(lifecycle, "DELETE_CHUNK_ROWS", 10)
    store_session("s-1")
    store_tasks("s-1", 45, status="pending")
    store_tasks("s-1", 12, status="failed")

    with CaptureQueriesContext(connection) as ctx:
        deleted = session_delete(session_id="s-1")

    assert deleted == 57
    # 45 pending in pages of 10 -> 5 statements, 12 failed -> 2: never one statement for all
    assert len(task_deletes(ctx.captured_queries)) == 7
    assert Task.objects.count() == 0


def test_small_sessions_share_a_delete_statement(write_buffer, monkeypatch):
    monkeypatch.setattr(lifecycle, "DELETE_CHUNK_ROWS", 10)
    for i in range(6):
        store_session(f"s-{i}", status="completed", updated_at=days_ago(200))
        store_tasks(f"s-{i}", 3)

    with CaptureQueriesContext(connection) as ctx:
        result = sessions_cleanup(completed_days=90, failed_days=30)

    assert result.deleted_tasks == 18
    # 3 sessions (9 rows) per statement within the 10-row budget
    assert len(task_deletes(ctx.captured_queries)) == 2


def test_delete_before_flush_stays_deleted_after_a_flush(write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.add(TASKS, [task_record("s-1") for _ in range(4)])

    deleted = session_delete(session_id="s-1")
    flush_all(write_buffer, wait=5)

    assert deleted == 4
    assert not Session.objects.filter(pk="s-1").exists()
    assert Task.objects.count() == 0
    assert DeadLetter.objects.count() == 0  # purged, not left to be dead-lettered
    assert write_buffer.counts() == {SESSIONS: 0, TASKS: 0, AUDIT_LOGS: 0}


def test_delete_counts_a_task_stored_and_buffered_once(write_buffer):
    # given: 5 stored tasks, 3 of them with a newer buffered write, and 2 tasks only buffered
    store_session("s-1")
    stored = store_tasks("s-1", 5, status="pending")
    write_buffer.add(TASKS, [task_record("s-1", task_id, status="completed") for task_id in stored[:3]])
    write_buffer.add(TASKS, [task_record("s-1") for _ in range(2)])

    deleted = session_delete(session_id="s-1")
    flush_all(write_buffer, wait=5)

    assert deleted == 7
    assert Task.objects.count() == 0


def test_delete_of_an_unknown_session_raises_not_found(write_buffer):
    with pytest.raises(NotFound) as exc:
        session_delete(session_id="nope")

    assert exc.value.extra == {"session_id": "nope"}


def test_a_task_write_after_the_delete_is_refused(api_client, write_buffer):
    store_session("s-1")
    session_delete(session_id="s-1")

    response = api_client.post(
        "/api/v1/translation/tasks/batch", {"tasks": [task_record("s-1")]}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["error_code"] == "SESSION_NOT_FOUND"


# --- status ----------------------------------------------------------------------------------


def test_status_update_of_a_buffered_only_session_is_stored_by_the_next_flush(write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1", status="processing", total_tasks=9, filename="a.xlsx")])

    row = session_status_update(session_id="s-1", status="cancelled")
    flush_all(write_buffer, wait=5)

    assert row["status"] == "cancelled"
    stored = Session.objects.get(pk="s-1")
    assert (stored.status, stored.total_tasks, stored.filename) == ("cancelled", 9, "a.xlsx")


def test_status_update_keeps_the_newest_buffered_fields(write_buffer):
    # given: the stored row is older than a buffered write; the update must build on the buffered one
    store_session("s-1", status="processing", completed_tasks=1)
    write_buffer.add(SESSIONS, [session_record("s-1", status="processing", completed_tasks=6)])

    session_status_update(session_id="s-1", status="failed")
    flush_all(write_buffer, wait=5)

    stored = Session.objects.get(pk="s-1")
    assert (stored.status, stored.completed_tasks) == ("failed", 6)


def test_status_update_keeps_created_at_of_the_stored_row(write_buffer):
    created = days_ago(10).replace(microsecond=0)
    store_session("s-1", status="processing", created_at=created)

    row = session_status_update(session_id="s-1", status="completed")

    assert row["created_at"] == created
    assert row["updated_at"] > created


def test_status_update_of_an_unknown_session_raises_not_found(write_buffer):
    with pytest.raises(NotFound):
        session_status_update(session_id="nope", status="cancelled")

    assert write_buffer.counts()[SESSIONS] == 0


# --- cleanup ---------------------------------------------------------------------------------


def make_expiry_mix() -> set[str]:
    """Sessions on both sides of each retention limit (90 / 30 days); returns the expired ids."""
    store_session("completed-old", status="completed", updated_at=days_ago(91))
    store_session("completed-young", status="completed", updated_at=days_ago(89))
    store_session("failed-old", status="failed", updated_at=days_ago(31))
    store_session("failed-young", status="failed", updated_at=days_ago(29))
    store_session("cancelled-old", status="cancelled", updated_at=days_ago(31))
    store_session("processing-old", status="processing", updated_at=days_ago(400))
    store_session("pending-old", status="pending", updated_at=days_ago(400))
    for session in Session.objects.all():
        store_tasks(session.session_id, 2)
    return {"completed-old", "failed-old", "cancelled-old"}


def test_cleanup_deletes_exactly_the_expired_sessions_with_their_tasks(write_buffer):
    expired = make_expiry_mix()

    result = sessions_cleanup(completed_days=90, failed_days=30)

    assert (result.deleted_sessions, result.deleted_tasks) == (3, 6)
    remaining = set(Session.objects.values_list("pk", flat=True))
    assert remaining.isdisjoint(expired) and len(remaining) == 4
    assert Task.objects.count() == 8
    assert not Task.objects.filter(session_id__in=expired).exists()


def test_dry_run_deletes_nothing(write_buffer):
    make_expiry_mix()

    result = sessions_cleanup(completed_days=90, failed_days=30, dry_run=True)

    assert (result.deleted_sessions, result.deleted_tasks, result.dry_run) == (3, 6, True)
    assert Session.objects.count() == 7 and Task.objects.count() == 14


def test_dry_run_counts_equal_the_real_counts_over_many_rounds(write_buffer, monkeypatch):
    monkeypatch.setattr(lifecycle, "CLEANUP_SESSIONS_PER_ROUND", 25)
    monkeypatch.setattr(lifecycle, "DELETE_CHUNK_ROWS", 40)
    for i in range(120):
        status = ("completed", "failed", "cancelled", "processing")[i % 4]
        store_session(f"s-{i:03}", status=status, updated_at=days_ago(100 if i % 3 else 10))
        store_tasks(f"s-{i:03}", i % 7)
    store_session("big", status="failed", updated_at=days_ago(100))
    store_tasks("big", 130)  # larger than a chunk: deleted page by page

    dry = sessions_cleanup(completed_days=90, failed_days=30, dry_run=True)
    real = sessions_cleanup(completed_days=90, failed_days=30)

    assert (dry.deleted_sessions, dry.deleted_tasks) == (real.deleted_sessions, real.deleted_tasks)
    assert real.deleted_sessions > 50 and real.deleted_tasks > 130
    assert sessions_cleanup(completed_days=90, failed_days=30).deleted_sessions == 0


def test_cleanup_keeps_a_session_with_a_newer_buffered_write(write_buffer):
    store_session("s-1", status="completed", updated_at=days_ago(200))
    write_buffer.add(SESSIONS, [session_record("s-1", status="completed")])

    dry = sessions_cleanup(completed_days=90, failed_days=30, dry_run=True)
    real = sessions_cleanup(completed_days=90, failed_days=30)

    assert dry.deleted_sessions == real.deleted_sessions == 0
    assert Session.objects.filter(pk="s-1").exists()


def test_cleanup_keeps_a_session_whose_tasks_are_being_written_with_those_tasks(write_buffer):
    # 202 is a promise: tasks accepted for an old session are stored, not purged by the cleanup
    store_session("s-1", status="completed", updated_at=days_ago(200))
    write_buffer.add(TASKS, [task_record("s-1") for _ in range(3)])

    result = sessions_cleanup(completed_days=90, failed_days=30)
    flush_all(write_buffer, wait=5)

    assert (result.deleted_sessions, result.deleted_tasks) == (0, 0)
    assert Task.objects.count() == 3
    assert DeadLetter.objects.count() == 0


def test_cleanup_never_leaves_a_session_written_to_during_it_without_its_tasks(write_buffer, monkeypatch):
    # given: an expired session with stored tasks; a write of the session is accepted (and even
    # flushed) just after the cleanup read its page, before the round deletes anything
    store_session("s-1", status="completed", updated_at=days_ago(200))
    write_buffer.add(TASKS, [task_record("s-1", f"t-{i}") for i in range(3)])
    flush_all(write_buffer, wait=5)
    original = lifecycle.task_status_counts

    def counts_then_session_written(ids):
        answer = original(ids)
        write_buffer.add(SESSIONS, [session_record("s-1", status="processing")])
        flush_all(write_buffer, wait=5)
        return answer

    monkeypatch.setattr(lifecycle, "task_status_counts", counts_then_session_written)

    # when
    result = sessions_cleanup(completed_days=90, failed_days=30)

    # then: the session is kept, and so are its tasks
    assert result.deleted_sessions == 0
    assert Session.objects.get().status == "processing"
    assert Task.objects.count() == 3


def test_a_session_write_during_its_delete_is_refused_not_accepted_and_removed(
    api_client, write_buffer, monkeypatch
):
    # given: a delete in progress (between its first and last step)
    store_session("s-1", status="completed", updated_at=days_ago(1))
    original = lifecycle._delete_stored_tasks
    answers = []

    def write_during_delete(session_ids, counts=None):
        answers.append(
            api_client.post(
                "/api/v1/translation/sessions/batch", {"sessions": [session_record("s-1")]}, format="json"
            )
        )
        return original(session_ids, counts)

    monkeypatch.setattr(lifecycle, "_delete_stored_tasks", write_during_delete)

    # when
    session_delete(session_id="s-1", buffer=write_buffer)

    # then: the write was answered 503 with Retry-After (not 202 and then silently removed)...
    assert answers[0].status_code == 503, answers[0].content
    assert answers[0].json()["error_code"] == "STORAGE_UNAVAILABLE"
    assert answers[0].headers["Retry-After"]
    monkeypatch.undo()
    # ...and once the delete is over, the same write creates the session anew
    response = api_client.post(
        "/api/v1/translation/sessions/batch", {"sessions": [session_record("s-1")]}, format="json"
    )
    assert response.status_code == 202
    flush_all(write_buffer, wait=5)
    assert Session.objects.filter(pk="s-1").exists()


def test_cleanup_reports_each_session_to_the_callback(write_buffer):
    make_expiry_mix()
    seen = []

    sessions_cleanup(
        completed_days=90,
        failed_days=30,
        on_session=lambda sid, status, updated, tasks: seen.append((sid, tasks)),
    )

    assert sorted(seen) == [("cancelled-old", 2), ("completed-old", 2), ("failed-old", 2)]


def test_celery_task_runs_the_cleanup_with_the_configured_retention(write_buffer, settings):
    from translation.tasks import cleanup_expired_sessions

    settings.RETENTION_COMPLETED_DAYS = 10
    settings.RETENTION_FAILED_DAYS = 5
    store_session("c", status="completed", updated_at=days_ago(11))
    store_session("f", status="failed", updated_at=days_ago(6))
    store_session("young", status="completed", updated_at=days_ago(9))

    result = cleanup_expired_sessions.apply().get()

    assert result["deleted_sessions"] == 2
    assert list(Session.objects.values_list("pk", flat=True)) == ["young"]


def test_beat_schedules_the_cleanup_daily(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["cleanup-expired-sessions"]

    assert entry["task"] == "translation.tasks.cleanup_expired_sessions"
    assert entry["schedule"].remaining_estimate(days_ago(0)).total_seconds() <= 86_400
