"""The crash-and-resume story end to end: examples/translation_backend.py, SIGKILLed mid-job and
started again, against gunicorn + a Celery worker + MariaDB + Redis.

Every task must end completed or failed exactly once in the database (none lost), and no task may
be started again after the service acknowledged its completion (the runner logs ``start <id>``
before working on a task and ``ack <id> <status>`` once its final status was accepted).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import CeleryWorker, GunicornServer, service_env
from translation.models import Session, Task

pytestmark = [pytest.mark.django_db, pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
JOBS = {"a": 300, "b": 200}


def runner(url: str, key: str, owner: str, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(ROOT / "examples" / "translation_backend.py"), "--url", url, "--api-key", key,
               "--owner", owner, "--log", str(log), "--latency", "0.01", "--fail-rate", "0.1"]  # fmt: skip
    for name, cells in JOBS.items():
        command += ["--new-job", f"{owner}-{name}:{cells}"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def acks(log: Path) -> int:
    return sum(line.startswith("ack ") for line in log.read_text().splitlines()) if log.exists() else 0


def test_a_runner_killed_mid_job_resumes_and_finishes_every_task_once(live, uid, tmp_path):
    log = tmp_path / "progress.log"
    env = service_env(
        API_AUTH_ENABLED="true", THROTTLE_RATE_KEY="off", THROTTLE_RATE_IP="off", BUFFER_FLUSH_SIZE="100"
    )
    with (
        GunicornServer(env=env, workers=2) as server,
        CeleryWorker(env=env, log_path=tmp_path / "worker.log"),
    ):
        first = runner(server.url, live.key, uid, log)
        deadline = time.monotonic() + 60
        while acks(log) < 100 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, first.communicate()[0].decode()[-3000:]
        os.kill(first.pid, signal.SIGKILL)  # mid-job: no flush, no clean-up
        first.wait()
        acked_before_kill = acks(log)

        second = runner(server.url, live.key, uid, log)
        output = second.communicate(timeout=120)[0].decode()
        assert second.returncode == 0, output

    total = sum(JOBS.values())
    assert 0 < acked_before_kill < total, "the first run should be killed mid-job"

    tasks = dict(Task.objects.filter(session__session_id__startswith=uid).values_list("task_id", "status"))
    assert len(tasks) == total  # none lost
    assert set(tasks.values()) <= {"completed", "failed"}

    sessions = {s.session_id: s for s in Session.objects.filter(session_id__startswith=uid)}
    for name, cells in JOBS.items():
        stored = sessions[f"{uid}-{name}"]
        done = [s for t, s in tasks.items() if t.startswith(f"{uid}-{name}-")]
        assert stored.completed_tasks == done.count("completed")
        assert stored.failed_tasks == done.count("failed")
        assert stored.completed_tasks + stored.failed_tasks == cells
        assert stored.status == ("completed" if stored.failed_tasks == 0 else "failed")

    # none processed again after its completion was acknowledged
    acknowledged: set[str] = set()
    redone = []
    for line in log.read_text().splitlines():
        event, task_id = line.split()[:2]
        if event == "start" and task_id in acknowledged:
            redone.append(task_id)
        elif event == "ack":
            acknowledged.add(task_id)
    assert redone == []
    assert acknowledged == set(tasks)
    # the last acknowledged status of each task is the stored one
    last = {}
    for line in log.read_text().splitlines():
        parts = line.split()
        if parts[0] == "ack":
            last[parts[1]] = parts[2]
    assert last == tasks
