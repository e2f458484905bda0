"""Recovery and cleanup benchmark on MariaDB: restore latency and memory, session delete and cleanup time.

    .venv/bin/python bench/restore.py [--sizes 10000,100000] [--cleanup-tasks 1000000] [--runs 5]

Uses its own database (persistence_bench_restore) and Redis db 8; starts one gunicorn worker.
Prints, per session size (pending tasks, with as many completed tasks beside them):
- restore latency through HTTP (request to last byte, gunicorn, one worker): median, min, max;
- the response size and the peak memory of a restore in a fresh process: growth of the resident set
  (everything, C buffers of the driver included) and the Python heap peak (tracemalloc);
then the time of DELETE for the largest session, and of the retention cleanup of
``--cleanup-tasks`` tasks (1,000 tasks per session) with the longest single SQL statement it ran.
Goals (issue 5): 10,000 tasks < 300 ms, 100,000 < 3 s, memory well under 3x the response size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "persistence_bench_restore"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        "REDIS_URL": os.environ.get("BENCH_RESTORE_REDIS_URL", "redis://127.0.0.1:6379/8"),
        "API_AUTH_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
)

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.db import connection  # noqa: E402

from bench.seed import insert_session, insert_tasks, raw_connection, reset_database  # noqa: E402
from tests.processes import GunicornServer  # noqa: E402


def seed_restore_sessions(sizes: list[int]) -> dict[int, str]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    conn = raw_connection()
    cur = conn.cursor()
    ids = {}
    for size in sizes:
        session_id = f"restore-{size}"
        insert_session(cur, session_id, status="processing", total=2 * size, updated=now)
        insert_tasks(cur, session_id, size, status="pending", when=now)
        insert_tasks(cur, session_id, size, status="completed", start=size, when=now)
        conn.commit()
        ids[size] = session_id
    cur.execute("ANALYZE TABLE translation_tasks")
    cur.fetchall()
    conn.close()
    return ids


def http_restore(url: str, session_id: str) -> tuple[float, int]:
    started = time.perf_counter()
    size = 0
    with httpx.stream("POST", f"{url}/api/v1/translation/recovery/restore/{session_id}", timeout=120) as r:
        r.raise_for_status()
        for chunk in r.iter_raw():
            size += len(chunk)
    return time.perf_counter() - started, size


def measure_memory_child(session_id: str) -> None:
    """Run in a fresh process: resident-set growth and Python heap peak of one full restore."""
    from recovery.restore import session_restore

    def consume() -> int:
        return sum(len(chunk) for chunk in session_restore(session_id=session_id).chunks())

    # Warm up without a large read (ru_maxrss is a high-water mark): a connection, the buffer, a query.
    from translation.models import Task

    Task.objects.filter(pk="warm-up").exists()
    session_restore(session_id=session_id).session  # noqa: B018 - reads the session and buffer only
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    size = consume()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) * 1024
    tracemalloc.start()
    consume()
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"size": size, "rss_growth": rss_growth, "heap_peak": heap_peak}))


def memory_of(session_id: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", session_id],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


class LongestStatement:
    """Records the longest SQL statement run through Django's connection (execute_wrapper)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.sql = ""
        self.count = 0
        self.longest_delete = 0.0
        self.deletes = 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            self.count += 1
            if sql.startswith("DELETE"):
                self.deletes += 1
                self.longest_delete = max(self.longest_delete, took)
            if took > self.longest:
                self.longest, self.sql = took, sql


def seed_expired(total_tasks: int, per_session: int = 1000) -> int:
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=200)).strftime("%Y-%m-%d %H:%M:%S.%f")
    conn = raw_connection()
    cur = conn.cursor()
    sessions = max(total_tasks // per_session, 1)
    for n in range(sessions):
        session_id = f"expired-{n:05d}"
        insert_session(cur, session_id, status="completed", total=per_session, updated=old)
        insert_tasks(cur, session_id, per_session, status="completed", when=old)
        if n % 20 == 19:
            conn.commit()
    conn.commit()
    conn.close()
    return sessions


def mb(n: float) -> str:
    return f"{n / 1_048_576:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--cleanup-tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        measure_memory_child(args.memory_child)
        return

    from storage_backends.buffer import get_write_buffer
    from translation.services.lifecycle import session_delete, sessions_cleanup

    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"seeding MariaDB ({DB_NAME}): sessions with {sizes} pending tasks (+ as many completed)...")
    reset_database(DB_NAME)
    get_write_buffer().clear()
    ids = seed_restore_sessions(sizes)

    print("\nrestore (POST /recovery/restore/{id}, gunicorn 1 worker, request to last byte)")
    with GunicornServer(workers=1) as server:
        for size in sizes:
            http_restore(server.url, ids[size])  # warm-up: connections, caches, buffer pool
            times = []
            for _ in range(args.runs):
                took, body = http_restore(server.url, ids[size])
                times.append(took)
            memory = memory_of(ids[size])
            goal = 0.3 if size <= 10_000 else 3.0 * size / 100_000
            print(
                f"  {size:>7} tasks: median {statistics.median(times) * 1000:7.0f} ms "
                f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}; goal < {goal * 1000:.0f} ms) | "
                f"response {mb(body)} | peak memory: RSS +{mb(memory['rss_growth'])} "
                f"({memory['rss_growth'] / body:.2f}x response), Python heap {mb(memory['heap_peak'])} "
                f"({memory['heap_peak'] / body:.2f}x)"
            )

    largest = ids[max(sizes)]
    probe = LongestStatement()
    started = time.perf_counter()
    with connection.execute_wrapper(probe):
        deleted = session_delete(session_id=largest)
    print(
        f"\nDELETE session with {deleted} tasks: {time.perf_counter() - started:.2f} s "
        f"({probe.deletes} DELETE statements, longest {probe.longest_delete * 1000:.0f} ms; "
        "flushes paused only around the first and last steps)"
    )

    if args.cleanup_tasks:
        print(f"\nseeding {args.cleanup_tasks} expired tasks (1000 per completed session, 200 days old)...")
        sessions = seed_expired(args.cleanup_tasks)
        probe = LongestStatement()
        started = time.perf_counter()
        with connection.execute_wrapper(probe):
            result = sessions_cleanup(completed_days=90, failed_days=30)
        took = time.perf_counter() - started
        print(
            f"cleanup: {result.deleted_sessions} sessions / {result.deleted_tasks} tasks in {took:.1f} s "
            f"({result.deleted_tasks / took:,.0f} tasks/s; {probe.deletes} DELETE statements, longest "
            f"{probe.longest_delete * 1000:.0f} ms; longest of all {probe.count} statements "
            f"{probe.longest * 1000:.0f} ms: {probe.sql[:50]}...)"
        )
        assert result.deleted_sessions == sessions


if __name__ == "__main__":
    main()
