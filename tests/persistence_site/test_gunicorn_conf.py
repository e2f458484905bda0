"""gunicorn settings: the metrics directory of a master without one, and no control socket."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.processes import GunicornServer, service_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_a_master_without_a_metrics_directory_makes_a_private_one_and_removes_it(write_buffer):
    env = service_env(LOG_LEVEL="INFO")  # the master logs the directory at INFO
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    with GunicornServer(env=env, workers=1) as server:
        pass
    directory = Path(re.search(r"metrics: multiprocess directory (\S+)", server.output).group(1))

    assert directory.name.startswith("persistence-metrics-")
    assert not directory.exists()


def test_a_given_metrics_directory_is_kept_after_exit(write_buffer, tmp_path):
    directory = tmp_path / "prometheus"

    with GunicornServer(env=service_env(PROMETHEUS_MULTIPROC_DIR=str(directory)), workers=1):
        pass

    assert any(directory.glob("counter_*.db"))


def test_the_control_socket_is_off_unless_a_path_is_given(write_buffer):
    with GunicornServer(env=service_env(LOG_LEVEL="INFO"), workers=1) as server:
        pass

    assert "Listening at" in server.output  # INFO lines are there to read
    assert "Control socket listening" not in server.output


def test_web_threads_above_one_runs_the_threaded_worker(write_buffer):
    with GunicornServer(env=service_env(LOG_LEVEL="INFO", WEB_THREADS="3"), workers=1) as server:
        assert httpx.get(server.url + "/health", timeout=10).status_code == 200

    assert "Using worker: gthread" in server.output
