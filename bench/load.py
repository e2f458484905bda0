"""Headless load test: start the stack, run bench/locustfile.py against it, print the figures.

    .venv/bin/python bench/load.py [--seconds 60] [--users 8] [--web-workers 3]
    make load

Starts gunicorn (tests.processes.GunicornServer, ``--web-workers`` workers) and one Celery worker
on a database and Redis db of their own (persistence_load, Redis db 8; both emptied first; override
with LOAD_DATABASE_URL / LOAD_REDIS_URL), with authentication off, and runs locust headless on the
loopback address for a bounded time. Prints per endpoint: requests, failures, requests/s and
p50/p95/p99/max latency; the acknowledged task writes per second; routes the service does not have
yet; and, after a final flush, whether every acknowledged task is in the database.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
DB_NAME = "persistence_load"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("LOAD_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        "REDIS_URL": os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/8"),
        "API_AUTH_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("CELERY_BROKER_URL", None)  # the broker must be the stack's own Redis db

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import MySQLdb  # noqa: E402
from django.db import connection  # noqa: E402

from tests.processes import CeleryWorker, GunicornServer  # noqa: E402

# The stack's settings for a load run: the default size trigger and a capacity far above what
# 60 s of this profile buffers, so back-pressure shows only if the flusher cannot keep up at all.
# Rate limits are off: every simulated user comes from 127.0.0.1, which a per-IP limit would throttle.
STACK_ENV = {
    "BUFFER_FLUSH_SIZE": "1000",
    "BUFFER_CAPACITY": "200000",
    "THROTTLE_RATE_KEY": "off",
    "THROTTLE_RATE_IP": "off",
}


def reset_stack() -> None:
    """Empty the bench database (drop, create, migrate) and the bench Redis db (buffer and broker)."""
    import redis

    db_name = connection.settings_dict["NAME"]
    params = connection.get_connection_params()
    params.pop("db", None)
    params.pop("database", None)
    conn = MySQLdb.connect(**params)
    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{db_name}`")
    conn.cursor().execute(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4")
    conn.close()
    connection.close()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, check=True, capture_output=True
    )
    # The whole db: the buffer and also a Celery queue an earlier run may have left.
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def stored_tasks(session_ids: list[str]) -> int:
    if not session_ids:
        return 0
    with connection.cursor() as cursor:
        total = 0
        for start in range(0, len(session_ids), 500):
            chunk = session_ids[start : start + 500]
            cursor.execute(
                f"SELECT COUNT(*) FROM translation_tasks WHERE session_id IN ({','.join(['%s'] * len(chunk))})",
                chunk,
            )
            total += cursor.fetchone()[0]
        return total


def run_locust(url: str, users: int, spawn_rate: float, seconds: int, workdir: Path) -> tuple[Path, Path]:
    csv_prefix = workdir / "load"
    summary_path = workdir / "summary.json"
    command = [
        str(BIN / "locust"),
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--host",
        url,
        "--csv",
        str(csv_prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    env = {**os.environ, "LOAD_SUMMARY_PATH": str(summary_path)}
    # Bounded: locust stops itself after --run-time; the timeout is a backstop.
    subprocess.run(command, cwd=ROOT, env=env, timeout=seconds + 120, check=False, capture_output=True)
    return Path(f"{csv_prefix}_stats.csv"), summary_path


def print_stats(stats_path: Path, seconds: int) -> None:
    with open(stats_path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = f"{'endpoint':<36} {'requests':>8} {'fail':>5} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>7}"
    print(header + "  (latency in ms)")
    print("-" * len(header))
    for row in rows:
        name = row["Name"] if row["Name"] != "Aggregated" else "all requests"
        print(
            f"{name:<36} {row['Request Count']:>8} {row['Failure Count']:>5} "
            f"{float(row['Requests/s']):>7.1f} {row['50%']:>6} {row['95%']:>6} {row['99%']:>6} "
            f"{float(row['Max Response Time']):>7.0f}"
        )


def scrape_metrics(url: str) -> dict[str, float] | None:
    """Totals of the service's own counters, when the metrics endpoint is deployed."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(url + "/api/v1/system/metrics", timeout=10)
    if response.status_code != 200:
        return None
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith("persistence_") and not sample.name.endswith(("_bucket", "_created")):
                totals[sample.name] = totals.get(sample.name, 0) + sample.value
                if "type" in sample.labels:
                    key = f"{sample.name}{{type={sample.labels['type']}}}"
                    totals[key] = totals.get(key, 0) + sample.value
    return totals


def problem_lines(log: str) -> list[str]:
    """Warning and error lines of a process log (flush failures say why here)."""
    markers = ('"WARNING"', '"ERROR"', "WARNING/", "ERROR/", "CRITICAL")  # JSON logs, Celery's format
    return [line for line in log.splitlines() if any(marker in line for marker in markers)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--spawn-rate", type=float, default=4)
    parser.add_argument("--web-workers", type=int, default=3)
    args = parser.parse_args()

    reset_stack()
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="persistence-load-"))
        # One metrics directory for gunicorn and the Celery worker, as on one host in production, so
        # the scrape includes the flushes the worker did (docs/deployment.md, "Monitoring").
        metrics_dir = Path(workdir) / "metrics"
        metrics_dir.mkdir()
        env = {**os.environ, **STACK_ENV, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        server = stack.enter_context(GunicornServer(env=env, workers=args.web_workers))
        worker_log = Path(workdir) / "worker.log"
        stack.enter_context(CeleryWorker(env=env, concurrency=1, log_path=worker_log))
        print(
            f"load: {args.users} users for {args.seconds} s against {server.url} "
            f"({args.web_workers} gunicorn workers, 1 Celery worker, {os.cpu_count()} cores)"
        )
        started = time.monotonic()
        stats_path, summary_path = run_locust(
            server.url, args.users, args.spawn_rate, args.seconds, Path(workdir)
        )
        elapsed = time.monotonic() - started
        if not stats_path.exists() or not summary_path.exists():
            sys.exit("locust produced no statistics (see its output by running the locust command by hand)")
        print_stats(stats_path, args.seconds)
        summary = json.loads(summary_path.read_text())

        flushed = httpx.post(server.url + "/api/v1/translation/flush", timeout=60)
        metrics = scrape_metrics(server.url)
        problems = problem_lines(worker_log.read_text(errors="replace"))
    problems += problem_lines(getattr(server, "output", ""))

    print()
    print(
        f"acknowledged: {summary['acknowledged_task_writes']:,} task writes "
        f"({summary['acknowledged_task_writes'] / args.seconds:,.0f} tasks/s), "
        f"{summary['acknowledged_session_writes']:,} session writes, "
        f"{summary['acknowledged_task_ids']:,} distinct tasks in {len(summary['session_ids'])} sessions "
        f"(run took {elapsed:.0f} s with start and stop)"
    )
    stored = stored_tasks(summary["session_ids"])
    print(
        f"after the final flush ({flushed.status_code}): {stored:,} of "
        f"{summary['acknowledged_task_ids']:,} acknowledged tasks stored, "
        f"missing={summary['acknowledged_task_ids'] - stored}"
    )
    if summary["missing_routes"]:
        print(f"routes not deployed yet (skipped): {', '.join(summary['missing_routes'])}")
    non_2xx = {
        name: {code: n for code, n in codes.items() if not 200 <= int(code) < 300}
        for name, codes in summary["statuses"].items()
    }
    non_2xx = {name: codes for name, codes in non_2xx.items() if codes}
    if non_2xx:
        print(f"non-2xx answers: {non_2xx}")
    if problems:
        print(f"warnings logged by the worker and web processes ({len(problems)}), first ones:")
        for line in problems[:5]:
            print(f"  {line[:300]}")
    if metrics is None:
        print("metrics endpoint not deployed yet (GET /api/v1/system/metrics answered non-200)")
    else:
        wanted = (
            "persistence_flush_total",
            "persistence_flushed_items_total",
            "persistence_flush_errors_total",
            "persistence_dead_letters_total",
            "persistence_data_loss_total",
        )
        print("metrics: " + ", ".join(f"{name}={metrics.get(name, 0):,.0f}" for name in wanted))
        task_rows = metrics.get("persistence_flushed_items_total{type=task}", 0)
        if task_rows:
            print(
                f"coalescing: {summary['acknowledged_task_writes']:,} acknowledged task writes became "
                f"{task_rows:,.0f} task row writes ({summary['acknowledged_task_writes'] / task_rows:.1f}x fewer)"
            )


if __name__ == "__main__":
    main()
