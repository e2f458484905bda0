"""Metric files in a multiprocess directory shared between containers (docker-compose's web and
worker): names carry the host name, and gunicorn's start-up cleanup leaves other hosts' files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.processes import ROOT

INCREMENT = (
    "import persistence_site\n"
    "from core import metrics\n"
    "metrics.FLUSHED_ITEMS.labels(type='task').inc(5)\n"
    "import os; print(os.getpid())\n"
)


def _python(code: str, directory, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_shared_directory_files_are_named_by_host_and_pid(tmp_path):
    pid = _python(INCREMENT, tmp_path, PROMETHEUS_MULTIPROC_SHARED="true")

    assert (tmp_path / f"counter_{socket.gethostname()}-{pid}.db").exists()


def test_private_directory_files_keep_prometheus_client_names(tmp_path):
    pid = _python(INCREMENT, tmp_path)

    assert (tmp_path / f"counter_{pid}.db").exists()


def test_the_scrape_sums_every_hosts_files(tmp_path):
    _python(INCREMENT, tmp_path, PROMETHEUS_MULTIPROC_SHARED="true")
    (tmp_path / f"counter_{socket.gethostname()}-1.db").unlink(missing_ok=True)
    for path in tmp_path.glob("counter_*.db"):
        (tmp_path / path.name.replace(socket.gethostname(), "worker-container")).write_bytes(
            path.read_bytes()
        )
    scrape = _python("from system import metrics\nprint(metrics.exposition(None)[0].decode())", tmp_path)

    assert 'persistence_flushed_items_total{type="task"} 10.0' in scrape


def test_gunicorn_start_removes_dead_processes_of_this_host_and_keeps_other_hosts(tmp_path):
    host = socket.gethostname()
    dead = 2**22 + 12345  # above pid_max's default: no such process
    for name in (
        f"counter_{host}-{dead}.db",
        f"counter_{dead}.db",
        "counter_other-host-1.db",
        "counter_x.db",
    ):
        (tmp_path / name).write_bytes(b"")
    code = (
        "import types\n"
        "from persistence_site import gunicorn_conf\n"
        "gunicorn_conf.on_starting(types.SimpleNamespace(log=types.SimpleNamespace(info=print)))\n"
    )

    _python(code, tmp_path, PROMETHEUS_MULTIPROC_SHARED="true")

    assert sorted(path.name for path in tmp_path.iterdir()) == ["counter_other-host-1.db"]
