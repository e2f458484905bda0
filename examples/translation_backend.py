"""A small translation job runner standing in for the real translation backend.

It "translates" spreadsheet cells (a fake model with random latency and failures) and keeps the
Persistence Service up to date through persistence_client:

- a new job: the session and all its tasks are persisted as ``pending``;
- each task goes ``processing`` -> ``completed`` (or ``failed``), the session's counters follow;
- progress is sent in batches by the client; after each chunk of tasks the runner waits for the
  service to acknowledge it (202) and only then logs the chunk as done;
- SIGTERM / SIGINT (stop or pause): the current chunk is finished and everything is flushed;
- at start-up it asks the service for every incomplete session (``recover()``) and resumes it with
  the tasks still pending or processing. Tasks whose completion was acknowledged are never redone.

    python examples/translation_backend.py --url http://127.0.0.1:8000 --api-key KEY \\
        --new-job job-1:200 --new-job job-2:50 [--log progress.log] [--fail-rate 0.05]

``--log`` appends one line per event: ``start <task_id>`` before translating a task and
``ack <task_id> <status>`` once the service acknowledged its final status.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from persistence_client import NotFound, PersistenceClient, RecoveredSession

logger = logging.getLogger("translation_backend")
CHUNK = 20  # tasks between acknowledgements


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Runner:
    def __init__(
        self, client: PersistenceClient, *, owner: str, log: Path | None, fail_rate: float, latency: float
    ) -> None:
        self.client = client
        self.owner = owner
        self.log = log.open("a", buffering=1) if log else None
        self.fail_rate = fail_rate
        self.latency = latency
        self.stopping = False

    def note(self, line: str) -> None:
        if self.log:
            self.log.write(line + "\n")

    # --- jobs -----------------------------------------------------------------------------------
    def new_job(self, session_id: str, cells: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        session = {
            "session_id": session_id,
            "filename": f"{session_id}.xlsx",
            "file_path": f"/uploads/{session_id}.xlsx",
            "status": "processing",
            "llm_provider": "fake-llm",
            "game_info": {"game_name": "Quest", "source_language": "en", "target_language": "de"},
            "metadata": {"owner": self.owner},
            "total_tasks": cells,
        }
        tasks = [cell(session_id, row) for row in range(cells)]
        self.client.persist_sessions([session])
        self.client.persist_tasks(tasks)
        self.client.flush(wait_for_storage=False)  # the job is known to the service before work starts
        return session, tasks

    def resume_all(self) -> None:
        """Finish every incomplete session of this owner, as the service last acknowledged it."""
        self.client.flush()  # the service stores what it buffered, so lists below are complete
        for recovered in self.client.recover():
            if self.stopping:
                return
            if (recovered.session.get("metadata") or {}).get("owner") != self.owner:
                continue  # another runner's session
            todo = recovered.tasks + self.missing_tasks(recovered)
            logger.info("resuming %s: %d tasks to do", recovered.session_id, len(todo))
            self.run(recovered.session, todo)

    def missing_tasks(self, recovered: RecoveredSession) -> list[dict[str, Any]]:
        """Cells a crash kept from being created (the job was cut off while being persisted)."""
        session_id = recovered.session_id
        known = {task["task_id"] for task in self.client.iter_session_tasks(session_id)}
        known.update(task["task_id"] for task in recovered.tasks)
        missing = [
            cell(session_id, row)
            for row in range(recovered.session["total_tasks"])
            if cell_id(session_id, row) not in known
        ]
        if missing:
            self.client.persist_tasks(missing)
        return missing

    def exists(self, session_id: str) -> bool:
        try:
            self.client.get_session(session_id)
        except NotFound:
            return False
        return True

    def run(self, session: dict[str, Any], todo: list[dict[str, Any]]) -> None:
        session = {k: session[k] for k in SESSION_FIELDS if k in session}
        session["status"] = "processing"
        todo = sorted(todo, key=lambda t: t["row_index"])
        for start in range(0, len(todo), CHUNK):
            if self.stopping:
                return
            chunk = todo[start : start + CHUNK]
            finished = [self.translate(task) for task in chunk]
            self.client.persist_tasks(finished)
            for task in finished:
                key = "completed_tasks" if task["status"] == "completed" else "failed_tasks"
                session[key] = session.get(key, 0) + 1
            self.client.persist_sessions([session])
            self.client.flush(wait_for_storage=False)  # 202: acknowledged
            for task in finished:
                self.note(f"ack {task['task_id']} {task['status']}")
        self.client.flush()  # a job ends (or pauses): the service stores everything now
        # The counters from the stored tasks: after a crash some chunk may have been counted twice.
        counts = {"completed": 0, "failed": 0}
        for task in self.client.iter_session_tasks(session["session_id"]):
            counts[task["status"]] = counts.get(task["status"], 0) + 1
        if counts["completed"] + counts["failed"] >= session["total_tasks"]:
            session.update(
                completed_tasks=counts["completed"],
                failed_tasks=counts["failed"],
                processing_tasks=0,
                status="completed" if counts["failed"] == 0 else "failed",
            )
            self.client.persist_sessions([session])
            self.client.flush()

    def translate(self, task: dict[str, Any]) -> dict[str, Any]:
        task = {k: task[k] for k in TASK_FIELDS if k in task}
        self.note(f"start {task['task_id']}")
        started = time.monotonic()
        task.update(status="processing", start_time=now())
        self.client.persist_tasks([dict(task)])
        time.sleep(random.uniform(0, self.latency))
        if random.random() < self.fail_rate:
            task.update(
                status="failed",
                error_message="fake model refused",
                retry_count=task.get("retry_count", 0) + 1,
            )
        else:
            task.update(status="completed", target_text=f"[de] {task['source_text']}", confidence=0.93)
        task.update(end_time=now(), duration_ms=int((time.monotonic() - started) * 1000))
        return task


def cell_id(session_id: str, row: int) -> str:
    return f"{session_id}-r{row:05d}"


def cell(session_id: str, row: int) -> dict[str, Any]:
    return {
        "task_id": cell_id(session_id, row),
        "session_id": session_id,
        "batch_id": f"{session_id}-b{row // 100}",
        "sheet_name": "Dialogue",
        "row_index": row,
        "column_name": "B",
        "source_text": f"Line {row} of {session_id}: hello, traveller!",
        "status": "pending",
    }


SESSION_FIELDS = (
    "session_id", "filename", "file_path", "status", "game_info", "llm_provider", "metadata",
    "total_tasks", "completed_tasks", "failed_tasks", "processing_tasks",
)  # fmt: skip
TASK_FIELDS = (
    "task_id", "session_id", "batch_id", "sheet_name", "row_index", "column_name", "source_text",
    "target_text", "context", "status", "confidence", "error_message", "retry_count", "start_time",
    "end_time", "duration_ms",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--new-job", action="append", default=[], metavar="SESSION_ID:CELLS")
    parser.add_argument("--owner", default="translation-backend", help="resume only this owner's sessions")
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--fail-rate", type=float, default=0.05)
    parser.add_argument("--latency", type=float, default=0.01, help="maximum seconds per fake translation")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request

    with PersistenceClient(args.url, api_key=args.api_key) as client:
        runner = Runner(
            client, owner=args.owner, log=args.log, fail_rate=args.fail_rate, latency=args.latency
        )

        def stop(signum: int, frame: object) -> None:
            logger.info("signal %d: finishing the current chunk, then flushing", signum)
            runner.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        runner.resume_all()  # whatever a previous run left unfinished
        for job in args.new_job:
            if runner.stopping:
                break
            session_id, cells = job.rsplit(":", 1)
            if runner.exists(session_id):
                continue  # started before: resumed above if unfinished
            session, tasks = runner.new_job(session_id, int(cells))
            runner.run(session, tasks)
    logger.info("stopped" if runner.stopping else "all jobs done")


if __name__ == "__main__":
    main()
