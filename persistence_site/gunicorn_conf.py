"""gunicorn settings shared by the quick start, the Dockerfile and the tests.

gunicorn persistence_site.wsgi:application -c persistence_site/gunicorn_conf.py --workers 4

Metrics with several workers (prometheus_client multiprocess mode): ``PROMETHEUS_MULTIPROC_DIR``
must be in the environment before any worker imports prometheus_client, so it is set here, in
the master, when this file is read. Given by the environment (the Dockerfile sets it), that
directory is used and may be shared with a Celery worker on the same host; otherwise each master
gets a private temporary one. ``on_starting`` wipes it (values left by an earlier run would be
summed into this one's) and ``child_exit`` marks a dead worker so its live gauges disappear.
"""

import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Our middleware writes the access log as structured lines; gunicorn's own would duplicate it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
graceful_timeout = 30
timeout = 60

_PRIVATE_METRICS_DIR = "PERSISTENCE_PRIVATE_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="persistence-metrics-")
    os.environ[_PRIVATE_METRICS_DIR] = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    """Start every run with an empty metrics directory (runs once, in the master)."""
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    server.log.info("metrics: multiprocess directory %s", path)


def child_exit(server, worker):
    """A worker ended: its live gauges stop counting (its counters keep their totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the directory when this master made it (not one the environment named)."""
    private = os.environ.get(_PRIVATE_METRICS_DIR)
    if private and private == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(private, ignore_errors=True)
