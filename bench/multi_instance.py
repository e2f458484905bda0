"""Several web instances on one machine: read-your-writes and last-write-wins across them.

    .venv/bin/python bench/multi_instance.py [--rounds 150] [--ids 1000] [--writers 6]

Starts three gunicorn instances (separate masters on separate ports, like three hosts behind a load
balancer; the client round-robins over their URLs) and two Celery workers, all sharing one Redis
and one MariaDB (persistence_load and Redis db 8, like bench/load.py: do not run both at once).
The size trigger is lowered to 200 records so flushes by both workers race the writes.

1. Read-your-writes: each round writes a new session and task and a new version of a hot session
   and task through one instance and reads them back at once through the two others (GET
   sessions/{id}, tasks/{id}) while flushes run (so some reads meet a record that is being moved
   from the buffer to the database). Every read must show the version just acknowledged. Without
   the GET routes (not deployed yet), each read is a flush through another instance followed by a
   database read instead.
2. Last-write-wins, sequential: rounds of writes of the same ids, each id through a different
   instance every round, each round acknowledged before the next; after a flush every row must hold
   the last round's value.
3. Last-write-wins, concurrent: several writers (spread over the instances) write random subsets of
   the same ids at once while flushes run. A write is stale when another write of the same id was
   sent after it was acknowledged; after the final flush every stored value must be one that is not
   stale (exactly the last write when the last writes did not overlap), and no id may be missing.

Prints the counts (checked, ok, stale, lost) and timings of each part; exits 1 when any part fails.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson
from django.db import connection

from bench.load import reset_stack
from tests.factories import session_record, task_record
from tests.processes import CeleryWorker, GunicornServer

API = "/api/v1/translation"
HEADERS = {"Content-Type": "application/json"}
if os.environ.get("PERSISTENCE_API_KEY"):
    HEADERS["X-API-Key"] = os.environ["PERSISTENCE_API_KEY"]
# A small size trigger makes the two workers flush while the writers write: the race under test.
STACK_ENV = {
    "BUFFER_FLUSH_SIZE": "200",
    "BUFFER_CAPACITY": "200000",
    "THROTTLE_RATE_KEY": "off",
    "THROTTLE_RATE_IP": "off",
}
TIMEOUT = 30


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


class RoundRobin:
    """Client-side round-robin over the instances' URLs (what a load balancer would do)."""

    def __init__(self, urls: list[str]) -> None:
        self.clients = [httpx.Client(base_url=url, timeout=TIMEOUT, headers=HEADERS) for url in urls]
        self._next = itertools.cycle(range(len(urls)))
        self._lock = threading.Lock()

    def pick(self) -> int:
        with self._lock:
            return next(self._next)

    def close(self) -> None:
        for client in self.clients:
            client.close()


def post_batch(client: httpx.Client, kind: str, records: list[dict]) -> httpx.Response:
    return client.post(f"{API}/{kind}/batch", content=orjson.dumps({kind: records}))


def flush(client: httpx.Client) -> None:
    response = client.post(f"{API}/flush", timeout=60)
    response.raise_for_status()


def db_values(table: str, key: str, column: str, ids: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            cursor.execute(
                f"SELECT {key}, {column} FROM {table} WHERE {key} IN ({','.join(['%s'] * len(chunk))})", chunk
            )
            values.update(cursor.fetchall())
    return values


def count_flushes(log_path: Path) -> int:
    """Flush tasks a Celery worker finished, from its log."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return sum(1 for line in text.splitlines() if "flush_buffer" in line and "succeeded" in line)


# --- 1. read-your-writes ------------------------------------------------------------------------


def detail_route_deployed(client: httpx.Client) -> bool:
    response = client.get(f"{API}/sessions/multi-probe-unknown")
    if response.status_code == 405:  # sessions/{id} exists for DELETE only
        return False
    return not (response.status_code == 404 and "session_id" not in response.json())


class RacingFlushes:
    """Manual flushes (a client pausing) through random instances every 0.3 s, racing the
    size-triggered flushes of the Celery workers and whatever the test does meanwhile."""

    def __init__(self, rr: RoundRobin) -> None:
        self.rr = rr
        self.count = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            response = self.rr.clients[self.rr.pick()].post(f"{API}/flush", timeout=60)
            self.count += 1
            # 503 FLUSH_FAILED when another flusher kept the lock past the wait: allowed, data stays.
            self.refused += response.status_code != 200

    def __enter__(self) -> RacingFlushes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _read_back(client: httpx.Client, version: int, ids: dict[str, str]) -> int:
    """GET each written record through ``client``; how many did not show ``version``."""
    stale = 0
    for kind, record_id in ids.items():
        got = client.get(f"{API}/{kind}/{record_id}")
        body = got.json() if got.status_code == 200 else {}
        value = body.get("completed_tasks") if kind == "sessions" else body.get("retry_count")
        stale += value != version
    return stale


def read_your_writes(rr: RoundRobin, rounds: int) -> bool:
    """Each round: a new session and task, and a new version of a hot session and task, written
    through one instance and read at once through the two others, while flushes run."""
    clients = rr.clients
    via_get = detail_route_deployed(clients[0])
    if not via_get:
        rounds = min(rounds, 40)  # each check is a full flush: keep the fallback short
    checks = stale = 0
    read_ms: list[float] = []
    started = time.perf_counter()
    with RacingFlushes(rr) as flushes:
        for version in range(1, rounds + 1):
            writer = version % len(clients)
            fresh = f"ryw-new-{version:05d}"
            sessions = {fresh: fresh, "ryw-hot": "ryw-hot"}
            tasks = {f"{fresh}-task": fresh, "ryw-hot-task": "ryw-hot"}
            response = post_batch(
                clients[writer],
                "sessions",
                [session_record(sid, completed_tasks=version, total_tasks=rounds) for sid in sessions],
            )
            assert response.status_code == 202, response.text
            response = post_batch(
                clients[writer],
                "tasks",
                [task_record(sid, tid, retry_count=version) for tid, sid in tasks.items()],
            )
            assert response.status_code == 202, response.text
            acked = time.perf_counter()
            for reader in (i for i in range(len(clients)) if i != writer):
                if via_get:
                    stale += _read_back(
                        clients[reader], version, {"sessions": fresh, "tasks": f"{fresh}-task"}
                    )
                    stale += _read_back(
                        clients[reader], version, {"sessions": "ryw-hot", "tasks": "ryw-hot-task"}
                    )
                else:
                    flush(clients[reader])
                    stored = {
                        **db_values("translation_sessions", "session_id", "completed_tasks", list(sessions)),
                        **db_values("translation_tasks", "task_id", "retry_count", list(tasks)),
                    }
                    stale += sum(1 for rid in [*sessions, *tasks] if stored.get(rid) != version)
                checks += 4
                read_ms.append((time.perf_counter() - acked) * 1000)
    elapsed = time.perf_counter() - started
    how = (
        "GET sessions/{id} and tasks/{id} through each of the two other instances"
        if via_get
        else "flush through another instance + database read (GET sessions/{id} not deployed yet)"
    )
    print(
        f"read-your-writes: {rounds} rounds, write via one instance, read via {how}, "
        f"{flushes.count} flushes racing: checks={checks} ok={checks - stale} stale={stale}; "
        f"ack->read back p50 {percentile(read_ms, 50):.1f} ms, p95 {percentile(read_ms, 95):.1f} ms "
        f"({elapsed:.1f} s)"
    )
    return stale == 0


# --- 2. last-write-wins, sequential rounds --------------------------------------------------------


def lww_sequential(rr: RoundRobin, session_id: str, ids: list[str], rounds: int) -> bool:
    """Every round writes every id once, id i through instance (i + round) % 3; rounds in order."""
    n = len(rr.clients)
    started = time.perf_counter()
    for round_no in range(1, rounds + 1):
        shares: list[list[dict]] = [[] for _ in range(n)]
        for i, task_id in enumerate(ids):
            shares[(i + round_no) % n].append(
                task_record(session_id, task_id, row_index=i, target_text=f"seq-{round_no}")
            )

        def send(instance: int, records: list[dict]) -> None:
            for start in range(0, len(records), 500):
                response = post_batch(rr.clients[instance], "tasks", records[start : start + 500])
                assert response.status_code == 202, response.text

        threads = [threading.Thread(target=send, args=(i, shares[i])) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    flush(rr.clients[0])
    stored = db_values("translation_tasks", "task_id", "target_text", ids)
    expected = f"seq-{rounds}"
    ok = sum(1 for task_id in ids if stored.get(task_id) == expected)
    lost = sum(1 for task_id in ids if task_id not in stored)
    print(
        f"last-write-wins, sequential: {len(ids)} ids x {rounds} rounds over {n} instances "
        f"({len(ids) * rounds:,} acknowledged writes, {time.perf_counter() - started:.1f} s): "
        f"stored=last round {ok}/{len(ids)}, stale={len(ids) - ok - lost}, lost={lost}"
    )
    return ok == len(ids)


# --- 3. last-write-wins, concurrent writers -------------------------------------------------------


@dataclass
class Write:
    value: str
    sent: float
    acked: float


def lww_concurrent(rr: RoundRobin, session_id: str, ids: list[str], writers: int, rounds: int) -> bool:
    writes: dict[str, list[Write]] = defaultdict(list)
    lock = threading.Lock()
    refused = 0

    def writer(number: int) -> None:
        nonlocal refused
        client = rr.clients[number % len(rr.clients)]
        rng = random.Random(number)
        for round_no in range(rounds):
            chosen = rng.sample(ids, rng.randint(50, 300))
            value = f"w{number}-r{round_no}"
            records = [task_record(session_id, task_id, target_text=value) for task_id in chosen]
            sent = time.monotonic()
            response = post_batch(client, "tasks", records)
            acked = time.monotonic()
            with lock:
                if response.status_code != 202:
                    refused += 1
                    continue
                for task_id in chosen:
                    writes[task_id].append(Write(value, sent, acked))

    started = time.perf_counter()
    with RacingFlushes(rr) as flushes:
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        write_seconds = time.perf_counter() - started
    flush(rr.clients[1])
    drain_seconds = time.perf_counter() - started - write_seconds

    written = list(writes)
    stored = db_values("translation_tasks", "task_id", "target_text", written)
    exact = ambiguous = ok = stale = lost = 0
    for task_id, history in writes.items():
        last_sent = max(w.sent for w in history)
        admissible = {w.value for w in history if w.acked >= last_sent}
        if len(admissible) == 1:
            exact += 1
        else:
            ambiguous += 1
        value = stored.get(task_id)
        if value is None:
            lost += 1
        elif value in admissible:
            ok += 1
        else:
            stale += 1
    total_writes = sum(len(h) for h in writes.values())
    print(
        f"last-write-wins, concurrent: {writers} writers over {len(rr.clients)} instances, {rounds} batches "
        f"each, {total_writes:,} acknowledged task writes to {len(written)} ids in {write_seconds:.1f} s "
        f"({total_writes / write_seconds:,.0f} writes/s), {flushes.count} manual flushes racing ({flushes.refused} answered 503), refused={refused}, "
        f"final flush {drain_seconds:.1f} s"
    )
    print(
        f"  stored = a last acknowledged write: {ok}/{len(written)} "
        f"({exact} ids with one last write, {ambiguous} whose last writes overlapped), stale={stale}, lost={lost}"
    )
    return stale == 0 and lost == 0 and refused == 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--celery-workers", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=1, help="gunicorn workers per instance")
    parser.add_argument("--rounds", type=int, default=150, help="read-your-writes rounds")
    parser.add_argument("--ids", type=int, default=1000, help="task ids written by the LWW parts")
    parser.add_argument("--seq-rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--writer-batches", type=int, default=150)
    args = parser.parse_args()

    reset_stack()
    env = {**os.environ, **STACK_ENV}
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(GunicornServer(env=env, workers=args.web_workers))
            for _ in range(args.instances)
        ]
        logdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="persistence-multi-")))
        worker_logs = [logdir / f"worker-{n}.log" for n in range(args.celery_workers)]
        for log_path in worker_logs:
            stack.enter_context(CeleryWorker(env=env, concurrency=1, log_path=log_path))
        rr = RoundRobin([server.url for server in servers])
        stack.callback(rr.close)
        print(
            f"multi-instance: {args.instances} gunicorn instances ({', '.join(s.url for s in servers)}), "
            f"{args.celery_workers} Celery workers, size trigger {STACK_ENV['BUFFER_FLUSH_SIZE']}"
        )
        results = [read_your_writes(rr, args.rounds)]

        session_id = "lww-session"
        response = post_batch(rr.clients[0], "sessions", [session_record(session_id, total_tasks=args.ids)])
        assert response.status_code == 202, response.text
        seq_ids = [f"lww-seq-{i:05d}" for i in range(args.ids)]
        results.append(lww_sequential(rr, session_id, seq_ids, args.seq_rounds))
        conc_ids = [f"lww-conc-{i:05d}" for i in range(args.ids)]
        results.append(lww_concurrent(rr, session_id, conc_ids, args.writers, args.writer_batches))
        celery_flushes = [count_flushes(path) for path in worker_logs]
    print(f"Celery flushes run (size trigger) per worker: {celery_flushes}")
    print("multi-instance: " + ("PASS" if all(results) else "FAIL"))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
