"""End-to-end ingest benchmark: HTTP batch POSTs -> Redis buffer -> Celery flush -> MariaDB,
against a raw multi-row INSERT ... ON DUPLICATE KEY UPDATE of the same rows through mysqlclient.

    .venv/bin/python bench/ingest.py [--tasks 100000] [--clients 8] [--web-workers 2] [--profile]
    .venv/bin/python bench/ingest.py --flushers 1,2,4 --web-instances 1,3   # the scale-out table

Uses its own database (persistence_bench) and Redis db 9; starts gunicorn and Celery. Prints, for
each (web instances, flushers) pair: accepted tasks/s, end-to-end tasks/s (until every row is in
MariaDB) and the ratio to raw, for inserts and for updates. Then, on the first pair, the latency
of a 100-task batch POST at a moderate 40 req/s while the size trigger's flushes run, and at
saturation (16 clients, no pause). ``BUFFER_SHARDS`` and the other settings come from the
environment. Several web instances are separate gunicorn masters on separate ports (like hosts
behind a load balancer); the clients take them in turn.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "persistence_bench"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
        "API_AUTH_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
)

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import MySQLdb  # noqa: E402
import orjson  # noqa: E402
from django.db import connection  # noqa: E402

from bench.seed import reset_database  # noqa: E402
from tests.factories import session_record, task_record  # noqa: E402
from tests.processes import CeleryWorker, GunicornServer  # noqa: E402

COLUMNS = (
    "task_id, session_id, batch_id, sheet_name, row_index, column_name, source_text, target_text, context, "
    "status, confidence, error_message, retry_count, start_time, end_time, duration_ms, created_at, updated_at"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def raw_baseline(tasks: list[dict]) -> tuple[float, float]:
    """rows/s of a raw multi-row upsert (1000 rows per statement): insert, then update."""
    conn = MySQLdb.connect(**connection.get_connection_params())
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS raw_tasks")
    cur.execute("CREATE TABLE raw_tasks LIKE translation_tasks")
    now = "2025-09-30 10:00:00.000000"
    sql = (
        f"INSERT INTO raw_tasks ({COLUMNS}) VALUES "
        "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON DUPLICATE KEY UPDATE "
        + ", ".join(
            f"{c.strip()}=VALUES({c.strip()})" for c in COLUMNS.split(",")[1:] if "created_at" not in c
        )
    )

    def run(status: str) -> float:
        started = time.perf_counter()
        for start in range(0, len(tasks), 1000):
            rows = [
                (
                    t["task_id"],
                    t["session_id"],
                    t["batch_id"],
                    t["sheet_name"],
                    t["row_index"],
                    t["column_name"],
                    t["source_text"],
                    t["target_text"],
                    t["context"],
                    status,
                    t["confidence"],
                    t["error_message"],
                    t["retry_count"],
                    None,
                    None,
                    t["duration_ms"],
                    now,
                    now,
                )
                for t in tasks[start : start + 1000]
            ]
            cur.executemany(sql, rows)
            conn.commit()
        return len(tasks) / (time.perf_counter() - started)

    insert_rate, update_rate = run("pending"), run("completed")
    cur.execute("DROP TABLE raw_tasks")
    conn.close()
    return insert_rate, update_rate


def post_all(urls: list[str], bodies: list[bytes], clients: int, path: str) -> list[float]:
    """POST every body with ``clients`` threads, each sending to the next instance in turn; the
    latency of each accepted request."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(reversed(bodies))
    instances = itertools.cycle(urls)

    def client() -> None:
        with lock:
            url = next(instances)
        with httpx.Client(base_url=url, timeout=30, headers={"Content-Type": "application/json"}) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                started = time.perf_counter()
                response = http.post(path, content=body)
                elapsed = time.perf_counter() - started
                if response.status_code == 503:  # back-pressure: retry after a moment, as a client would
                    time.sleep(0.05)
                    with lock:
                        queue.append(body)
                    continue
                assert response.status_code == 202, response.text
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def count_rows(status: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM translation_tasks WHERE status = %s", [status])
        return cursor.fetchone()[0]


def end_to_end(urls: list[str], tasks: list[dict], clients: int, status: str) -> tuple[float, float]:
    """(accepted tasks/s, end-to-end tasks/s) for POSTing ``tasks`` with ``status``."""
    bodies = [
        orjson.dumps({"tasks": [{**t, "status": status} for t in tasks[start : start + 1000]]})
        for start in range(0, len(tasks), 1000)
    ]
    started = time.perf_counter()
    post_all(urls, bodies, clients, "/api/v1/translation/tasks/batch")
    accepted = time.perf_counter() - started
    httpx.post(urls[0] + "/api/v1/translation/flush", timeout=60)  # what the client does at stop
    while count_rows(status) < len(tasks):
        httpx.post(urls[0] + "/api/v1/translation/flush", timeout=60)
        time.sleep(0.05)
    done = time.perf_counter() - started
    return len(tasks) / accepted, len(tasks) / done


# Moderate load: 2 clients x 20 batches/s x 100 tasks = 4,000 tasks/s, about a third of what one
# flusher stores per second here, so the flush keeps up and the latency is the endpoint's own.
PACE_SECONDS = 0.05


def latency_run(url: str, session_id: str, seconds: float) -> list[float]:
    bodies = []
    deadline_batches = int(seconds * 2 / PACE_SECONDS) + 2
    for b in range(deadline_batches):
        bodies.append(orjson.dumps({"tasks": [task_record(session_id, f"lat-{b}-{i}") for i in range(100)]}))
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=30, headers={"Content-Type": "application/json"}) as http:
            for body in bodies[offset::2]:
                if time.monotonic() > stop_at:
                    return
                started = time.perf_counter()
                response = http.post("/api/v1/translation/tasks/batch", content=body)
                elapsed = time.perf_counter() - started
                assert response.status_code == 202, response.text
                with lock:
                    latencies.append(elapsed)
                time.sleep(max(0.0, PACE_SECONDS - elapsed))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def profile_flush(tasks: list[dict]) -> None:
    """Where the flush spends its time: cProfile of flush_all over ``tasks`` buffered in Redis."""
    import cProfile
    import pstats

    from storage_backends.buffer import get_write_buffer
    from storage_backends.flush import flush_all

    buffer = get_write_buffer()
    buffer.add("translation_tasks", [{**t, "status": "failed"} for t in tasks[:1000]])
    for start in range(0, len(tasks), 1000):
        buffer.add("translation_tasks", [{**t, "status": "failed"} for t in tasks[start : start + 1000]])
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(flush_all, buffer, wait=5)
    elapsed = time.perf_counter() - started
    print(
        f"\nprofile: in-process flush of {len(tasks)} tasks took {elapsed:.2f} s ({len(tasks) / elapsed:,.0f}/s)"
    )
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)


def saturation_run(urls: list[str], session_id: str, batches: int, clients: int) -> list[float]:
    bodies = [
        orjson.dumps({"tasks": [task_record(session_id, f"sat-{b}-{i}") for i in range(100)]})
        for b in range(batches)
    ]
    return post_all(urls, bodies, clients, "/api/v1/translation/tasks/batch")


def latency_line(label: str, latencies: list[float]) -> str:
    ms = [v * 1000 for v in latencies]
    return (
        f"100-task batch POST, {label}, {len(ms)} requests: p50 {percentile(ms, 50):.1f} ms, "
        f"p95 {percentile(ms, 95):.1f} ms, p99 {percentile(ms, 99):.1f} ms, mean {statistics.mean(ms):.1f} ms"
    )


def flushes_so_far(url: str) -> int:
    """The flushes Celery and the web have run, from the service's own metrics."""
    text = httpx.get(url + "/api/v1/system/metrics", timeout=10).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("persistence_flush_total{") and 'type="task"' in line
        )
    )


def ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-instances", type=ints, default=[1], help="e.g. 1,3")
    parser.add_argument("--flushers", type=ints, default=[1], help="Celery concurrency, e.g. 1,2,4")
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    reset_database(DB_NAME)
    from storage_backends.buffer import get_write_buffer

    get_write_buffer().clear()
    session_id = "bench-session"
    tasks = [task_record(session_id, f"task-{i:07d}") for i in range(args.tasks)]

    insert_raw, update_raw = raw_baseline(tasks)
    print(f"raw mysqlclient upsert: insert {insert_raw:,.0f} rows/s, update {update_raw:,.0f} rows/s")
    print(
        f"BUFFER_SHARDS={os.environ.get('BUFFER_SHARDS', '1')}, {args.web_workers} gunicorn workers per instance"
    )

    # One metrics directory for every process, so /metrics counts the Celery workers' flushes too.
    metrics_dir = tempfile.mkdtemp(prefix="bench-ingest-metrics-")
    env = {
        **os.environ,
        "BUFFER_FLUSH_SIZE": "1000",
        "BUFFER_CAPACITY": "500000",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
    }
    for pair_index, (instances, flushers) in enumerate(itertools.product(args.web_instances, args.flushers)):
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(GunicornServer(env=env, workers=args.web_workers))
                for _ in range(instances)
            ]
            stack.enter_context(CeleryWorker(env=env, concurrency=flushers))
            urls = [server.url for server in servers]
            httpx.post(
                urls[0] + "/api/v1/translation/sessions/batch",
                json={"sessions": [session_record(session_id)]},
            )
            httpx.post(urls[0] + "/api/v1/translation/flush", timeout=30)

            label = f"{instances} web instance(s), {flushers} flusher(s)"
            for status, raw in (("pending", insert_raw), ("completed", update_raw)):
                if status == "pending":
                    with connection.cursor() as cursor:  # every pair inserts anew
                        cursor.execute("DELETE FROM translation_tasks WHERE session_id = %s", [session_id])
                accepted, e2e = end_to_end(urls, tasks, args.clients, status)
                kind = "insert" if status == "pending" else "update"
                print(
                    f"{label}: {kind}: accepted {accepted:,.0f} tasks/s, "
                    f"end-to-end {e2e:,.0f} tasks/s = {e2e / raw:.0%} of raw"
                )
            if pair_index:
                continue

            before = flushes_so_far(urls[0])
            latencies = latency_run(urls[0], session_id, args.latency_seconds)
            ran = flushes_so_far(urls[0]) - before
            print(latency_line(f"2 clients x 20/s, {ran} flushes during the run", latencies))
            latencies = saturation_run(urls, session_id, batches=400, clients=16)
            print(latency_line("saturation (16 clients, no pause)", latencies))
            httpx.post(urls[0] + "/api/v1/translation/flush", timeout=60)

    if args.profile:
        profile_flush(tasks[: min(len(tasks), 50_000)])


if __name__ == "__main__":
    main()
