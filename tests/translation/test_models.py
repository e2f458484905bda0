"""The data model on the real database (MariaDB in CI): constraints, collation, cascade."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DataError, OperationalError

from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)
NOW = dt.datetime(2025, 9, 30, 10, 15, 30, tzinfo=dt.UTC)
on_mysql = pytest.mark.skipif(connection.vendor != "mysql", reason="MySQL/MariaDB behaviour")


def make_session(session_id: str = "s-1", **fields) -> Session:
    values = {
        "filename": "game.xlsx",
        "file_path": "/files/game.xlsx",
        "status": "processing",
        "llm_provider": "openai",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Session.objects.create(session_id=session_id, **values)


def make_task(task_id: str, session_id: str = "s-1", **fields) -> Task:
    values = {
        "batch_id": "b-1",
        "sheet_name": "Sheet1",
        "row_index": 0,
        "column_name": "B",
        "source_text": "Hello",
        "status": "pending",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Task.objects.create(task_id=task_id, session_id=session_id, **values)


def test_tables_have_the_contract_names():
    tables = connection.introspection.table_names()

    assert "translation_sessions" in tables
    assert "translation_tasks" in tables


def test_defaults_for_optional_fields():
    session = make_session()
    task = make_task("t-1")

    session.refresh_from_db()
    task.refresh_from_db()
    assert (session.total_tasks, session.completed_tasks, session.failed_tasks, session.processing_tasks) == (
        0,
        0,
        0,
        0,
    )
    assert session.game_info == {} and session.metadata == {}
    assert task.retry_count == 0
    assert task.target_text is None and task.confidence is None and task.duration_ms is None


@on_mysql
def test_deleting_a_session_row_cascades_to_its_tasks_in_the_database():
    make_session("s-1")
    make_session("s-2")
    for i in range(3):
        make_task(f"t-{i}", "s-1", row_index=i)
    make_task("other", "s-2")

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM translation_sessions WHERE session_id = %s", ["s-1"])

    assert list(Task.objects.values_list("task_id", flat=True)) == ["other"]


@on_mysql
def test_task_for_a_missing_session_is_rejected_by_the_foreign_key():
    with pytest.raises(IntegrityError):
        make_task("t-1", "no-such-session")


@on_mysql
def test_ids_are_exact_strings_case_and_trailing_space_matter():
    for session_id in ("abc", "ABC", "abc "):
        make_session(session_id)

    assert Session.objects.count() == 3
    assert Session.objects.get(session_id="abc ").session_id == "abc "


@on_mysql
def test_text_is_utf8mb4_and_stored_exactly():
    text = "  Привет 🌍 你好 — ✓  "
    make_session()
    make_task("t-emoji", source_text=text, target_text="🎮" * 1000)

    task = Task.objects.get(task_id="t-emoji")
    assert task.source_text == text
    assert task.target_text == "🎮" * 1000


@on_mysql
def test_long_text_up_to_the_contract_limit_fits():
    make_session()
    make_task("t-long", source_text="字" * 100_000)

    assert len(Task.objects.get(task_id="t-long").source_text) == 100_000


def test_confidence_is_stored_with_four_decimals():
    make_session()
    make_task("t-1", confidence=Decimal("0.9876"))

    assert Task.objects.get(task_id="t-1").confidence == Decimal("0.9876")


@on_mysql
def test_negative_counters_are_rejected():
    with pytest.raises((IntegrityError, DataError, OperationalError)), transaction.atomic():
        make_session(total_tasks=-1)


@on_mysql
def test_strict_mode_rejects_an_overlong_value_instead_of_truncating():
    with pytest.raises((DataError, OperationalError)), transaction.atomic():
        make_session(filename="x" * 256)


@on_mysql
def test_contract_indexes_exist():
    constraints = connection.introspection.get_constraints(connection.cursor(), "translation_tasks")
    index_columns = {tuple(c["columns"]) for c in constraints.values() if c["index"]}

    assert ("session_id", "status") in index_columns
    assert ("session_id", "row_index", "task_id") in index_columns
    assert ("batch_id",) in index_columns
    assert ("status", "updated_at") in index_columns
    session_constraints = connection.introspection.get_constraints(
        connection.cursor(), "translation_sessions"
    )
    session_indexes = {tuple(c["columns"]) for c in session_constraints.values() if c["index"]}
    assert ("status", "created_at") in session_indexes
    assert ("updated_at",) in session_indexes
