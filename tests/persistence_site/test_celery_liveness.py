"""Liveness files of the Celery worker and beat (container health checks read their age), and the
worker's CPU priority."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from celery import signals

from persistence_site import celery as celery_module
from tests.processes import CeleryWorker, service_env


def test_every_heartbeat_touches_the_worker_file(tmp_path, monkeypatch):
    alive = tmp_path / "worker.alive"
    monkeypatch.setattr(celery_module, "WORKER_ALIVE_FILE", str(alive))

    signals.heartbeat_sent.send(sender=None)

    assert alive.exists()


def test_beat_runs_the_scheduler_that_reports_its_ticks(tmp_path, monkeypatch):
    alive = tmp_path / "beat.alive"
    monkeypatch.setattr(celery_module, "BEAT_ALIVE_FILE", str(alive))
    monkeypatch.setattr(celery_module.PersistentScheduler, "tick", lambda self, *a, **k: 5.0)
    scheduler = celery_module.Scheduler.__new__(celery_module.Scheduler)

    assert scheduler.tick() == 5.0
    assert alive.exists()
    assert celery_module.app.conf.beat_scheduler == "persistence_site.celery:Scheduler"


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.django_db
def test_the_worker_pool_runs_at_the_configured_lower_priority():
    with CeleryWorker(env=service_env(FLUSH_WORKER_NICE="7"), concurrency=2) as worker:
        deadline = time.monotonic() + 20
        while len(_children(worker.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pool = _children(worker.proc.pid)

        assert len(pool) == 2
        parent = _niceness(worker.proc.pid)
        assert [_niceness(pid) for pid in pool] == [min(parent + 7, 19)] * 2
