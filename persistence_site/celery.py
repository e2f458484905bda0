"""Celery application: the flush worker and the beat schedule.

Run a worker with ``celery -A persistence_site worker`` and exactly one scheduler with
``celery -A persistence_site beat``. Configuration comes from Django settings (``CELERY_*``).

Liveness without a Python process per check (container health checks): the worker touches
``CELERY_WORKER_ALIVE_FILE`` (default ``/tmp/celery-worker.alive``) at every heartbeat it sends
(every 2 s), beat touches ``CELERY_BEAT_ALIVE_FILE`` (``/tmp/celery-beat.alive``) at every tick of
its scheduler. A check only asks whether the file changed recently.
"""

import contextlib
import os
from pathlib import Path

from celery import Celery, signals
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "persistence_site.settings.production")

app = Celery("persistence_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

WORKER_ALIVE_FILE = os.environ.get("CELERY_WORKER_ALIVE_FILE", "/tmp/celery-worker.alive")
BEAT_ALIVE_FILE = os.environ.get("CELERY_BEAT_ALIVE_FILE", "/tmp/celery-beat.alive")


def _touch(path: str) -> None:
    with contextlib.suppress(OSError):  # liveness reporting must never break the worker or beat
        Path(path).touch()


#: How much lower than the web's the worker's CPU priority is (``nice``, 0-19): flushing yields the
#: CPU to accepting on a shared machine, so a batch POST keeps its latency while a flush runs (the
#: buffer absorbs the difference); on a machine of its own the worker takes every idle cycle anyway.
WORKER_NICE = int(os.environ.get("FLUSH_WORKER_NICE", "10"))


@signals.worker_process_init.connect
def _lower_priority(**kwargs):
    """Each pool process runs at ``WORKER_NICE`` above its parent's niceness (at most 19)."""
    with contextlib.suppress(OSError):
        os.nice(max(0, min(WORKER_NICE, 19 - os.nice(0))))


@signals.worker_process_init.connect
def _tracing_on(**kwargs):
    """Each pool process (prefork child, or the solo pool's worker) traces when an OTLP endpoint is
    configured: after the fork, as the span exporter's thread would not survive one."""
    from core import tracing

    tracing.setup(service_name="persistence-worker", django=False)


@signals.worker_process_shutdown.connect
def _tracing_flush(**kwargs):
    """A pool process ends (it may leave without running atexit): send the spans it holds."""
    from core import tracing

    tracing.force_flush()


@signals.worker_ready.connect
@signals.heartbeat_sent.connect
def _worker_alive(**kwargs):
    _touch(WORKER_ALIVE_FILE)


class Scheduler(PersistentScheduler):
    """Celery's default scheduler, reporting each tick for the health check."""

    def tick(self, *args, **kwargs):
        _touch(BEAT_ALIVE_FILE)
        return super().tick(*args, **kwargs)


app.conf.beat_scheduler = "persistence_site.celery:Scheduler"
