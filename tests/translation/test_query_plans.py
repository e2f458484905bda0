"""EXPLAIN on MariaDB: the page queries the read path's selectors send use the indexes, without a
filesort (the statements are captured from the selectors, not rebuilt here)."""

from __future__ import annotations

import datetime as dt
import json
from functools import partial

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import session_record
from tests.recovery.stored import store_tasks
from translation.models import Session, SessionStatus
from translation.selectors import session_tasks_page, sessions_page, tasks_page

pytestmark = [
    pytest.mark.django_db(transaction=True),  # ANALYZE TABLE commits
    pytest.mark.skipif(connection.vendor != "mysql", reason="plans of MySQL/MariaDB"),
]


def plan(run, table: str) -> tuple[str | None, bool]:
    """(index used, whether a filesort is needed) of the page query that ``run`` (a selector call)
    really sends to ``table``: the statement is captured as executed and EXPLAINed as it is."""
    with CaptureQueriesContext(connection) as captured:
        run()
    pages = [
        query["sql"]
        for query in captured.captured_queries
        if f"FROM `{table}`" in query["sql"] and "ORDER BY" in query["sql"] and "LIMIT" in query["sql"]
    ]
    assert pages, [query["sql"] for query in captured.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN FORMAT=JSON " + pages[-1])
        text = cursor.fetchone()[0]
    document = json.loads(text)
    keys = []

    def walk(node):
        if isinstance(node, dict):
            if "table" in node and isinstance(node["table"], dict):
                keys.append(node["table"].get("key"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return keys[0] if keys else None, "filesort" in text


@pytest.fixture
def data():
    # Enough rows that a full scan is not the cheapest plan.
    now = dt.datetime.now(dt.UTC)
    Session.objects.bulk_create(
        Session(
            **session_record(f"s-{n:04}", status=SessionStatus.values[n % 5]),
            created_at=now - dt.timedelta(minutes=n),
            updated_at=now,
        )
        for n in range(5000)
    )
    for n in range(20):
        store_tasks(f"s-{n:04}", 400, status="pending", batch_id=f"b-{n}")
        store_tasks(f"s-{n:04}", 100, status="completed", batch_id=f"b-{n}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE TABLE translation_sessions, translation_tasks")
        cursor.fetchall()


def test_session_list_by_status_reads_the_status_created_index_in_order(data):
    run = partial(sessions_page, query={"status": "processing", "page_size": "20"})
    assert plan(run, "translation_sessions") == ("sess_status_created_idx", False)


def test_session_list_unfiltered_reads_the_created_index_in_order(data):
    run = partial(sessions_page, query={"page_size": "20"})
    assert plan(run, "translation_sessions") == ("sess_created_idx", False)


def test_session_tasks_page_reads_the_session_row_index_in_order(data):
    run = partial(session_tasks_page, session_id="s-0001", query={"page_size": "20"})
    assert plan(run, "translation_tasks") == ("task_session_row_idx", False)


def test_session_tasks_by_status_use_a_session_index(data):
    run = partial(session_tasks_page, session_id="s-0001", query={"status": "completed", "page_size": "20"})
    key, _ = plan(run, "translation_tasks")
    assert key in ("task_session_status_idx", "task_session_row_idx")


def test_tasks_by_batch_use_the_batch_index(data):
    key, _ = plan(partial(tasks_page, query={"batch_id": "b-3", "page_size": "20"}), "translation_tasks")
    assert key == "task_batch_idx"
