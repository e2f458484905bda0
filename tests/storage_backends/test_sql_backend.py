"""The SQL backend's upsert on the real database, with each known trap covered."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from core import json_codec
from storage_backends import registry
from storage_backends.base import Filter, PermanentWriteError, Query
from storage_backends.sql import MAX_BYTES_PER_STATEMENT, SQLBackend, _chunks
from tests.factories import session_record, task_record
from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS, TASKS = "translation_sessions", "translation_tasks"
T0 = dt.datetime(2025, 9, 30, 10, 0, tzinfo=dt.UTC)
on_mysql = pytest.mark.skipif(connection.vendor != "mysql", reason="MySQL/MariaDB behaviour")


def stamped(record: dict, created: dt.datetime, updated: dt.datetime | None = None) -> dict:
    return {**record, "created_at": created, "updated_at": updated or created}


def test_registry_routes_both_collections_to_the_sql_backend():
    assert isinstance(registry.backend(SESSIONS), SQLBackend)
    assert isinstance(registry.backend(TASKS), SQLBackend)


def test_registry_names_the_setting_when_a_backend_path_is_wrong(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.STORAGE_BACKENDS = {SESSIONS: "no.such.Backend"}
    registry._instance.cache_clear()

    with pytest.raises(ImproperlyConfigured, match="STORAGE_BACKENDS"):
        registry.backend(SESSIONS)
    with pytest.raises(ImproperlyConfigured, match="STORAGE_BACKENDS"):
        registry.backend(TASKS)
    registry._instance.cache_clear()


@on_mysql
def test_mariadb_cannot_name_a_conflict_target_and_the_upsert_still_works():
    assert connection.features.supports_update_conflicts_with_target is False
    backend = SQLBackend()

    backend.write(SESSIONS, [stamped(session_record("s-1", filename="a"), T0)])
    backend.write(SESSIONS, [stamped(session_record("s-1", filename="b"), T0)])

    assert Session.objects.get(session_id="s-1").filename == "b"


def test_an_update_keeps_created_at_of_the_first_write_and_sets_updated_at():
    backend = SQLBackend()
    later = T0 + dt.timedelta(hours=1)
    backend.write(SESSIONS, [stamped(session_record("s-1"), T0)])

    backend.write(SESSIONS, [stamped(session_record("s-1", status="completed"), later)])

    stored = Session.objects.get(session_id="s-1")
    assert (stored.created_at, stored.updated_at, stored.status) == (T0, later, "completed")


def test_duplicate_ids_in_one_write_keep_the_last():
    backend = SQLBackend()
    records = [stamped(session_record("s-1", filename=f"{i}.xlsx"), T0) for i in range(3)]

    assert backend.write(SESSIONS, records) == 1

    assert Session.objects.get(session_id="s-1").filename == "2.xlsx"


def test_the_tables_keep_no_unique_key_besides_the_primary_key():
    for table in ("translation_sessions", "translation_tasks"):
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, table)
        unique = [c["columns"] for c in constraints.values() if c["unique"] and not c["primary_key"]]
        assert unique == [], f"{table} has unique keys {unique}: ON DUPLICATE KEY UPDATE would fire on them"


def test_statements_are_bounded_by_bytes_as_well_as_rows():
    sizes = [1_500_000] * 10 + [100] * 2500
    records = [{}] * len(sizes)

    chunks = list(_chunks(records, sizes))

    offsets = 0
    for chunk in chunks:
        part = sizes[offsets : offsets + len(chunk)]
        offsets += len(chunk)
        assert sum(part) <= MAX_BYTES_PER_STATEMENT or len(part) == 1
        assert len(part) <= 1000
    assert offsets == len(sizes)


@on_mysql
@pytest.mark.slow
def test_records_far_larger_than_max_allowed_packet_in_total_are_written():
    backend = SQLBackend()
    backend.write(SESSIONS, [stamped(session_record("s-1"), T0)])
    text = "翻" * 100_000  # 300 KB in utf8mb4, times three fields
    records = [
        stamped(task_record("s-1", f"t-{i}", source_text=text, target_text=text, context=text), T0)
        for i in range(120)
    ]
    sizes = [len(text.encode()) * 3 + 500] * len(records)
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@max_allowed_packet")
        packet = cursor.fetchone()[0]
    assert sum(sizes) > packet  # one statement would fail with error 2006

    assert backend.write(TASKS, records, sizes=sizes) == 120

    assert Task.objects.count() == 120
    assert len(Task.objects.get(task_id="t-7").context) == 100_000


@on_mysql
def test_a_row_the_database_refuses_raises_permanent_write_error_and_writes_nothing():
    backend = SQLBackend()
    records = [stamped(session_record("ok"), T0), stamped(session_record("bad", total_tasks=-5), T0)]

    with pytest.raises(PermanentWriteError):
        backend.write(SESSIONS, records)

    assert not Session.objects.exists()


def test_existing_ids_and_delete():
    backend = SQLBackend()
    backend.write(SESSIONS, [stamped(session_record(f"s-{i}"), T0) for i in range(3)])

    assert backend.existing_ids(SESSIONS, ["s-0", "s-2", "s-9"]) == {"s-0", "s-2"}
    assert backend.delete(SESSIONS, ["s-0", "s-9"]) == 1
    assert backend.read(SESSIONS, "s-0") is None
    assert backend.read(SESSIONS, "s-1")["session_id"] == "s-1"
    assert [r["session_id"] for r in backend.query(SESSIONS, Query(order_by=("session_id",)))] == [
        "s-1",
        "s-2",
    ]
    assert backend.health_check() is True


@on_mysql
def test_the_mysql_fast_path_stores_exactly_what_bulk_create_stores(monkeypatch):
    backend = SQLBackend()
    backend.write(SESSIONS, [stamped(session_record("s-1", game_info={"k": ["ü", 1.5, None]}), T0)])
    task = {
        **task_record("s-1", "t-x", confidence=0.1235, retry_count=3, duration_ms=12, target_text="Ziel 🎯"),
        "start_time": dt.datetime(2025, 9, 30, 12, 0, 1, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "end_time": None,
    }
    from decimal import Decimal

    task["confidence"] = Decimal("0.1235")
    later = T0 + dt.timedelta(minutes=5)

    backend.write(TASKS, [stamped(task, T0, later)])
    fast = Task.objects.filter(task_id="t-x").values().get()
    Task.objects.all().delete()
    monkeypatch.setattr(SQLBackend, "mysql_fast_path", False)
    backend.write(TASKS, [stamped(task, T0, later)])
    orm = Task.objects.filter(task_id="t-x").values().get()

    assert fast == orm
    assert fast["start_time"] == dt.datetime(2025, 9, 30, 10, 0, 1, 123456, tzinfo=dt.UTC)
    assert Session.objects.get().game_info == {"k": ["ü", 1.5, None]}


def test_query_translates_filters_order_fields_and_page():
    backend = SQLBackend()
    backend.write(
        SESSIONS,
        [
            stamped(
                session_record(f"s-{i}", status=status, llm_provider=provider), T0 + dt.timedelta(minutes=i)
            )
            for i, (status, provider) in enumerate(
                [("pending", "openai"), ("completed", "OpenAI"), ("pending", "openai "), ("failed", "openai")]
            )
        ],
    )

    def ids(**spec) -> list[str]:
        return [row["session_id"] for row in backend.query(SESSIONS, Query(fields=("session_id",), **spec))]

    # eq and in compare exactly, whatever the column's collation.
    assert ids(filters=(Filter("llm_provider", "eq", "openai"),), order_by=("session_id",)) == ["s-0", "s-3"]
    assert ids(filters=(Filter("status", "in", ("pending", "failed")),), order_by=("-created_at",)) == [
        "s-3",
        "s-2",
        "s-0",
    ]
    assert ids(
        filters=(
            Filter("created_at", "gte", T0 + dt.timedelta(minutes=1)),
            Filter("created_at", "lt", T0 + dt.timedelta(minutes=3)),
        ),
        order_by=("session_id",),
    ) == [
        "s-1",
        "s-2",
    ]
    # A keyset page: after the last id seen, ordered by id.
    assert ids(filters=(Filter("session_id", "gt", "s-1"),), order_by=("session_id",), limit=1) == ["s-2"]
    assert ids(order_by=("session_id",), limit=2, offset=1) == ["s-1", "s-2"]
    assert backend.count(SESSIONS, Query(filters=(Filter("status", "eq", "pending"),))) == 2
    either = (
        (Filter("status", "eq", "failed"),),
        (Filter("llm_provider", "eq", "OpenAI"), Filter("status", "eq", "completed")),
    )
    assert ids(filters=(Filter("session_id", "gt", "s-0"),), any_of=either, order_by=("session_id",)) == [
        "s-1",
        "s-3",
    ]
    assert backend.count(SESSIONS, Query(filters=(Filter("session_id", "in", ()),))) == 0
    assert list(
        backend.query(SESSIONS, Query(fields=("status", "session_id"), order_by=("session_id",), limit=1))[0]
    ) == [
        "status",
        "session_id",
    ]


@on_mysql
def test_query_json_renders_the_rows_query_returns():
    import orjson

    backend = SQLBackend()
    backend.write(SESSIONS, [stamped(session_record("s-1"), T0)])
    tasks = [
        stamped(
            task_record("s-1", f"t-{i}", confidence=Decimal("0.5") if i else None, duration_ms=i),
            T0 + dt.timedelta(microseconds=i),
        )
        for i in range(4)
    ]
    backend.write(TASKS, tasks)
    fields = ("task_id", "confidence", "duration_ms", "created_at", "start_time")
    spec = Query(
        filters=(Filter("session_id", "eq", "s-1"), Filter("task_id", "gt", "t-0")),
        order_by=("task_id",),
        fields=fields,
        limit=2,
    )

    rendered = backend.query_json(TASKS, spec, index="task_session_status_idx")

    assert [task_id for task_id, _ in rendered] == ["t-1", "t-2"]
    expected = [{**row, "confidence": float(row["confidence"])} for row in backend.query(TASKS, spec)]
    assert [orjson.loads(body) for _, body in rendered] == orjson.loads(json_codec.dumps(expected))
