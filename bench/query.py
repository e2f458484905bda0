"""Read-path benchmark on MariaDB: 10,000 sessions, 1,000,000 tasks, 16 concurrent clients.

    .venv/bin/python bench/query.py [--sessions 10000] [--tasks-per-session 100] [--workers 4]
                                    [--requests 4000] [--concurrency 16] [--no-seed]

Uses its own database (persistence_bench_query) and Redis db 7; seeds it with multi-row INSERTs
(skipped with --no-seed when the data is there), starts gunicorn with API keys on, and drives each
endpoint with ApacheBench (`ab`, apache2-utils: a C client, so the load generator takes little of the
two cores from the server). Prints requests/s and p50/p95/p99 per endpoint:
- session detail (GET /sessions/{id});
- session list page 1 filtered by status (GET /sessions?status=processing);
- a session's tasks page (GET /sessions/{id}/tasks?page=2&page_size=50);
- stats (GET /stats), cached for STATS_CACHE_SECONDS, and once more with the cache off.
Goals (issue 4): p95 < 50 ms for each; >= 1,000 requests/s for session detail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "persistence_bench_query"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        "REDIS_URL": os.environ.get("BENCH_QUERY_REDIS_URL", "redis://127.0.0.1:6379/7"),
        "LOG_LEVEL": "WARNING",
    }
)

import django  # noqa: E402

django.setup()

from api_keys.services import api_key_create  # noqa: E402
from bench.seed import ROWS_PER_INSERT, SESSION_COLUMNS, TASK_COLUMNS, raw_connection, reset_database  # noqa: E402
from tests.processes import GunicornServer, service_env  # noqa: E402

SESSION_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
TASK_STATUSES = ("pending", "processing", "completed", "failed")
API = "/api/v1/translation"


def seed(sessions: int, tasks_per_session: int) -> None:
    started = time.perf_counter()
    reset_database(DB_NAME)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    conn = raw_connection()
    cur = conn.cursor()
    session_sql = f"INSERT INTO translation_sessions ({SESSION_COLUMNS}) VALUES ({','.join(['%s'] * 13)})"
    task_sql = f"INSERT INTO translation_tasks ({TASK_COLUMNS}) VALUES ({','.join(['%s'] * 18)})"
    session_rows, task_rows = [], []
    for s in range(sessions):
        created = base + dt.timedelta(minutes=s)
        done = tasks_per_session * (s % 10) // 10
        session_rows.append(
            (
                f"bench-s{s:06d}", "game_text.xlsx", "/uploads/game_text.xlsx", SESSION_STATUSES[s % 5],
                '{"game_name": "Quest", "source_language": "en", "target_language": "de"}', "openai",
                '{"user_id": "u-1"}', tasks_per_session, done, 0, 0, created, created + dt.timedelta(hours=1),
            )
        )  # fmt: skip
        for i in range(tasks_per_session):
            status = TASK_STATUSES[(s + i) % 4]
            finished = status in ("completed", "failed")
            task_rows.append(
                (
                    f"bench-s{s:06d}-t{i:05d}", f"bench-s{s:06d}", f"batch-{s}-{i // 50}", "Dialogue", i, "B",
                    f"Greetings, traveller number {i}! The road to the northern keep is long.",
                    f"Seid gegrüßt, Reisender Nummer {i}!" if finished else None,
                    "NPC greeting in the first village.", status, "0.9731" if finished else None, None, 0,
                    None, None, 1234 if finished else None, created, created,
                )
            )  # fmt: skip
            if len(task_rows) >= ROWS_PER_INSERT:
                if session_rows:  # a task's session goes in first (foreign key)
                    cur.executemany(session_sql, session_rows)
                    session_rows.clear()
                cur.executemany(task_sql, task_rows)
                task_rows.clear()
    if session_rows:
        cur.executemany(session_sql, session_rows)
    if task_rows:
        cur.executemany(task_sql, task_rows)
    conn.commit()
    cur.execute("ANALYZE TABLE translation_sessions, translation_tasks")
    cur.fetchall()
    conn.close()
    total = sessions * tasks_per_session
    print(f"seeded {sessions:,} sessions and {total:,} tasks in {time.perf_counter() - started:.0f} s")


def ab(url: str, key: str, requests: int, concurrency: int) -> dict[str, float]:
    out = subprocess.run(
        ["ab", "-q", "-n", str(requests), "-c", str(concurrency), "-H", f"X-API-Key: {key}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    figures = {
        "rps": float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1)),
        "failed": failed + (int(non_2xx.group(1)) if non_2xx else 0),
    }
    for q in (50, 95, 99):
        figures[f"p{q}"] = float(re.search(rf"^\s+{q}%\s+(\d+)", out, re.M).group(1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--tasks-per-session", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-seed", action="store_true")
    args = parser.parse_args()
    if shutil.which("ab") is None:
        sys.exit(
            "bench/query.py needs ApacheBench: apt-get install apache2-utils (scripts/bootstrap.sh dev does)"
        )
    if not args.no_seed:
        seed(args.sessions, args.tasks_per_session)
    _, key = api_key_create(name="bench-query", scopes="read")
    middle = f"bench-s{args.sessions // 2 + 1:06d}"  # a processing session
    endpoints = [
        ("session detail", f"{API}/sessions/{middle}"),
        ("session list, status filter", f"{API}/sessions?status=processing"),
        ("session tasks page", f"{API}/sessions/{middle}/tasks?page=2&page_size=50"),
        ("stats (cached 5 s)", f"{API}/stats"),
    ]
    # The test settings turn the statistics cache off (STATS_CACHE_SECONDS=0): the bench sets the
    # production default, or its "cached" row would compute them on every request.
    env = service_env(
        API_AUTH_ENABLED="true", THROTTLE_RATE_KEY="off", THROTTLE_RATE_IP="off", STATS_CACHE_SECONDS="5"
    )
    nocache = service_env(
        API_AUTH_ENABLED="true", THROTTLE_RATE_KEY="off", THROTTLE_RATE_IP="off", STATS_CACHE_SECONDS="0"
    )
    print(f"gunicorn {args.workers} sync workers, API keys on; {args.concurrency} concurrent clients (ab)")
    print(f"{'endpoint':32} {'req/s':>8} {'p50':>6} {'p95':>6} {'p99':>6}  (ms)")

    def report(name: str, figures: dict[str, float]) -> None:
        print(
            f"{name:32} {figures['rps']:8,.0f} {figures['p50']:6.0f} {figures['p95']:6.0f} {figures['p99']:6.0f}"
            + (f"  failed={figures['failed']:.0f}" if figures["failed"] else "")
        )

    with GunicornServer(env=env, workers=args.workers) as server:
        for name, path in endpoints:
            ab(server.url + path, key, 200, args.concurrency)  # warm-up: connections, buffer pool
            report(name, ab(server.url + path, key, args.requests, args.concurrency))
    with GunicornServer(env=nocache, workers=args.workers) as server:
        report("stats (computed every time)", ab(server.url + f"{API}/stats", key, 50, 4))


if __name__ == "__main__":
    main()
