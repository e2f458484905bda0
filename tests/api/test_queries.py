"""GET /sessions, /sessions/{id}, /sessions/{id}/tasks, /tasks/{id}, /tasks, /stats (docs/api.md §3)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection

from storage_backends.flush import flush_all
from tests.factories import session_record, task_record
from tests.recovery.stored import store_session, store_tasks
from translation.api.queries import (
    SessionDetailView,
    SessionListView,
    SessionTaskListView,
    StatsView,
    TaskDetailView,
    TaskListView,
)
from translation.models import Session, Task

pytestmark = pytest.mark.django_db
API = "/api/v1/translation"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def at(days: float = 0, hours: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, hours=hours)


def ids(body: dict, key: str = "session_id") -> list[str]:
    return [item[key] for item in body["items"]]


def get_ok(client, path: str, **params):
    response = client.get(API + path, params)
    assert response.status_code == 200, response.content
    return response.json()


def get_error(client, path: str, expected_status: int, **params) -> dict:
    response = client.get(API + path, params)
    assert response.status_code == expected_status, response.content
    body = response.json()
    assert set(body) >= {"detail", "error_code", "errors"}
    return body


def test_views_declare_the_read_scope():
    for view in (SessionListView, SessionTaskListView, StatsView, TaskDetailView, TaskListView):
        assert view.required_scope == "read"
    assert SessionDetailView.required_scope["GET"] == "read"


# --- GET /sessions ------------------------------------------------------------------------------


@pytest.fixture
def five_sessions():
    store_session("a", status="pending", llm_provider="openai", created_at=at(0), updated_at=at(4))
    store_session("b", status="processing", llm_provider="qwen", created_at=at(1), updated_at=at(3))
    store_session("c", status="completed", llm_provider="openai", created_at=at(2), updated_at=at(2))
    store_session("d", status="processing", llm_provider="openai", created_at=at(3), updated_at=at(1))
    store_session("e", status="failed", llm_provider="qwen", created_at=at(3), updated_at=at(0))


def test_sessions_default_to_newest_first_with_ties_by_id(api_client, five_sessions):
    body = get_ok(api_client, "/sessions")

    assert ids(body) == ["e", "d", "c", "b", "a"]  # d and e share created_at: id order, descending
    assert {k: body[k] for k in ("total", "page", "page_size", "total_pages")} == {
        "total": 5,
        "page": 1,
        "page_size": 20,
        "total_pages": 1,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "processing"}, ["d", "b"]),
        ({"llm_provider": "qwen"}, ["e", "b"]),
        ({"status": "processing", "llm_provider": "openai"}, ["d"]),
        ({"from_date": "2026-03-03"}, ["e", "d", "c"]),  # a bare date: midnight UTC
        ({"to_date": "2026-03-02"}, ["b", "a"]),  # a bare date: the whole day
        ({"to_date": "2026-03-02T11:59:59Z"}, ["a"]),
        ({"to_date": "2026-03-02T12:00:00Z"}, ["b", "a"]),  # inclusive
        ({"from_date": "2026-03-02T12:00:00+00:00", "to_date": "2026-03-03T12:00:00"}, ["c", "b"]),
        ({"from_date": "2026-03-02T14:00:00+02:00"}, ["e", "d", "c", "b"]),  # offsets respected
        ({"sort_by": "updated_at"}, ["a", "b", "c", "d", "e"]),
        ({"sort_by": "updated_at", "order": "asc"}, ["e", "d", "c", "b", "a"]),
        ({"order": "asc"}, ["a", "b", "c", "d", "e"]),
        ({"status": "cancelled"}, []),
    ],
)
def test_session_filters_and_sorting(api_client, five_sessions, params, expected):
    assert ids(get_ok(api_client, "/sessions", **params)) == expected


def test_session_pages(api_client, five_sessions):
    pages = [get_ok(api_client, "/sessions", page=n, page_size=2) for n in (1, 2, 3, 4)]

    assert [ids(page) for page in pages] == [["e", "d"], ["c", "b"], ["a"], []]
    assert all(page["total"] == 5 and page["total_pages"] == 3 for page in pages)
    assert pages[3]["page"] == 4  # past the end: 200 with no items


def test_session_summaries_carry_the_derived_fields(api_client):
    store_session("s", total_tasks=8, completed_tasks=3, failed_tasks=1, processing_tasks=2)
    store_session("z", total_tasks=0)
    store_session("over", total_tasks=2, completed_tasks=3)

    items = {item["session_id"]: item for item in get_ok(api_client, "/sessions")["items"]}

    assert set(items["s"]) == {
        "session_id", "filename", "status", "total_tasks", "completed_tasks", "failed_tasks",
        "processing_tasks", "pending_tasks", "progress", "created_at", "updated_at",
    }  # fmt: skip
    assert (items["s"]["pending_tasks"], items["s"]["progress"]) == (2, 37.5)
    assert (items["z"]["pending_tasks"], items["z"]["progress"]) == (0, 0.0)
    assert items["over"]["pending_tasks"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "x"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
        ({"sort_by": "filename"}, "sort_by"),
        ({"order": "up"}, "order"),
        ({"from_date": "2026-02-30"}, "from_date"),
        ({"to_date": "yesterday"}, "to_date"),
        ({"status": "done"}, "status"),
    ],
)
def test_malformed_session_queries_are_400(api_client, params, field):
    body = get_error(api_client, "/sessions", 400, **params)

    assert body["error_code"] == "INVALID_QUERY"
    assert [error["field"] for error in body["errors"]] == [field]


def test_page_size_100_is_allowed(api_client, five_sessions):
    assert get_ok(api_client, "/sessions", page_size=100)["page_size"] == 100


# --- GET /sessions/{id} -------------------------------------------------------------------------


def test_session_detail_has_every_field(api_client):
    store_session(
        "s-1", status="processing", total_tasks=10, completed_tasks=4, created_at=at(0), updated_at=at(0, 2)
    )

    body = get_ok(api_client, "/sessions/s-1")

    stored = Session.objects.get(pk="s-1")
    assert body["game_info"] == stored.game_info and body["metadata"] == stored.metadata
    assert body["file_path"] == stored.file_path and body["llm_provider"] == "openai"
    assert (body["pending_tasks"], body["progress"]) == (6, 40.0)
    # 4 done in 2 h: the 6 left take 3 h more
    assert body["estimated_completion"] == "2026-03-01T17:00:00Z"
    assert body["created_at"] == "2026-03-01T12:00:00Z"


def test_unknown_session_is_404_with_its_id(api_client, write_buffer):
    body = get_error(api_client, "/sessions/nope", 404)

    assert body["error_code"] == "NOT_FOUND"
    assert body["detail"] == "Session not found"
    assert body["session_id"] == "nope"


def test_session_detail_reads_its_own_unflushed_writes(api_client, write_buffer):
    store_session("s-1", status="pending", total_tasks=5, created_at=at(0))
    accepted = api_client.post(
        API + "/sessions/batch",
        {"sessions": [session_record("s-1", status="processing", total_tasks=7)]},
        format="json",
    )
    assert accepted.status_code == 202
    new = api_client.post(API + "/sessions/batch", {"sessions": [session_record("s-new")]}, format="json")
    assert new.status_code == 202

    body = get_ok(api_client, "/sessions/s-1")

    assert (body["status"], body["total_tasks"]) == ("processing", 7)  # the buffered write
    assert body["created_at"] == "2026-03-01T12:00:00Z"  # created_at stays the stored one's
    assert Session.objects.get(pk="s-1").status == "pending"  # not flushed yet
    assert get_ok(api_client, "/sessions/s-new")["status"] == "processing"


# --- GET /sessions/{id}/tasks -------------------------------------------------------------------


@pytest.fixture
def session_with_tasks():
    store_session("s-1")
    store_session("s-2")
    for row, (task_id, sheet, status) in enumerate(
        [("t-c", "Menu", "pending"), ("t-a", "Dialogue", "completed"), ("t-b", "Dialogue", "failed")]
    ):
        store_tasks("s-1", 1, task_id=task_id, sheet_name=sheet, status=status, row_index=row % 2)
    store_tasks("s-2", 1, task_id="t-other", row_index=0)


def test_session_tasks_are_in_row_order_then_task_id(api_client, session_with_tasks):
    body = get_ok(api_client, "/sessions/s-1/tasks")

    assert body["session_id"] == "s-1"
    assert ids(body, "task_id") == ["t-b", "t-c", "t-a"]  # rows 0, 0, 1
    assert body["total"] == 3


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "completed"}, ["t-a"]),
        ({"sheet_name": "Dialogue"}, ["t-b", "t-a"]),
        ({"sheet_name": "Dialogue", "status": "failed"}, ["t-b"]),
        ({"page": 2, "page_size": 2}, ["t-a"]),
        ({"page": 3, "page_size": 2}, []),
    ],
)
def test_session_task_filters(api_client, session_with_tasks, params, expected):
    assert ids(get_ok(api_client, "/sessions/s-1/tasks", **params), "task_id") == expected


def test_session_tasks_of_an_unknown_session_are_404(api_client, write_buffer):
    body = get_error(api_client, "/sessions/nope/tasks", 404)
    assert body["session_id"] == "nope"


def test_session_tasks_of_a_buffered_session_are_an_empty_page(api_client, write_buffer):
    api_client.post(API + "/sessions/batch", {"sessions": [session_record("s-b")]}, format="json")

    assert get_ok(api_client, "/sessions/s-b/tasks")["items"] == []


def test_session_tasks_bad_status_is_400(api_client, session_with_tasks):
    assert (
        get_error(api_client, "/sessions/s-1/tasks", 400, status="cancelled")["error_code"] == "INVALID_QUERY"
    )


# --- GET /tasks/{id} and /tasks -----------------------------------------------------------------


def test_task_detail_has_every_field_with_numbers_as_numbers(api_client, write_buffer):
    store_session("s-1")
    store_tasks(
        "s-1",
        1,
        task_id="t-1",
        status="completed",
        confidence=0.9512,
        target_text="Hallo",
        start_time="2026-03-01T12:00:00+00:00",
        end_time="2026-03-01T12:00:02+00:00",
        duration_ms=2000,
        retry_count=1,
    )

    body = get_ok(api_client, "/tasks/t-1")

    assert body["confidence"] == 0.9512  # a JSON number
    assert (body["target_text"], body["duration_ms"], body["retry_count"]) == ("Hallo", 2000, 1)
    assert body["start_time"] == "2026-03-01T12:00:00Z"
    assert set(body) == {f.attname for f in Task._meta.concrete_fields}


def test_unknown_task_is_404_with_its_id(api_client, write_buffer):
    body = get_error(api_client, "/tasks/nope", 404)
    assert (body["detail"], body["task_id"]) == ("Task not found", "nope")


@pytest.mark.django_db(transaction=True)
def test_task_detail_reads_its_own_unflushed_writes(api_client, write_buffer):
    store_session("s-1")
    store_tasks("s-1", 1, task_id="t-1", status="pending", created_at=at(0))
    write = task_record("s-1", "t-1", status="completed", confidence=0.5, target_text="Hallo")
    assert api_client.post(API + "/tasks/batch", {"tasks": [write]}, format="json").status_code == 202

    body = get_ok(api_client, "/tasks/t-1")

    assert (body["status"], body["confidence"], body["target_text"]) == ("completed", 0.5, "Hallo")
    assert body["created_at"] == "2026-03-01T12:00:00Z"
    flush_all(write_buffer)
    assert get_ok(api_client, "/tasks/t-1") == body  # the same after the flush


@pytest.fixture
def tasks_in_two_sessions():
    store_session("s-1")
    store_session("s-2")
    store_tasks("s-1", 1, task_id="t-3", batch_id="b-1", status="pending", created_at=at(0))
    store_tasks("s-1", 1, task_id="t-1", batch_id="b-2", status="completed", created_at=at(1))
    store_tasks("s-2", 1, task_id="t-2", batch_id="b-1", status="completed", created_at=at(2))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["t-1", "t-2", "t-3"]),
        ({"session_id": "s-1"}, ["t-1", "t-3"]),
        ({"status": "completed"}, ["t-1", "t-2"]),
        ({"batch_id": "b-1"}, ["t-2", "t-3"]),
        ({"from_date": "2026-03-02"}, ["t-1", "t-2"]),
        ({"to_date": "2026-03-02T12:00:00Z"}, ["t-1", "t-3"]),
        ({"session_id": "nope"}, []),
        ({"page": 2, "page_size": 2}, ["t-3"]),
    ],
)
def test_task_filters(api_client, tasks_in_two_sessions, params, expected):
    assert ids(get_ok(api_client, "/tasks", **params), "task_id") == expected


@pytest.mark.parametrize(
    "params", [{"page_size": "1000"}, {"status": "cancelled"}, {"from_date": "1.3.2026"}]
)
def test_malformed_task_queries_are_400(api_client, params):
    assert get_error(api_client, "/tasks", 400, **params)["error_code"] == "INVALID_QUERY"


# --- query counts -------------------------------------------------------------------------------


def test_lists_take_two_queries_whatever_the_page_size(api_client, django_assert_num_queries):
    for n in range(30):
        store_session(f"s-{n:02}")
    store_tasks("s-00", 30)

    for path in ("/sessions", "/tasks", "/sessions/s-00/tasks"):
        extra = 1 if path.endswith("/tasks") and path.startswith("/sessions") else 0  # the 404 check
        with django_assert_num_queries(2 + extra):
            assert len(get_ok(api_client, path, page_size=25)["items"]) == 25


def test_details_take_one_query(api_client, write_buffer, django_assert_num_queries):
    store_session("s-1")
    store_tasks("s-1", 1, task_id="t-1")

    with django_assert_num_queries(1):
        get_ok(api_client, "/sessions/s-1")
    with django_assert_num_queries(1):
        get_ok(api_client, "/tasks/t-1")


def test_lists_select_only_the_returned_columns(api_client, django_assert_num_queries):
    store_session("s-1")
    with django_assert_num_queries(2) as captured:
        get_ok(api_client, "/sessions")
    page_sql = captured.captured_queries[-1]["sql"]
    assert "file_path" not in page_sql and "metadata" not in page_sql


# --- GET /stats ---------------------------------------------------------------------------------


def test_stats_of_a_known_data_set(api_client, settings):
    settings.STATS_CACHE_SECONDS = 0
    store_session("s-1", status="completed", created_at=at(0), updated_at=at(0, 1))  # 3600 s
    store_session("s-2", status="completed", created_at=at(0), updated_at=at(0, 3))  # 10800 s
    store_session("s-3", status="processing", created_at=at(0), updated_at=at(5))
    store_session("s-4", status="cancelled")
    store_tasks("s-1", 3, status="completed", duration_ms=1000)
    store_tasks("s-1", 1, status="completed", duration_ms=3000)
    store_tasks("s-2", 1, status="failed", duration_ms=99_000)  # not a completed task's time
    store_tasks("s-3", 2, status="pending")
    store_tasks("s-3", 1, status="processing")

    body = get_ok(api_client, "/stats")

    assert body["sessions"] == {
        "total": 4, "pending": 0, "processing": 1, "completed": 2, "failed": 0, "cancelled": 1,
    }  # fmt: skip
    assert body["tasks"] == {"total": 8, "pending": 2, "processing": 1, "completed": 4, "failed": 1}
    assert body["performance"] == {
        "average_session_time": 7200.0,
        "average_task_time": 1.5,
        "success_rate": 80.0,
    }
    assert body["storage"]["sessions_table_rows"] == 4
    assert body["storage"]["tasks_table_rows"] == 8
    assert body["storage"]["database_size_mb"] > 0


def test_stats_of_an_empty_database_are_zeros(api_client, settings):
    settings.STATS_CACHE_SECONDS = 0
    body = get_ok(api_client, "/stats")

    assert body["sessions"]["total"] == body["tasks"]["total"] == 0
    assert body["performance"] == {"average_session_time": 0.0, "average_task_time": 0.0, "success_rate": 0.0}


def test_stats_take_one_aggregation_per_table(api_client, settings, django_assert_num_queries):
    settings.STATS_CACHE_SECONDS = 0
    with django_assert_num_queries(3) as captured:  # sessions, tasks, the catalogue
        get_ok(api_client, "/stats")
    sqls = [q["sql"] for q in captured.captured_queries]
    assert sum("translation_sessions" in sql for sql in sqls) == 1
    assert sum("translation_tasks" in sql for sql in sqls) == 1


def _age_cached_stats(seconds: float) -> None:
    """Make the cached statistics ``seconds`` older, as if computed that long ago."""
    from django.core.cache import cache

    from translation.selectors import STATS_CACHE_KEY

    cached = cache.get(STATS_CACHE_KEY)
    cache.set(STATS_CACHE_KEY, {**cached, "computed_at": cached["computed_at"] - seconds}, 300)


def test_stats_are_cached_briefly(api_client, settings):
    from django.core.cache import cache

    from translation.selectors import STATS_CACHE_KEY

    settings.STATS_CACHE_SECONDS = 60
    cache.delete(STATS_CACHE_KEY)
    first = get_ok(api_client, "/stats")
    store_session("later")

    assert get_ok(api_client, "/stats") == first  # within the cache period
    _age_cached_stats(120)  # out of date now
    assert get_ok(api_client, "/stats")["sessions"]["total"] == first["sessions"]["total"] + 1


def test_out_of_date_stats_are_served_while_another_request_refreshes_them(api_client, settings):
    from django.core.cache import cache

    from translation.selectors import STATS_CACHE_KEY

    settings.STATS_CACHE_SECONDS = 60
    cache.delete_many([STATS_CACHE_KEY, STATS_CACHE_KEY + ":refreshing"])
    first = get_ok(api_client, "/stats")
    store_session("later")
    _age_cached_stats(120)
    cache.add(STATS_CACHE_KEY + ":refreshing", 1, 30)  # as if another request were computing them
    try:
        assert get_ok(api_client, "/stats") == first
    finally:
        cache.delete(STATS_CACHE_KEY + ":refreshing")
    assert get_ok(api_client, "/stats")["sessions"]["total"] == first["sessions"]["total"] + 1


def test_with_nothing_cached_requests_wait_for_the_one_computing_instead_of_computing_too(settings):
    """A cold cache under load: the first request computes, the others wait for its figures."""
    import threading

    from django.core.cache import cache

    from translation.selectors import STATS_CACHE_KEY, stats_get

    settings.STATS_CACHE_SECONDS = 60
    cache.delete(STATS_CACHE_KEY)
    cache.add(STATS_CACHE_KEY + ":refreshing", 1, 30)  # another request is computing them
    answers: list = []
    waiting = threading.Thread(target=lambda: answers.append(stats_get()))
    try:
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and answers == []  # waiting, not computing
        figures = {"sessions": {"total": -7}}  # what the other request computed (no real total)
        cache.set(STATS_CACHE_KEY, {"stats": figures, "computed_at": time.time(), "took": 0.2}, 60)
        waiting.join(5)
    finally:
        cache.delete(STATS_CACHE_KEY + ":refreshing")

    assert answers == [figures]


def test_figures_that_took_long_to_compute_stay_fresh_for_as_long(settings):
    from django.core.cache import cache

    from translation.selectors import STATS_CACHE_KEY, stats_get

    settings.STATS_CACHE_SECONDS = 5
    figures = {"sessions": {"total": -3}}
    cache.set(STATS_CACHE_KEY, {"stats": figures, "computed_at": time.time() - 10, "took": 20}, 60)
    try:
        assert stats_get() == figures  # 10 s old, past 5 s, but computing them took 20 s
        cache.set(STATS_CACHE_KEY, {"stats": figures, "computed_at": time.time() - 10, "took": 1}, 60)
        assert stats_get() != figures  # 10 s old, past both: computed anew
    finally:
        cache.delete(STATS_CACHE_KEY)


@pytest.mark.skipif(connection.vendor != "mysql", reason="the catalogue figure is MySQL/MariaDB's")
def test_database_size_comes_from_the_catalogue():
    from translation.selectors import database_size_mb

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = DATABASE()"
        )
        expected = round(int(cursor.fetchone()[0]) / 1024 / 1024, 2)
    assert database_size_mb() == expected
