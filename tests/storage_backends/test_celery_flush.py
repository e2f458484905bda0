"""The flush under a real Celery worker: triggers, and a worker killed with SIGKILL mid-flush."""

from __future__ import annotations

import time

import pytest

from storage_backends.tasks import flush_buffer
from tests.factories import session_record, task_record
from tests.processes import CeleryWorker, service_env, wait_for
from translation.models import Task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
SESSIONS, TASKS, AUDIT_LOGS = "translation_sessions", "translation_tasks", "audit_logs"


def test_size_trigger_makes_the_worker_flush(write_buffer, settings, tmp_path):
    settings.BUFFER_FLUSH_SIZE = 50
    env = service_env(BUFFER_FLUSH_SIZE="50")
    with CeleryWorker(env=env, log_path=tmp_path / "worker.log"):
        write_buffer.add(SESSIONS, [session_record("s-1")])
        write_buffer.add(TASKS, [task_record("s-1", f"t-{i}") for i in range(60)])  # crosses the size

        # The worker commits, then removes what it wrote from the buffer: wait for both while it
        # runs (stopping it in between leaves the rows buffered for the next flush, as it should).
        done = wait_for(
            lambda: Task.objects.count() == 60 and not any(write_buffer.counts().values()), timeout=30
        )

    assert done
    assert Task.objects.count() == 60
    assert write_buffer.counts() == {SESSIONS: 0, TASKS: 0, AUDIT_LOGS: 0}


@pytest.mark.slow
def test_worker_killed_mid_flush_loses_nothing_and_a_new_worker_finishes(write_buffer, settings, tmp_path):
    from persistence_site.celery import app

    total = 40_000
    last: dict[str, int] = {}
    # The flush under test is the one started below: no size-triggered flush may be queued for the
    # worker to run the moment it starts (it would finish before the kill).
    settings.BUFFER_FLUSH_SIZE = 10**9
    app.control.purge()
    write_buffer.add(SESSIONS, [session_record("s-1")])
    for version in (1, 2):
        for start in range(0, total, 1000):
            batch = [task_record("s-1", f"t-{i}", retry_count=version) for i in range(start, start + 1000)]
            write_buffer.add(TASKS, batch)
            last.update({r["task_id"]: version for r in batch})
    env = service_env(BUFFER_LOCK_TTL="3")

    with CeleryWorker(env=env, log_path=tmp_path / "worker1.log") as worker:
        flush_buffer.delay()
        # Kill once a couple of chunks are committed (and so removed from Redis; polling Redis is cheap).
        assert wait_for(lambda: write_buffer.counts()[TASKS] <= total - 2000, timeout=60, interval=0.002)
        worker.kill()
    stored_at_kill = Task.objects.count()

    assert 0 < stored_at_kill < total, "the kill must land in the middle of the flush"
    assert write_buffer.counts()[TASKS] >= total - stored_at_kill  # nothing left Redis uncommitted
    # writes go on while no worker runs
    for start in range(0, total, 4000):
        batch = [task_record("s-1", f"t-{i}", retry_count=3) for i in range(start, start + 1000)]
        write_buffer.add(TASKS, batch)
        last.update({r["task_id"]: 3 for r in batch})

    with CeleryWorker(env=env, log_path=tmp_path / "worker2.log"):
        time.sleep(3.5)  # the dead worker's lock expires (BUFFER_LOCK_TTL=3)
        flush_buffer.delay()
        assert wait_for(lambda: write_buffer.counts()[TASKS] == 0, timeout=120, interval=0.2)

    stored = dict(Task.objects.values_list("task_id", "retry_count"))
    assert len(stored) == total  # zero lost
    assert stored == last  # zero stale
