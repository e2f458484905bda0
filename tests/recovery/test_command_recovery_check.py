"""manage.py recovery_check: what it finds and its exit status (0 fine, 1 problems, 2 unreachable)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command

from storage_backends.flush import flush_all
from storage_backends.models import DeadLetter
from tests.factories import session_record, task_record
from tests.recovery.stored import days_ago, store_session, store_tasks

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS, TASKS = "translation_sessions", "translation_tasks"


def run(*args: str) -> int:
    try:
        call_command("recovery_check", *args)
    except SystemExit as exc:
        return exc.code
    return 0


def report(capsys, *args: str) -> tuple[int, dict]:
    code = run("--json", *args)
    return code, json.loads(capsys.readouterr().out)


def consistent_session(session_id: str, **overrides) -> None:
    """A quiet session whose counters match its task rows."""
    store_session(
        session_id,
        total_tasks=3,
        completed_tasks=2,
        failed_tasks=1,
        processing_tasks=0,
        updated_at=days_ago(1),
        **overrides,
    )
    store_tasks(session_id, 2, status="completed")
    store_tasks(session_id, 1, status="failed")


def test_exit_0_and_ok_when_nothing_is_wrong(write_buffer, capsys):
    consistent_session("s-1", status="completed")
    store_session("running", status="processing")  # written just now: not stalled

    code = run()

    out = capsys.readouterr().out
    assert code == 0
    assert "OK: no problems found" in out
    assert "incomplete sessions: 1" in out


def test_stalled_processing_session_is_a_problem(write_buffer, capsys):
    store_session("stuck", status="processing", updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    store_session("fresh", status="processing")

    code, body = report(capsys, "--stalled-minutes", "60")

    assert code == 1
    assert [s["session_id"] for s in body["stalled_sessions"]] == ["stuck"]
    assert body["stalled_sessions"][0]["idle_minutes"] >= 119
    assert body["ok"] is False


def test_a_recent_buffered_write_means_not_stalled(write_buffer, capsys):
    store_session("s-1", status="processing", updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    write_buffer.add(SESSIONS, [session_record("s-1", status="processing")])

    code, body = report(capsys, "--stalled-minutes", "60")

    assert body["stalled_sessions_count"] == 0
    assert code == 0


def test_counters_that_disagree_with_task_rows_are_a_problem(write_buffer, capsys):
    consistent_session("good", status="completed")
    store_session(
        "bad", status="completed", total_tasks=3, completed_tasks=3, failed_tasks=0, updated_at=days_ago(1)
    )
    store_tasks("bad", 2, status="completed")
    store_tasks("bad", 1, status="pending")

    code, body = report(capsys)

    assert code == 1
    (mismatch,) = body["counter_mismatches"]
    assert mismatch["session_id"] == "bad"
    assert mismatch["counters"]["completed_tasks"] == 3
    assert mismatch["stored_rows"]["completed_tasks"] == 2


def test_more_task_rows_than_total_tasks_is_a_mismatch(write_buffer, capsys):
    store_session("s-1", status="completed", total_tasks=1, completed_tasks=2, updated_at=days_ago(1))
    store_tasks("s-1", 2, status="completed")

    code, body = report(capsys)

    assert code == 1
    assert body["counter_mismatches_count"] == 1


def test_sessions_still_being_written_are_not_compared(write_buffer, capsys):
    # given: counters disagree, but the session was written a minute ago (settling), or has buffered tasks
    store_session("recent", status="processing", completed_tasks=5)
    store_session("buffered", status="completed", completed_tasks=1, total_tasks=1, updated_at=days_ago(1))
    write_buffer.add(TASKS, [task_record("buffered", status="completed")])

    code, body = report(capsys, "--flush-overdue-seconds", "3600")

    assert body["counter_mismatches_count"] == 0
    assert code == 0


def test_dead_letters_waiting_are_a_problem(write_buffer, capsys):
    DeadLetter.objects.create(
        collection=TASKS, record_id="t-1", payload="{}", error="bad", accepted_at=dt.datetime.now(dt.UTC)
    )

    code, body = report(capsys)

    assert code == 1
    assert body["dead_letters"] == 1


def test_records_waiting_too_long_for_a_flush_are_a_problem(write_buffer, capsys):
    write_buffer.add(SESSIONS, [session_record("s-1", status="pending")])

    code, body = report(capsys, "--flush-overdue-seconds", "0")

    assert code == 1
    assert any("waited" in p for p in body["problems"])
    assert body["buffer"]["sessions"] == 1


def test_after_a_flush_nothing_waits(write_buffer, capsys):
    write_buffer.add(SESSIONS, [session_record("s-1", status="pending")])
    flush_all(write_buffer, wait=5)

    code, body = report(capsys, "--flush-overdue-seconds", "0")

    assert code == 0
    assert body["buffer"]["last_flush"] is not None


def test_exit_2_when_the_buffer_store_is_unreachable(redis_down, capsys):
    code = run()

    assert code == 2
    assert "buffer: unreachable" in capsys.readouterr().out


def test_json_report_has_every_section(write_buffer, capsys):
    code, body = report(capsys)

    assert code == 0
    assert set(body) >= {
        "ok",
        "problems",
        "database",
        "buffer",
        "incomplete_sessions",
        "stalled_sessions",
        "counter_mismatches",
        "dead_letters",
    }
