"""EXPLAIN on MariaDB: the list queries of the read path use the indexes, without a filesort."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection

from tests.factories import session_record
from tests.recovery.stored import store_tasks
from translation.models import Session, SessionStatus, Task

pytestmark = [
    pytest.mark.django_db(transaction=True),  # ANALYZE TABLE commits
    pytest.mark.skipif(connection.vendor != "mysql", reason="plans of MySQL/MariaDB"),
]


def plan(queryset) -> tuple[str | None, bool]:
    """(index used, whether a filesort is needed) of the queryset's page query."""
    text = queryset.explain(format="json")
    document = json.loads(text)
    if isinstance(document, str):  # Django hands MariaDB's JSON plan over as a JSON string
        document = json.loads(document)
    keys = []
    filesort = "filesort" in text

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
    return keys[0] if keys else None, filesort


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
    rows = Session.objects.filter(status="processing").order_by("-created_at", "-session_id")[:20]
    assert plan(rows) == ("sess_status_created_idx", False)


def test_session_list_unfiltered_reads_the_created_index_in_order(data):
    rows = Session.objects.order_by("-created_at", "-session_id")[:20]
    assert plan(rows) == ("sess_created_idx", False)


def test_session_tasks_page_reads_the_session_row_index_in_order(data):
    rows = Task.objects.filter(session_id="s-0001").order_by("row_index", "task_id")[:20]
    assert plan(rows) == ("task_session_row_idx", False)


def test_session_tasks_by_status_use_a_session_index(data):
    rows = Task.objects.filter(session_id="s-0001", status="completed").order_by("row_index", "task_id")[:20]
    key, _ = plan(rows)
    assert key in ("task_session_status_idx", "task_session_row_idx")


def test_tasks_by_batch_use_the_batch_index(data):
    key, _ = plan(Task.objects.filter(batch_id="b-3").order_by("task_id")[:20])
    assert key == "task_batch_idx"
