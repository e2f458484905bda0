"""What only the embedded SQLite buffer has to show: its file, its clock, its locks across processes.

The semantics it shares with the Redis buffer are in test_buffers.py.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from storage_backends import sqlite_buffer as module
from storage_backends.sqlite_buffer import SQLiteWriteBuffer, _process_start
from tests.factories import session_record
from tests.processes import ROOT

SESSIONS, TASKS = "translation_sessions", "translation_tasks"


def _path(buffer: SQLiteWriteBuffer) -> str:
    return connections.settings[buffer.using]["NAME"]


def test_an_add_is_on_disk_when_it_returns(sqlite_buffer):
    sqlite_buffer.add(SESSIONS, [session_record("s-1")])

    # another connection (as after a kill -9 and a restart) reads it from the file
    with sqlite3.connect(_path(sqlite_buffer)) as db:
        rows = db.execute("SELECT record_id FROM persistence_buffer").fetchall()

    assert rows == [("s-1",)]


def test_connections_run_in_wal_mode_with_full_sync(sqlite_buffer):
    sqlite_buffer.ping()
    raw = connections[sqlite_buffer.using].connection

    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_acceptance_time_never_goes_back_when_the_clock_steps_back(sqlite_buffer, monkeypatch):
    sqlite_buffer.add(SESSIONS, [session_record("before")])
    before = sqlite_buffer.get(SESSIONS, "before")["updated_at"]
    real_now = module._now_us
    monkeypatch.setattr(module, "_now_us", lambda: real_now() - 3_600_000_000)  # an hour back

    sqlite_buffer.add(SESSIONS, [session_record("after")])

    assert sqlite_buffer.get(SESSIONS, "after")["updated_at"] == before


def test_a_flush_lock_of_a_process_that_is_gone_is_taken_over_at_once(sqlite_buffer, settings):
    # given a lock left by a flusher killed with SIGKILL (its lease has most of a minute to run)
    settings.BUFFER_LOCK_TTL = 60
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    held = sqlite_buffer.flush_lock(TASKS, wait=0)
    _set_owner(sqlite_buffer, held, pid=gone.pid, started="1")

    # when another process asks for it
    taken = sqlite_buffer.flush_lock(TASKS, wait=0)

    # then it does not wait for the expiry
    assert taken is not None
    taken.release()


def test_a_flush_lock_of_a_live_process_is_respected(sqlite_buffer):
    import os

    held = sqlite_buffer.flush_lock(TASKS, wait=0)
    parent = os.getppid()  # alive: it runs this test
    _set_owner(sqlite_buffer, held, pid=parent, started=_process_start(parent))

    assert sqlite_buffer.flush_lock(TASKS, wait=0.2) is None


def _set_owner(buffer: SQLiteWriteBuffer, lock, *, pid: int, started: str) -> None:
    import socket

    owner = f"{socket.gethostname()}:{pid}:{started}:token"
    with buffer._write() as cursor:
        cursor.execute("UPDATE persistence_buffer_locks SET owner = ? WHERE name = ?", (owner, lock.name))


def test_an_add_inside_a_callers_transaction_joins_it(sqlite_buffer):
    """dead_letters_requeue adds while its transaction holds the write lock: no self-deadlock, and
    the add commits or rolls back with the caller's work."""
    with transaction.atomic(using=sqlite_buffer.using):
        sqlite_buffer.add(SESSIONS, [session_record("kept")])

    def add_then_fail() -> None:
        with transaction.atomic(using=sqlite_buffer.using):
            sqlite_buffer.add(SESSIONS, [session_record("rolled-back")])
            raise RuntimeError("the caller fails after the add")

    with pytest.raises(RuntimeError):
        add_then_fail()

    assert sqlite_buffer.get(SESSIONS, "kept") is not None
    assert sqlite_buffer.get(SESSIONS, "rolled-back") is None


def test_the_embedded_buffer_refuses_a_database_that_is_not_sqlite(settings):
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        SQLiteWriteBuffer(using="default")  # MariaDB in the test settings


_WRITER = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from storage_backends.sqlite_buffer import SQLiteWriteBuffer
    from tests.factories import task_record
    buffer = SQLiteWriteBuffer()
    name = sys.argv[1]
    for batch in range(20):
        buffer.add("translation_tasks", [task_record("s-1", f"{name}-{batch}-{i}") for i in range(50)])
    """
)


def test_writer_processes_and_a_flusher_share_the_file_safely(sqlite_buffer):
    """Adds in three processes while this one repeatedly takes and compare-and-deletes what it scans
    (a flusher's side): no "database is locked", and every write is either removed once or still
    buffered."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.local",
        "DATABASE_URL": f"sqlite:///{_path(sqlite_buffer)}",
        "LOG_LEVEL": "WARNING",
    }
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, f"p{n}"], cwd=ROOT, env=env, stderr=subprocess.PIPE)
        for n in range(3)
    ]
    removed = 0
    done = threading.Event()
    threading.Thread(target=lambda: ([w.wait() for w in writers], done.set()), daemon=True).start()
    while not done.is_set():
        for chunk in sqlite_buffer.scan(TASKS, 200):
            removed += sqlite_buffer.remove_flushed(TASKS, chunk)

    for writer in writers:
        assert writer.returncode == 0, writer.stderr.read().decode()
    assert removed + sqlite_buffer.counts()[TASKS] == 3 * 20 * 50
