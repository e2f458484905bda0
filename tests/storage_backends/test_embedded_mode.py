"""The embedded default: SQLite + the in-process buffer, flushed by a thread and at shutdown."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from tests.factories import session_record, task_record
from tests.processes import ROOT, GunicornServer, service_env

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
