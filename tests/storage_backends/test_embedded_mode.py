"""The embedded default: SQLite + the buffer table in the same file, flushed by a thread and at shutdown.

Real gunicorn processes, started as ``make run`` starts them. A 202 is on disk: a ``kill -9`` of the
master and its workers loses nothing, and the next start flushes what was left.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.factories import session_record, task_record
from tests.processes import ROOT, GunicornServer, child_pids, service_env

pytestmark = pytest.mark.integration


@pytest.fixture
def embedded_env(tmp_path):
    env = service_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        DJANGO_SETTINGS_MODULE="persistence_site.settings.local",
        API_AUTH_ENABLED="false",
    )
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return env, tmp_path / "embedded.sqlite3"


def _rows(path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def _stored_task_ids(path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT task_id FROM translation_tasks")}


def _wait_for(condition, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _kill_9(server: GunicornServer) -> None:
    """SIGKILL the gunicorn master and every worker: no atexit, no flush at shutdown.

    The master is stopped first so that it cannot start a new worker (which would flush at its exit,
    hiding a loss) between the kills.
    """
    master = server.proc.pid
    os.kill(master, signal.SIGSTOP)
    for pid in child_pids(master):
        os.kill(pid, signal.SIGKILL)
    os.kill(master, signal.SIGKILL)
    server.proc.wait()


def _flush_buffer_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "flush_buffer", "--wait", "20"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _post_job(url: str) -> None:
    response = httpx.post(
        f"{url}/api/v1/translation/sessions/batch", json={"sessions": [session_record("s-1")]}
    )
    assert response.status_code == 202, response.text
    tasks = [task_record("s-1", f"t-{i}") for i in range(25)]
    response = httpx.post(f"{url}/api/v1/translation/tasks/batch", json={"tasks": tasks})
    assert response.status_code == 202, response.text


def test_background_thread_flushes_on_the_interval(embedded_env):
    env, db_path = embedded_env
    env["BUFFER_FLUSH_INTERVAL"] = "1"

    with GunicornServer(env=env) as server:
        _post_job(server.url)
        deadline = time.monotonic() + 15
        while _rows(db_path, "translation_tasks") < 25 and time.monotonic() < deadline:
            time.sleep(0.2)

        assert _rows(db_path, "translation_tasks") == 25
        health = httpx.get(server.url + "/health").json()
        assert health["buffer"]["total_count"] == 0


def test_shutdown_flushes_what_is_buffered(embedded_env):
    env, db_path = embedded_env
    env["BUFFER_FLUSH_INTERVAL"] = "3600"

    with GunicornServer(env=env) as server:
        _post_job(server.url)
        assert httpx.get(server.url + "/health").json()["buffer"]["tasks_count"] == 25
        assert _rows(db_path, "translation_tasks") == 0
    # leaving the block sends SIGTERM: a graceful stop flushes first

    assert _rows(db_path, "translation_sessions") == 1
    assert _rows(db_path, "translation_tasks") == 25


def test_flush_endpoint_writes_at_once(embedded_env):
    env, db_path = embedded_env
    env["BUFFER_FLUSH_INTERVAL"] = "3600"

    with GunicornServer(env=env) as server:
        _post_job(server.url)
        response = httpx.post(server.url + "/api/v1/translation/flush", timeout=15)

        assert response.status_code == 200
        assert response.json()["tasks_written"] == 25
        assert _rows(db_path, "translation_tasks") == 25


def test_size_trigger_flushes_without_waiting_for_the_interval(embedded_env):
    env, db_path = embedded_env
    env["BUFFER_FLUSH_INTERVAL"] = "3600"
    env["BUFFER_FLUSH_SIZE"] = "10"

    with GunicornServer(env=env) as server:
        _post_job(server.url)

        assert _wait_for(lambda: _rows(db_path, "translation_tasks") == 25, timeout=15)


def test_writes_are_readable_before_they_are_flushed(embedded_env):
    env, db_path = embedded_env
    env["BUFFER_FLUSH_INTERVAL"] = "3600"

    with GunicornServer(env=env) as server:
        _post_job(server.url)
        session = httpx.get(f"{server.url}/api/v1/translation/sessions/s-1")
        task = httpx.get(f"{server.url}/api/v1/translation/tasks/t-7")

        assert _rows(db_path, "translation_tasks") == 0
        assert session.status_code == 200, session.text
        assert task.status_code == 200, task.text
        assert task.json()["task_id"] == "t-7"


def test_flush_buffer_command_flushes_beside_the_running_server(embedded_env):
    env, db_path = embedded_env
    env["BUFFER_FLUSH_INTERVAL"] = "3600"

    with GunicornServer(env=env) as server:
        _post_job(server.url)

        result = _flush_buffer_command(env)

        assert result.returncode == 0, result.stderr
        assert "written: 1 sessions, 25 tasks" in result.stdout
        assert _rows(db_path, "translation_tasks") == 25
        assert httpx.get(server.url + "/health").json()["buffer"]["total_count"] == 0


def test_kill_9_after_202_loses_nothing(embedded_env):
    env, db_path = embedded_env
    env["BUFFER_FLUSH_INTERVAL"] = "3600"

    # given a session and its tasks answered 202, then the master and worker killed with SIGKILL
    with GunicornServer(env=env) as server:
        _post_job(server.url)
        _kill_9(server)

    # then they are in the buffer table on disk, not flushed
    assert _rows(db_path, "persistence_buffer") == 26
    assert _rows(db_path, "translation_tasks") == 0

    # and after a restart they are readable at once, and stored by the flush at start
    with GunicornServer(env=env) as server:
        assert httpx.get(f"{server.url}/api/v1/translation/sessions/s-1").status_code == 200
        assert httpx.get(f"{server.url}/api/v1/translation/tasks/t-24").status_code == 200
        assert _wait_for(lambda: _rows(db_path, "translation_tasks") == 25)
        assert _rows(db_path, "translation_sessions") == 1
        assert _wait_for(lambda: _rows(db_path, "persistence_buffer") == 0)


def test_kill_9_in_a_stream_of_batches_loses_no_acknowledged_record(embedded_env):
    env, db_path = embedded_env
    env["BUFFER_FLUSH_INTERVAL"] = "1"
    env["BUFFER_FLUSH_SIZE"] = "60"  # flushes run while batches arrive: the kill may hit one
    acknowledged: list[str] = []
    stop = threading.Event()

    def stream(url: str) -> None:
        with httpx.Client(timeout=10) as client:
            batch = 0
            while not stop.is_set():
                ids = [f"t-{batch}-{i}" for i in range(20)]
                try:
                    response = client.post(
                        f"{url}/api/v1/translation/tasks/batch",
                        json={"tasks": [task_record("s-1", task_id) for task_id in ids]},
                    )
                except httpx.TransportError:
                    return  # the server is gone: this batch was never acknowledged
                if response.status_code == 202:
                    acknowledged.extend(ids)
                batch += 1

    with GunicornServer(env=env, workers=2) as server:
        response = httpx.post(
            f"{server.url}/api/v1/translation/sessions/batch", json={"sessions": [session_record("s-1")]}
        )
        assert response.status_code == 202
        streamers = [threading.Thread(target=stream, args=(server.url,)) for _ in range(2)]
        for streamer in streamers:
            streamer.start()
        assert _wait_for(lambda: len(acknowledged) >= 600 and _rows(db_path, "translation_tasks") > 0)
        _kill_9(server)
        stop.set()
        for streamer in streamers:
            streamer.join()

    with GunicornServer(env=env, workers=2):
        result = _flush_buffer_command(env)  # beside the workers' own flushers

        assert result.returncode == 0, result.stderr
        assert _wait_for(lambda: _rows(db_path, "persistence_buffer") == 0)
        missing = set(acknowledged) - _stored_task_ids(db_path)
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged tasks lost"
        assert _rows(db_path, "persistence_dead_letters") == 0


def test_switching_to_redis_with_records_left_in_the_embedded_buffer_is_warned(embedded_env):
    env, db_path = embedded_env
    with sqlite3.connect(db_path) as db:
        db.execute(
            "INSERT INTO persistence_buffer (collection, record_id, session_id, seq, created_us, "
            "updated_us, size, failures, data) VALUES ('translation_sessions', 's-1', '', 1, 1, 1, 2, 0, '{}')"
        )

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "REDIS_URL": "redis://127.0.0.1:6379/13"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert "storage_backends.W001" in result.stderr
    assert "env -u REDIS_URL python manage.py flush_buffer" in result.stderr


_RESTORE_WHILE_WRITING = """
import threading, django
django.setup()
from storage_backends.sql import sql_backend
from storage_backends.buffer import get_write_buffer
from tests.factories import session_record
from translation.models import Session

outcome = []
with sql_backend("translation_tasks").read_snapshot():
    list(Session.objects.all())  # the restore's reads have begun
    writer = threading.Thread(
        target=lambda: outcome.append(get_write_buffer().add("translation_sessions", [session_record("w")]))
    )
    writer.start()
    writer.join(timeout=5)
    print("written" if outcome else "blocked")
"""


def test_a_streaming_restore_does_not_hold_the_write_lock(embedded_env):
    """On SQLite, Django's atomic() begins IMMEDIATE (the write lock); the restore's snapshot must not."""
    env, _ = embedded_env

    result = subprocess.run(
        [sys.executable, "-c", _RESTORE_WHILE_WRITING],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip() == "written", result.stderr
