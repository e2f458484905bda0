"""The fault suite: acknowledged writes survive every fault (issue: lost=0 stale=0 per fault).

While a load generator streams session and task updates and records every acknowledged (202) write,
each test injects one fault into a private stack (its own MariaDB and Redis), lets the service
recover, flushes, and compares the database with the acknowledged writes. Each prints
``fault=... accepted=N stored=N lost=0 stale=0``. Run alone with ``make chaos``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import httpx
import pytest

from tests.chaos.load import Ledger, Load
from tests.chaos.stack import Stack
from tests.processes import child_pids

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.slow]
LOAD_SECONDS = 4
#: One line per fault, printed at the end of the run by tests/chaos/conftest.py.
FIGURES: list[str] = []


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("chaos")) as running:
        yield running


def _tasks_flush_running(redis_client) -> bool:
    """A flusher holds the tasks lock of some shard (``lock:translation_tasks`` is shard 0's)."""
    return bool(redis_client.keys("persistence:{buffer}:lock:translation_tasks*"))


def _settle_and_verify(stack: Stack, ledger: Ledger, fault: str, **verify_args) -> dict[str, int]:
    """Flush until the buffer is empty (retrying while dependencies come back), then compare."""
    deadline = time.monotonic() + 120
    while True:
        try:
            flushed = httpx.post(stack.web.url + "/api/v1/translation/flush", timeout=30).status_code == 200
            health = httpx.get(stack.web.url + "/health", timeout=10).json()
            if flushed and health["buffer"]["total_count"] == 0:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the buffer did not drain within 120 s"
        time.sleep(0.5)
    conn = stack.mariadb.connect()
    try:
        figures = ledger.verify(conn, **verify_args)
        cursor = conn.cursor()
        cursor.execute("SELECT COUNT(*) FROM persistence_dead_letters")
        figures["dead_letters"] = cursor.fetchone()[0]
    finally:
        conn.close()
    FIGURES.append(
        f"fault={fault} accepted={figures['accepted']} stored={figures['stored']} lost={figures['lost']} "
        f"stale={figures['stale']} resurrected={figures['resurrected']} (requests ok={figures['requests_ok']} failed={figures['requests_failed']}, "
        f"dead_letters={figures['dead_letters']})"
    )
    return figures


def _run(stack: Stack, fault: str, inject, prefix: str) -> dict[str, int]:
    ledger = Ledger()
    load = Load(stack.web.url, ledger, prefix=prefix).start()
    time.sleep(LOAD_SECONDS)
    inject()
    time.sleep(LOAD_SECONDS)
    load.stop()
    figures = _settle_and_verify(stack, ledger, fault)
    assert figures["requests_ok"] > 0
    assert figures["lost"] == 0
    assert figures["stale"] == 0
    assert figures["dead_letters"] == 0
    return figures


def test_celery_worker_killed_mid_flush(stack):
    redis_client = stack.redis.client()

    def inject() -> None:
        deadline = time.monotonic() + 20
        while not _tasks_flush_running(redis_client) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _tasks_flush_running(redis_client), "no flush was running"
        stack.worker.kill()  # SIGKILL, whole process group, mid-flush
        time.sleep(1)
        stack.start_worker()

    _run(stack, "celery_worker_sigkill", inject, prefix="cw")


def test_gunicorn_worker_killed(stack):
    killed: list[int] = []

    def inject() -> None:
        for _ in range(3):  # every worker, in turn, while requests are in flight
            workers = child_pids(stack.web.proc.pid)
            assert workers, "gunicorn has no worker to kill"
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):  # gone already: not killed by us
                    os.kill(pid, signal.SIGKILL)  # the master starts a new one
                    killed.append(pid)
                time.sleep(0.3)

    _run(stack, "gunicorn_worker_sigkill", inject, prefix="gw")
    replacements = child_pids(stack.web.proc.pid)

    assert len(killed) >= 3  # at least one worker per round was really killed
    assert replacements  # the master replaced them ...
    assert not set(killed) & set(replacements)  # ... with new processes


def test_mariadb_stopped_for_30_seconds(stack):
    def inject() -> None:
        stack.mariadb.stop()
        time.sleep(30)  # writes go on into the buffer; flushes fail and are retried
        health = httpx.get(stack.web.url + "/health", timeout=30)
        assert health.status_code == 503
        stack.mariadb.start()

    figures = _run(stack, "mariadb_down_30s", inject, prefix="db")
    assert figures["requests_ok"] > 10  # writes were accepted during the outage too


def test_redis_killed_and_restarted_from_its_aof(stack):
    def inject() -> None:
        stack.redis.kill()  # SIGKILL: only the append-only file survives
        time.sleep(2)  # writes get 503 STORAGE_UNAVAILABLE meanwhile: not acknowledged
        stack.redis.start()

    figures = _run(stack, "redis_sigkill_restart", inject, prefix="rd")
    assert figures["requests_failed"] > 0  # the outage was real


def test_session_deletes_racing_flushes(stack):
    """Sessions deleted while their buffered records are being flushed stay deleted.

    One load keeps flushes busy with sessions that stay; a second streams into sessions that are
    deleted, each DELETE issued while a flush holds the lock. Nothing acknowledged for the kept
    sessions may be lost, and nothing of a deleted session may reappear (resurrected=0): a record
    of a deleted session that a running flush had already read must not be written after the delete.
    """
    redis_client = stack.redis.client()
    ledger = Ledger()
    kept = Load(stack.web.url, ledger, prefix="dk").start()
    doomed = Load(stack.web.url, ledger, prefix="dx", sessions_per_client=4).start()
    time.sleep(LOAD_SECONDS)
    doomed.stop()  # its last writes are still in the buffer or in a flush
    deleted = sorted({rid for kind, rid in ledger.acked if kind == "session" and rid.startswith("dx")})
    raced = 0
    flushing = threading.Event()

    def flush_continuously() -> None:  # besides Celery's flushes, so every delete meets one
        with httpx.Client(base_url=stack.web.url, timeout=30) as http:
            while not flushing.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    http.post("/api/v1/translation/flush")

    flusher = threading.Thread(target=flush_continuously, daemon=True)
    flusher.start()
    try:
        with httpx.Client(base_url=stack.web.url, timeout=30) as http:
            for session_id in deleted:
                deadline = time.monotonic() + 5
                while not _tasks_flush_running(redis_client):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.001)
                else:
                    raced += 1
                response = http.delete(f"/api/v1/translation/sessions/{session_id}")
                assert response.status_code == 200, response.text
    finally:
        flushing.set()
        flusher.join(timeout=30)
    time.sleep(LOAD_SECONDS)
    kept.stop()
    figures = _settle_and_verify(stack, ledger, "delete_racing_flush", deleted_sessions=frozenset(deleted))
    FIGURES[-1] += f" deleted_sessions={len(deleted)} deletes_during_a_flush={raced}"
    assert deleted and raced > 0, "no DELETE ran while a flush held the lock"
    assert figures["requests_ok"] > 0
    assert figures["lost"] == 0
    assert figures["stale"] == 0
    assert figures["resurrected"] == 0
    assert figures["dead_letters"] == 0
