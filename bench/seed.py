"""Fast seeding of MariaDB for the benchmarks: multi-row INSERTs through mysqlclient.

Call after django.setup() with DATABASE_URL naming the benchmark's own database:

    reset_database("persistence_bench_query")
    conn = raw_connection(); cur = conn.cursor()
    insert_session(cur, "s-1", status="processing", total=100, updated=now)
    insert_tasks(cur, "s-1", 100, status="pending", when=now)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import MySQLdb
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

TASK_COLUMNS = (
    "task_id, session_id, batch_id, sheet_name, row_index, column_name, source_text, target_text, context, "
    "status, confidence, error_message, retry_count, start_time, end_time, duration_ms, created_at, updated_at"
)
SESSION_COLUMNS = (
    "session_id, filename, file_path, status, game_info, llm_provider, metadata, total_tasks, "
    "completed_tasks, failed_tasks, processing_tasks, created_at, updated_at"
)
ROWS_PER_INSERT = 2000


def reset_database(db_name: str) -> None:
    """Drop and re-create ``db_name`` (the configured DATABASE_URL's database) and migrate it."""
    params = connection.get_connection_params()
    params.pop("db", None)
    params.pop("database", None)
    conn = MySQLdb.connect(**params)
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {db_name}")
    conn.cursor().execute(f"CREATE DATABASE {db_name} CHARACTER SET utf8mb4")
    conn.close()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, check=True, capture_output=True
    )


def raw_connection() -> MySQLdb.Connection:
    return MySQLdb.connect(**connection.get_connection_params())


def insert_session(cur, session_id: str, *, status: str, total: int, updated: str) -> None:
    cur.execute(
        f"INSERT INTO translation_sessions ({SESSION_COLUMNS}) VALUES "
        "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (
            session_id,
            "game_text.xlsx",
            "/uploads/game_text.xlsx",
            status,
            '{"game_name": "Quest", "source_language": "en", "target_language": "de"}',
            "openai",
            '{"user_id": "u-1"}',
            total,
            0,
            0,
            0,
            updated,
            updated,
        ),
    )


def insert_tasks(cur, session_id: str, count: int, *, status: str, start: int = 0, when: str) -> None:
    """Typical translation tasks (~300 bytes of text each), ``ROWS_PER_INSERT`` rows per statement."""
    sql = f"INSERT INTO translation_tasks ({TASK_COLUMNS}) VALUES (" + ",".join(["%s"] * 18) + ")"
    for first in range(start, start + count, ROWS_PER_INSERT):
        rows = [
            (
                f"{session_id}-t{i:07d}",
                session_id,
                f"batch-{i // 100}",
                "Dialogue",
                i,
                "B",
                f"Greetings, traveller number {i}! The road to the northern keep is long and the wolves are hungry.",
                None if status == "pending" else f"Seid gegrüßt, Reisender Nummer {i}!",
                "NPC greeting in the first village; keep it friendly and short.",
                status,
                None if status == "pending" else "0.9731",
                None,
                0,
                None,
                None,
                None if status == "pending" else 1234,
                when,
                when,
            )
            for i in range(first, min(first + ROWS_PER_INSERT, start + count))
        ]
        cur.executemany(sql, rows)
