"""manage.py pause_flushing (holds every flusher off during a restore) and wait_for_storage."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from core.exceptions import FlushFailed
from storage_backends.flush import flush_all
from tests.factories import session_record
from tests.processes import ROOT, free_port, service_env
from translation.models import Session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pauser(write_buffer):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "pause_flushing", "--wait", "5"],
        cwd=ROOT,
        env=service_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert "flushing paused" in process.stdout.readline()
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_while_paused_no_flusher_writes_and_after_it_the_buffer_flushes(write_buffer, pauser):
    write_buffer.add("translation_sessions", [session_record("s-paused")])

    paused_since = write_buffer.redis.get(f"{write_buffer.prefix}:paused")
    skipped = flush_all(write_buffer, wait=0)  # Celery's flush
    with pytest.raises(FlushFailed):
        flush_all(write_buffer, wait=0.5)  # POST /flush and flush_buffer wait, then fail
    assert not Session.objects.filter(session_id="s-paused").exists()

    pauser.send_signal(signal.SIGTERM)
    out, _ = pauser.communicate(timeout=30)
    flushed = flush_all(write_buffer, wait=5)

    assert paused_since is not None
    assert write_buffer.redis.get(f"{write_buffer.prefix}:paused") is None
    # one shard: every collection's lock is tried; several: only the non-empty shards' (BUFFER_SHARDS)
    expected = ["translation_sessions", "translation_tasks", "audit_logs"]
    assert skipped.skipped == (expected if write_buffer.shards == 1 else expected[:1])
    assert pauser.returncode == 0
    assert "flushing resumed" in out
    assert flushed.written["translation_sessions"] == 1
    assert Session.objects.filter(session_id="s-paused").exists()


def test_a_pause_for_some_seconds_ends_by_itself(write_buffer):
    call_command("pause_flushing", "--seconds", "0.2")

    assert flush_all(write_buffer, wait=0).skipped == []


def test_pause_is_refused_without_the_shared_redis_buffer(settings):
    settings.REDIS_URL = None

    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("pause_flushing", "--seconds", "0")


def test_wait_for_storage_returns_once_both_answer(write_buffer, capsys):
    call_command("wait_for_storage", "--timeout", "5")

    assert "database and buffer store answer" in capsys.readouterr().out


def test_wait_for_storage_fails_after_its_timeout_naming_what_did_not_answer(write_buffer, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    with pytest.raises(CommandError, match="buffer store did not answer within 1 s"):
        call_command("wait_for_storage", "--timeout", "1")
