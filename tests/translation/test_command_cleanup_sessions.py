"""manage.py cleanup_sessions: same rules as the API, printing each session."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.recovery.stored import days_ago, store_session, store_tasks
from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sessions():
    store_session("old-done", status="completed", updated_at=days_ago(100))
    store_tasks("old-done", 4)
    store_session("old-cancelled", status="cancelled", updated_at=days_ago(40))
    store_session("young-done", status="completed", updated_at=days_ago(5))
    store_tasks("young-done", 2)


def test_dry_run_prints_what_it_would_delete_and_deletes_nothing(write_buffer, sessions, capsys):
    call_command("cleanup_sessions", "--dry-run", "--completed-days", "90", "--failed-days", "30")

    out = capsys.readouterr().out
    assert "would delete old-done  completed" in out and "4 stored tasks" in out
    assert "would delete old-cancelled  cancelled" in out
    assert "young-done" not in out
    assert "dry run: would delete 2 sessions and 4 tasks" in out
    assert Session.objects.count() == 3 and Task.objects.count() == 6


def test_deletes_expired_sessions_and_prints_each(write_buffer, sessions, capsys):
    call_command("cleanup_sessions", "--completed-days", "90", "--failed-days", "30")

    out = capsys.readouterr().out
    assert "deleted old-done" in out
    assert "deleted 2 sessions and 4 tasks" in out
    assert list(Session.objects.values_list("pk", flat=True)) == ["young-done"]
    assert Task.objects.count() == 2


def test_defaults_come_from_the_retention_settings(write_buffer, sessions, capsys, settings):
    settings.RETENTION_COMPLETED_DAYS = 3
    settings.RETENTION_FAILED_DAYS = 30

    call_command("cleanup_sessions", "--quiet")

    out = capsys.readouterr().out
    assert "deleted 3 sessions and 6 tasks" in out
    assert "deleted old-done" not in out  # --quiet prints the totals only


def test_negative_days_are_refused(write_buffer):
    with pytest.raises(CommandError, match="0 or more"):
        call_command("cleanup_sessions", "--completed-days", "-1")


def test_unreachable_buffer_stops_with_an_error(write_buffer, sessions, settings):
    from storage_backends.buffer import _buffer_for
    from tests.processes import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    try:
        with pytest.raises(CommandError, match="cleanup stopped"):
            call_command("cleanup_sessions", "--completed-days", "90")
    finally:
        _buffer_for.cache_clear()
    assert Session.objects.count() == 3
