"""A load generator that remembers every acknowledged write, and the check against the database.

Each client thread owns its sessions and their tasks and writes them in rounds; round ``r`` writes
every record with version ``r`` (``total_tasks`` of a session, ``retry_count`` of a task). A write is
*acknowledged* when the service answered 202. After the run, for every id:
- lost: acknowledged but not in the database;
- stale: in the database with a version older than its last acknowledged write.
A write that failed (503, connection reset) may or may not have been applied, so the stored version
may be newer than the last acknowledged one, never older.

    ledger = Ledger(); load = Load(url, ledger, clients=2); load.start(); ...; load.stop()
    print(ledger.verify(connection))
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import orjson

from tests.factories import session_record, task_record

TASKS_PER_SESSION = 200


@dataclass
class Ledger:
    acked: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, id) -> last acked version
    attempted: dict[tuple[str, str], int] = field(default_factory=dict)
    accepted_requests: int = 0
    failed_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, ids: list[str], version: int, acknowledged: bool) -> None:
        with self.lock:
            for record_id in ids:
                self.attempted[(kind, record_id)] = version
                if acknowledged:
                    self.acked[(kind, record_id)] = version
            if acknowledged:
                self.accepted_requests += 1
            else:
                self.failed_requests += 1

    def verify(self, conn, *, deleted_sessions: frozenset[str] = frozenset()) -> dict[str, int]:
        """Compare the database with the acknowledged writes."""
        cursor = conn.cursor()
        cursor.execute("SELECT session_id, total_tasks FROM translation_sessions")
        stored = {("session", sid): version for sid, version in cursor.fetchall()}
        cursor.execute("SELECT task_id, retry_count, session_id FROM translation_tasks")
        task_rows = cursor.fetchall()
        stored.update({("task", tid): version for tid, version, _ in task_rows})
        lost = stale = resurrected = present = 0
        for key, version in self.acked.items():
            if key[0] == "session" and key[1] in deleted_sessions:
                continue
            if key[0] == "task" and key[1].split(":")[0] in deleted_sessions:
                continue
            if key not in stored:
                lost += 1
                continue
            present += 1
            if stored[key] < version:
                stale += 1
        resurrected = sum(1 for (kind, rid) in stored if kind == "session" and rid in deleted_sessions)
        resurrected += sum(1 for _, _, sid in task_rows if sid in deleted_sessions)
        accepted = sum(
            1
            for kind, rid in self.acked
            if not (rid.split(":")[0] in deleted_sessions if kind == "task" else rid in deleted_sessions)
        )
        return {
            "accepted": accepted,
            "stored": present,
            "lost": lost,
            "stale": stale,
            "resurrected": resurrected,
            "requests_ok": self.accepted_requests,
            "requests_failed": self.failed_requests,
        }


class Load:
    """Client threads streaming session and task updates until stopped."""

    def __init__(
        self, url: str, ledger: Ledger, clients: int = 2, sessions_per_client: int = 3, prefix: str = "c"
    ) -> None:
        self.url = url
        self.ledger = ledger
        self.clients = clients
        self.sessions_per_client = sessions_per_client
        self.prefix = prefix
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Load:
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _post(self, http: httpx.Client, path: str, body: dict) -> bool:
        try:
            response = http.post(path, content=orjson.dumps(body))
        except httpx.HTTPError:
            return False
        return response.status_code == 202

    def _client(self, n: int) -> None:
        sessions = [f"{self.prefix}{n}-s{i}" for i in range(self.sessions_per_client)]
        version = 0
        with httpx.Client(base_url=self.url, timeout=5, headers={"Content-Type": "application/json"}) as http:
            while not self._stop.is_set():
                version += 1
                for sid in sessions:
                    if self._stop.is_set():
                        break
                    ok = self._post(
                        http,
                        "/api/v1/translation/sessions/batch",
                        {"sessions": [session_record(sid, total_tasks=version)]},
                    )
                    self.ledger.record("session", [sid], version, ok)
                    if not ok:
                        time.sleep(0.05)  # a client backs off on errors
                        continue
                    ids = [f"{sid}:t{i}" for i in range(TASKS_PER_SESSION)]
                    tasks = [
                        task_record(sid, task_id, retry_count=version, row_index=i)
                        for i, task_id in enumerate(ids)
                    ]
                    ok = self._post(http, "/api/v1/translation/tasks/batch", {"tasks": tasks})
                    self.ledger.record("task", ids, version, ok)
                    if not ok:
                        time.sleep(0.05)
