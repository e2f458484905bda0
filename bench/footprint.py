"""Storage footprint per task: Redis memory per buffered task and MySQL bytes per stored task row.

    .venv/bin/python bench/footprint.py [--tasks 50000]

Uses its own database (persistence_bench) and Redis db 9. Buffers the tasks (typical 450-byte
records from tests/factories.py), reads ``used_memory`` before and after; then flushes them into
MariaDB, runs ANALYZE TABLE and reads data and index length from ``information_schema``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "persistence_bench"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
        "LOG_LEVEL": "WARNING",
    }
)

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.db import connection  # noqa: E402

from bench.seed import reset_database  # noqa: E402
from storage_backends.buffer import get_write_buffer  # noqa: E402
from storage_backends.flush import flush_all  # noqa: E402
from tests.factories import session_record, task_record  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50_000)
    args = parser.parse_args()
    reset_database(DB_NAME)
    buffer = get_write_buffer()
    buffer.clear()
    buffer.add("translation_sessions", [session_record("footprint")])
    flush_all(buffer)
    tasks = [task_record("footprint", f"fp-{i:07d}") for i in range(args.tasks)]
    record_bytes = sum(len(orjson.dumps(t)) for t in tasks) / len(tasks)

    before = buffer.redis.info("memory")["used_memory"]
    for start in range(0, len(tasks), 1000):
        buffer.add("translation_tasks", tasks[start : start + 1000])
    after = buffer.redis.info("memory")["used_memory"]
    per_task = (after - before) / len(tasks)
    print(
        f"redis: {per_task:,.0f} bytes per buffered task (records of {record_bytes:,.0f} bytes as JSON); "
        f"200,000 buffered tasks ≈ {per_task * 200_000 / 2**20:,.0f} MiB"
    )

    flush_all(buffer)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE TABLE translation_tasks")
        cursor.fetchall()
        cursor.execute(
            "SELECT data_length, index_length FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = 'translation_tasks'"
        )
        data, index = cursor.fetchone()
    print(
        f"mysql: {(data + index) / len(tasks) / 1024:,.2f} KiB per task row "
        f"({data / len(tasks) / 1024:,.2f} data + {index / len(tasks) / 1024:,.2f} indexes); "
        f"1 M tasks ≈ {(data + index) / len(tasks) * 1_000_000 / 2**30:,.2f} GiB"
    )
    buffer.clear()


if __name__ == "__main__":
    main()
