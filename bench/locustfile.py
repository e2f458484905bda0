"""Locust load profile that behaves like the translation backend ("Backend V2").

    .venv/bin/locust -f bench/locustfile.py --headless -u 8 -r 4 -t 60s --host http://127.0.0.1:8000
    .venv/bin/python bench/load.py          # starts the stack, runs this headless, prints the figures

Each simulated user runs translation jobs one after another. A job is one session (a spreadsheet)
with 100-3000 tasks (cells): the session is created, every task is posted ``pending`` in batches
of 100-1000, then batch after batch goes ``processing`` and then ``completed`` (a few ``failed``)
with the session's counters updated after each batch, and the session ends ``completed``. Between
steps the user asks for progress (session detail, a page of the session's tasks), now and then
pauses the job (POST flush, as the client does when a user pauses) and now and then restarts as
after a crash (POST recovery/restore).

Routes that are not deployed yet (a 404 without the resource id in the body: "No endpoint at ...",
or a 405 when only another method of the path exists) are probed once at start and skipped; they are listed in the summary. ``X-API-Key`` is sent when
``PERSISTENCE_API_KEY`` is set. ``LOAD_SUMMARY_PATH`` names a JSON file written at the end with the
missing routes, the acknowledged writes and the status codes per endpoint (bench/load.py reads it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import uuid
from collections import Counter
from typing import Any

import httpx
import orjson
from locust import FastHttpUser, between, events, task

API = "/api/v1/translation"
JSON_HEADERS = {"Content-Type": "application/json"}
if os.environ.get("PERSISTENCE_API_KEY"):
    JSON_HEADERS["X-API-Key"] = os.environ["PERSISTENCE_API_KEY"]

# Job sizes: the client's spreadsheets have hundreds to a few thousand cells and it sends at most
# 1000 records per request (the API's batch limit).
TASKS_PER_JOB = (100, 3000)
TASKS_PER_BATCH = (100, 1000)
FAILED_SHARE = 0.03

# Optional routes (from branches merged after the write path): probed with an id that cannot exist.
OPTIONAL_ROUTES = {
    "session_detail": ("GET", f"{API}/sessions/load-probe-unknown"),
    "session_tasks": ("GET", f"{API}/sessions/load-probe-unknown/tasks"),
    "restore": ("POST", f"{API}/recovery/restore/load-probe-unknown"),
}
available: dict[str, bool] = dict.fromkeys(OPTIONAL_ROUTES, True)
acknowledged = {"sessions": 0, "tasks": 0, "task_ids": set(), "session_ids": set()}
statuses: dict[str, Counter[int]] = {}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def route_missing(status_code: int, body: bytes | str | None) -> bool:
    """A 404 that means "no such endpoint" rather than "no such session" (whose body names the id),
    or a 405: the path exists for other methods only (DELETE sessions/{id} before GET is merged)."""
    if status_code == 405:
        return True
    if status_code != 404:
        return False
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return True
    return "session_id" not in payload


@events.test_start.add_listener
def probe_routes(environment: Any, **_: Any) -> None:
    """Find out once which optional routes the service under test has."""
    for name, (method, path) in OPTIONAL_ROUTES.items():
        try:
            response = httpx.request(method, environment.host + path, headers=JSON_HEADERS, timeout=10)
        except httpx.HTTPError:
            continue
        available[name] = not route_missing(response.status_code, response.content)


@events.request.add_listener
def count_status(name: str, response: Any, **_: Any) -> None:
    code = getattr(response, "status_code", 0) or 0
    statuses.setdefault(name, Counter())[code] += 1


@events.test_stop.add_listener
def write_summary(environment: Any, **_: Any) -> None:
    path = os.environ.get("LOAD_SUMMARY_PATH")
    if not path:
        return
    summary = {
        "missing_routes": sorted(name for name, ok in available.items() if not ok),
        "acknowledged_session_writes": acknowledged["sessions"],
        "acknowledged_task_writes": acknowledged["tasks"],
        "acknowledged_task_ids": len(acknowledged["task_ids"]),
        "session_ids": sorted(acknowledged["session_ids"]),
        "statuses": {name: dict(codes) for name, codes in statuses.items()},
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(summary, fh)


class TranslationBackend(FastHttpUser):
    """One worker of the translation backend, running one job at a time."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.job: dict[str, Any] | None = None
        self.new_job()

    # --- writes ---------------------------------------------------------------------------------

    def new_job(self) -> None:
        session_id = str(uuid.uuid4())
        total = random.randint(*TASKS_PER_JOB)
        self.job = {
            "session_id": session_id,
            "total": total,
            "tasks": [self._task(session_id, i) for i in range(total)],
            "created_at": _now(),
            "next_pending": 0,  # tasks not yet posted at all
            "next_start": 0,  # tasks not yet moved to processing
            "in_flight": [],  # indexes currently processing
            "completed": 0,
            "failed": 0,
        }
        self.post_session("processing")

    def _task(self, session_id: str, index: int) -> dict[str, Any]:
        return {
            "task_id": f"{session_id}-{index:05d}",
            "session_id": session_id,
            "batch_id": "batch-0",
            "sheet_name": f"Sheet{index // 500 + 1}",
            "row_index": index,
            "column_name": "B",
            "source_text": f"Line {index}: the innkeeper greets the traveller and offers a room.",
            "target_text": None,
            "context": "NPC dialogue",
            "status": "pending",
            "confidence": None,
            "error_message": None,
            "retry_count": 0,
            "start_time": None,
            "end_time": None,
            "duration_ms": None,
        }

    def post_session(self, status: str) -> None:
        job = self.job
        processing = len(job["in_flight"])
        record = {
            "session_id": job["session_id"],
            "filename": "quest_dialogue.xlsx",
            "file_path": f"/uploads/{job['session_id']}/quest_dialogue.xlsx",
            "status": status,
            "llm_provider": random.choice(("openai", "qwen")),
            "game_info": {"game_name": "Quest", "source_language": "en", "target_language": "de"},
            "metadata": {"user_id": "load-user"},
            "total_tasks": job["total"],
            "completed_tasks": job["completed"],
            "failed_tasks": job["failed"],
            "processing_tasks": processing,
        }
        if self._post(f"{API}/sessions/batch", {"sessions": [record]}, "POST /sessions/batch"):
            acknowledged["sessions"] += 1
            acknowledged["session_ids"].add(job["session_id"])

    def post_tasks(self, tasks: list[dict[str, Any]], label: str) -> None:
        if self._post(f"{API}/tasks/batch", {"tasks": tasks}, f"POST /tasks/batch ({label})"):
            acknowledged["tasks"] += len(tasks)
            acknowledged["task_ids"].update(t["task_id"] for t in tasks)

    def _post(self, path: str, body: dict[str, Any], name: str) -> bool:
        with self.client.post(
            path, data=orjson.dumps(body), headers=JSON_HEADERS, name=name, catch_response=True
        ) as response:
            if response.status_code == 202:
                response.success()
                return True
            response.failure(f"{response.status_code} {_error_code(response)}")
            return False

    @task(10)
    def advance(self) -> None:
        """One step of the job: post pending tasks, start a batch, or finish the batch in flight."""
        job = self.job
        tasks = job["tasks"]
        size = random.randint(*TASKS_PER_BATCH)
        if job["next_pending"] < job["total"]:
            start = job["next_pending"]
            job["next_pending"] = min(job["total"], start + size)
            self.post_tasks(tasks[start : job["next_pending"]], "pending")
        elif job["in_flight"]:
            finished = []
            for index in job["in_flight"]:
                failed = random.random() < FAILED_SHARE
                tasks[index].update(
                    status="failed" if failed else "completed",
                    target_text=None if failed else f"Zeile {index}: der Wirt begrüßt den Reisenden.",
                    error_message="provider timeout" if failed else None,
                    confidence=None if failed else round(random.uniform(0.7, 1.0), 4),
                    end_time=_now(),
                    duration_ms=random.randint(200, 5000),
                )
                job["failed" if failed else "completed"] += 1
                finished.append(tasks[index])
            job["in_flight"] = []
            self.post_tasks(finished, "completed")
            done = job["completed"] + job["failed"] == job["total"]
            self.post_session("completed" if done else "processing")
            if done:
                self.flush()  # the client flushes when a job ends
                self.new_job()
        else:
            start = job["next_start"]
            job["next_start"] = min(job["total"], start + size)
            job["in_flight"] = list(range(start, job["next_start"]))
            for index in job["in_flight"]:
                tasks[index].update(status="processing", start_time=_now())
            self.post_tasks([tasks[i] for i in job["in_flight"]], "processing")
            self.post_session("processing")

    # --- reads and control ----------------------------------------------------------------------

    @task(4)
    def progress(self) -> None:
        if not available["session_detail"]:
            return
        self._get(f"{API}/sessions/{self.job['session_id']}", "GET /sessions/{id}")

    @task(2)
    def task_page(self) -> None:
        if not available["session_tasks"]:
            return
        pages = max(1, self.job["total"] // 100)
        self._get(
            f"{API}/sessions/{self.job['session_id']}/tasks?page={random.randint(1, pages)}&page_size=100",
            "GET /sessions/{id}/tasks",
        )

    @task(1)
    def pause(self) -> None:
        """The user pauses the job: the client flushes so the database is current."""
        self.flush()

    @task(1)
    def restore(self) -> None:
        """The client restarted after a crash and restores its job (pending/processing tasks)."""
        if not available["restore"]:
            return
        with self.client.post(
            f"{API}/recovery/restore/{self.job['session_id']}",
            headers=JSON_HEADERS,
            name="POST /recovery/restore/{id}",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                response.success()
            else:
                response.failure(f"{response.status_code} {_error_code(response)}")

    def flush(self) -> None:
        with self.client.post(
            f"{API}/flush", headers=JSON_HEADERS, name="POST /flush", catch_response=True
        ) as response:
            if response.status_code == 200:
                response.success()
            else:
                response.failure(f"{response.status_code} {_error_code(response)}")

    def _get(self, path: str, name: str) -> None:
        with self.client.get(path, headers=JSON_HEADERS, name=name, catch_response=True) as response:
            if response.status_code == 200:
                response.success()
            else:  # the session was acknowledged, so a 404 here breaks read-your-writes
                response.failure(f"{response.status_code} {_error_code(response)}")


def _error_code(response: Any) -> str:
    try:
        return str(orjson.loads(response.content or b"{}").get("error_code", ""))
    except (ValueError, AttributeError):
        return ""
