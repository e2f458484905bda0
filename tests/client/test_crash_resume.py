"""The crash-and-resume story end to end: examples/translation_backend.py, SIGKILLed mid-job and
started again, against gunicorn + a Celery worker + MariaDB + Redis; and stopped with SIGTERM.

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

from persistence_client import PersistenceClient
from tests.processes import CeleryWorker, GunicornServer, service_env
from translation.models import Session, Task

pytestmark = [pytest.mark.django_db, pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
JOBS = {"a": 300, "b": 200}
CHUNK = 20  # the runner's tasks between acknowledgements (examples/translation_backend.py)


def runner(url: str, key: str, owner: str, log: Path, jobs: dict[str, int] = JOBS) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(ROOT / "examples" / "translation_backend.py"), "--url", url, "--api-key", key,
               "--owner", owner, "--log", str(log), "--latency", "0.01", "--fail-rate", "0.1"]  # fmt: skip
    for name, cells in jobs.items():
        command += ["--new-job", f"{owner}-{name}:{cells}"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def acks(log: Path) -> int:
    return sum(line.startswith("ack ") for line in log.read_text().splitlines()) if log.exists() else 0


def events(log: Path, kind: str) -> list[list[str]]:
    """The log's ``kind`` lines ("start" or "ack"), split, in the order they were written."""
    return [line.split() for line in log.read_text().splitlines() if line.startswith(kind + " ")]


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
    assert {task_id for _, task_id in events(log, "start")} == set(tasks)  # each one was worked on
    # The kill may land after the service accepted a chunk and before the runner logged its acks:
    # those tasks are done (and not redone) without an ack line; at most the chunk being worked on.
    assert acknowledged <= set(tasks)
    assert len(set(tasks) - acknowledged) <= CHUNK
    # the last acknowledged status of each task is the stored one
    last = {task_id: status for _, task_id, status in events(log, "ack")}
    assert last == {task_id: tasks[task_id] for task_id in last}


def test_sigterm_stops_at_a_chunk_boundary_and_leaves_everything_stored_and_resumable(live, uid, tmp_path):
    log = tmp_path / "progress.log"
    session_id = f"{uid}-job"
    proc = runner(live.url, live.key, uid, log, jobs={"job": 400})
    deadline = time.monotonic() + 60
    while acks(log) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]

    proc.send_signal(signal.SIGTERM)  # the user pauses the job
    output = proc.communicate(timeout=30)[0].decode()

    assert proc.returncode == 0, output
    assert "stopped" in output
    stored = dict(Task.objects.filter(session_id=session_id).values_list("task_id", "status"))
    acked = {task_id: status for _, task_id, status in events(log, "ack")}
    assert 0 < len(acked) < 400
    # flushed on stop: every acknowledged result is in the database, nothing half done
    assert {t: s for t, s in stored.items() if s in ("completed", "failed")} == acked
    assert set(stored.values()) - {"completed", "failed"} <= {"pending"}
    assert len(stored) == 400
    assert Session.objects.get(session_id=session_id).status == "processing"  # resumable

    with PersistenceClient(live.url, api_key=live.key) as client:
        (resumable,) = [r for r in client.recover() if r.session_id == session_id]
    assert {t["task_id"] for t in resumable.tasks} == set(stored) - set(acked)
