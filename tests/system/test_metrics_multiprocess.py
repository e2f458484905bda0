"""Metrics from a real gunicorn with several workers (prometheus_client multiprocess mode), and
flushes done by a Celery worker in another process showing in the same scrape."""

from __future__ import annotations

import os
import signal
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from storage_backends.tasks import flush_buffer
from tests.factories import session_record, task_record
from tests.processes import CeleryWorker, GunicornServer, service_env
from tests.system.test_metrics import NAMED, _samples, _value

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
METRICS = "/api/v1/system/metrics"
CONFIG = "/api/v1/system/config"
REQUESTS = "django_http_requests_total_by_view_transport_method_total"


def _traffic(url: str, count: int) -> None:
    """``count`` requests on separate connections, ten at a time, so every worker gets some."""

    def call(_: int) -> int:
        return httpx.get(url + CONFIG, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert set(pool.map(call, range(count))) == {200}


def _scrape(url: str) -> dict[str, list]:
    response = httpx.get(url + METRICS, timeout=30)
    assert response.status_code == 200, response.text
    return _samples(response.text)


def _config_requests_per_process(directory: Path) -> dict[str, float]:
    """The request counter of the config view in each process's file."""
    per_process = {}
    for path in directory.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)], accumulate=True)
        count = sum(
            s.value
            for metric in merged
            for s in metric.samples
            if s.name == REQUESTS and s.labels.get("view") == "system:config"
        )
        if count:
            per_process[path.stem] = count
    return per_process


def _worker_pids(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def metrics_dir(tmp_path) -> Path:
    return tmp_path / "prometheus"


def test_every_named_metric_is_scraped_at_start_up(metrics_dir, write_buffer):
    with GunicornServer(env=service_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), workers=3) as server:
        samples = _scrape(server.url)

    missing = sorted(set(NAMED) - set(samples))
    assert missing == []
    assert _value(samples, "persistence_data_loss_total") == 0


def test_request_counts_are_summed_over_three_workers(metrics_dir, write_buffer):
    with GunicornServer(env=service_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), workers=3) as server:
        _traffic(server.url, 60)

        samples = _scrape(server.url)
        per_process = _config_requests_per_process(metrics_dir)

    assert _value(samples, REQUESTS, view="system:config", method="GET") == 60
    assert len(per_process) >= 2, f"the traffic should have reached several workers: {per_process}"
    assert sum(per_process.values()) == 60


def test_counts_of_a_killed_worker_are_kept(metrics_dir, write_buffer):
    with GunicornServer(env=service_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), workers=3) as server:
        _traffic(server.url, 30)
        victims = _worker_pids(server.proc.pid)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)  # every worker dies; gunicorn starts new ones
        assert _wait_for(lambda: len(set(_worker_pids(server.proc.pid)) - set(victims)) == 3, timeout=30)
        assert _wait_for(lambda: httpx.get(server.url + "/health", timeout=5).status_code == 200, timeout=30)
        _traffic(server.url, 10)

        samples = _scrape(server.url)

    assert _value(samples, REQUESTS, view="system:config", method="GET") == 40


def test_a_restart_starts_from_a_wiped_directory(metrics_dir, write_buffer):
    env = service_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    with GunicornServer(env=env, workers=2) as server:
        _traffic(server.url, 20)
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # garbage would break the scrape

    with GunicornServer(env=env, workers=2) as server:
        _traffic(server.url, 5)
        samples = _scrape(server.url)

    assert _value(samples, REQUESTS, view="system:config", method="GET") == 5


def test_a_restart_keeps_the_values_of_processes_still_running(metrics_dir, write_buffer):
    # given a directory holding a file of a process that is alive (this one stands in for a
    # Celery worker sharing the directory) and the files of a gunicorn run that ended
    env = service_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    with GunicornServer(env=env, workers=1) as server:
        _traffic(server.url, 7)
    (ended,) = metrics_dir.glob("counter_*.db")
    live = metrics_dir / f"counter_{os.getpid()}.db"
    ended.rename(live)
    (metrics_dir / "counter_999999.db").write_bytes(live.read_bytes())  # a copy, of a dead pid

    # when gunicorn starts again and serves 3 requests
    with GunicornServer(env=env, workers=1) as server:
        _traffic(server.url, 3)
        samples = _scrape(server.url)

    # then the live process's 7 still count, the dead one's copy does not
    assert live.exists()
    assert _value(samples, REQUESTS, view="system:config", method="GET") == 10


def test_flushes_by_a_celery_worker_show_in_the_web_scrape(metrics_dir, write_buffer, tmp_path):
    env = service_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    # the worker starts after gunicorn, which wipes the shared directory when it starts
    with (
        GunicornServer(env=env, workers=2) as server,
        CeleryWorker(env=env, log_path=tmp_path / "worker.log"),
    ):
        write_buffer.add("translation_sessions", [session_record("cm-1")])
        write_buffer.add("translation_tasks", [task_record("cm-1", f"cmt-{i}") for i in range(5)])
        before = _scrape(server.url)

        flush_buffer.delay()
        assert _wait_for(lambda: sum(write_buffer.counts().values()) == 0, timeout=30)
        after = _scrape(server.url)

    assert _value(before, "persistence_buffer_size", type="task") == 5
    assert _value(after, "persistence_buffer_size", type="task") == 0
    assert _value(after, "persistence_flushed_items_total", type="task") == 5
    assert _value(after, "persistence_flushed_items_total", type="session") == 1
    assert _value(after, "persistence_flush_total", type="task") >= 1
    assert _value(after, "persistence_storage_operations_total", backend="sql", operation="write") >= 2


def test_a_file_created_but_not_yet_sized_by_a_starting_process_does_not_fail_the_scrape(tmp_path):
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from system.metrics import _StartedFilesCollector

    (tmp_path / "counter_424242.db").touch()  # MmapedDict opened it, and has not truncated it yet

    with pytest.raises(struct.error):  # the cause of a 500 seen while gunicorn started its workers
        list(MultiProcessCollector(CollectorRegistry(), path=str(tmp_path)).collect())
    assert list(_StartedFilesCollector(CollectorRegistry(), path=str(tmp_path)).collect()) == []
