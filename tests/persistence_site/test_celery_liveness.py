"""Liveness files of the Celery worker and beat: container health checks read their age."""

from __future__ import annotations

from celery import signals

from persistence_site import celery as celery_module


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
