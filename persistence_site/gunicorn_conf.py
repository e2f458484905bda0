"""gunicorn settings shared by the quick start, the Dockerfile and the tests.

gunicorn persistence_site.wsgi:application -c persistence_site/gunicorn_conf.py --workers 4

Metrics with several workers (prometheus_client multiprocess mode): ``PROMETHEUS_MULTIPROC_DIR``
must be in the environment before any worker imports prometheus_client, so it is set here, in
the master, when this file is read. Given by the environment (the Dockerfile sets it), that
directory is used and may be shared with a Celery worker in the same pid namespace (same host or
container); otherwise each master gets a private temporary one. ``on_starting`` wipes the values
of processes that no longer run and ``child_exit`` marks a dead worker so its live gauges go.
Shared between containers (``PROMETHEUS_MULTIPROC_SHARED``, see system.metrics_files),
file names carry the host name, and the files of other containers are left to them.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads per worker: above 1, gunicorn runs its gthread worker (a thread pool per process). Threads
# overlap the Redis and database round trips of short requests without more processes: on two cores
# 2 workers x 4 threads served user reads and token validation with the least CPU per request
# (bench/users.py, docs/capacity.md). 1 keeps the sync worker.
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Our middleware writes the access log as structured lines; gunicorn's own would duplicate it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
graceful_timeout = 30
timeout = 60
# gunicorn's control socket lets whoever can open it resize or stop the server, and its default
# path is shared by every gunicorn of the user on the host: off unless a path is given.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

_PRIVATE_METRICS_DIR = "PERSISTENCE_PRIVATE_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="persistence-metrics-")
    os.environ[_PRIVATE_METRICS_DIR] = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    """Start with a directory holding no values of dead processes (runs once, in the master).

    Values left by an earlier run would be summed into this one's, so the files of every process
    that is not running are removed: all of them when gunicorn has the directory to itself. The
    files of a live process are kept: a Celery worker on the same host that shares the directory
    goes on counting across a gunicorn restart.
    """
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif not _written_by_live_process(entry.name):
            entry.unlink(missing_ok=True)
    server.log.info("metrics: multiprocess directory %s", path)


def _written_by_live_process(filename):
    """prometheus_client names its files ``<kind>_<pid>.db`` (``<kind>_<host>-<pid>.db`` when the
    directory is shared between containers); is that process running? Another container's process
    counts as running: its pids are not ours to look up, and its files are its own business."""
    from system import metrics_files

    match = re.fullmatch(r"[a-z_]+?_(?:([A-Za-z0-9.-]+)-)?(\d+)\.db", filename)
    if not match:
        return False
    if match.group(1) is not None and match.group(1) != metrics_files.host():
        return True
    try:
        os.kill(int(match.group(2)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def post_fork(server, worker):
    """A worker was forked: turn tracing on in it when an OTLP endpoint is configured
    (core.tracing). Here, before the worker loads the app, because the Django
    instrumentation adds its middleware to the settings before Django builds its handler; and
    after the fork, because the span exporter's thread would not survive one."""
    from core import tracing

    tracing.setup(service_name="persistence-web")


def worker_exit(server, worker):
    """A worker is leaving: send the spans it still holds."""
    from core import tracing

    tracing.force_flush()


def post_worker_init(worker):
    """A worker is ready: start its buffer's background work (the embedded mode's flusher thread,
    which at once flushes what a killed process left in the buffer table; nothing with Redis)."""
    from storage_backends.buffer import get_write_buffer

    get_write_buffer().start_background()


def child_exit(server, worker):
    """A worker ended: its live gauges stop counting (its counters keep their totals)."""
    from prometheus_client import multiprocess

    from system import metrics_files

    multiprocess.mark_process_dead(metrics_files.process_identifier(worker.pid))


def on_exit(server):
    """Remove the directory when this master made it (not one the environment named)."""
    private = os.environ.get(_PRIVATE_METRICS_DIR)
    if private and private == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(private, ignore_errors=True)
