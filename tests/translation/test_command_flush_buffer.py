"""manage.py flush_buffer."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.factories import session_record, task_record
from tests.processes import free_port
from translation.models import Task

pytestmark = pytest.mark.django_db(transaction=True)


def test_flush_buffer_writes_everything_and_reports_counts(write_buffer, capsys):
    write_buffer.add("translation_sessions", [session_record("s-1")])
    write_buffer.add("translation_tasks", [task_record("s-1") for _ in range(7)])

    call_command("flush_buffer")

    assert Task.objects.count() == 7
    out = capsys.readouterr().out
    assert "written: 1 sessions, 7 tasks" in out


def test_flush_buffer_fails_with_a_clear_message_when_redis_is_down(write_buffer, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    with pytest.raises(CommandError, match="stays buffered"):
        call_command("flush_buffer", "--wait", "1")
