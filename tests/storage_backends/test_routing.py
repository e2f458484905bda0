"""Routing alone moves a collection: ``translation_tasks`` served by the SQL plugin on a second
database (the ``tasks`` alias of the test settings) takes every write, read and delete of tasks
there, with no change outside settings, and every endpoint answers as it does on one database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from storage_backends import registry
from storage_backends.registry import validate_routes
from storage_backends.sql import SQLBackend
from tests.factories import session_record, task_record
from translation.models import Session, Task

pytestmark = [
    pytest.mark.skipif("tasks" not in django_settings.DATABASES, reason="a second MySQL/MariaDB database"),
    pytest.mark.django_db(transaction=True, databases=["default", "tasks"]),
]
SQL = "storage_backends.sql.SQLBackend"
ON_TASKS_DB = {"BACKEND": SQL, "OPTIONS": {"database": "tasks"}}
API = "/api/v1/translation"
# Values that depend on when the run happened (acceptance times, durations, sizes), not on routing.
TIME_DEPENDENT = {
    "created_at",
    "updated_at",
    "restored_at",
    "checked_at",
    "last_flush",
    "accepted_at",
    "timestamp",
    "estimated_completion",
    "database_size_mb",
    "average_session_time",
    "duration_ms",
    "duration_seconds",
    "flushed_at",
}


def normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "*" if key in TIME_DEPENDENT else normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value


def stored_tasks(alias: str) -> set[str]:
    return set(Task.objects.using(alias).values_list("task_id", flat=True))


def stored_sessions(alias: str) -> set[str]:
    return set(Session.objects.using(alias).values_list("session_id", flat=True))


SESSIONS = [session_record("s-1", status="processing", total_tasks=5), session_record("s-2")]
TASKS = [
    task_record("s-1", "t-1", status="pending", row_index=1),
    task_record("s-1", "t-2", status="processing", row_index=2),
    task_record("s-1", "t-3", status="completed", row_index=3, target_text="Hallo", confidence=0.95),
    task_record("s-1", "t-4", status="failed", row_index=4, error_message="timeout"),
    task_record("s-1", "t-5", status="pending", row_index=5, sheet_name="Menu"),
    task_record("s-2", "t-6", status="pending", row_index=1),
    task_record("s-2", "t-7", status="completed", row_index=2, duration_ms=1200),
]
T1_AGAIN = {**TASKS[0], "status": "processing"}


def scenario(client, *, tasks_db: str, other_db: str) -> dict[str, Any]:
    """Writes, flush, details, lists, recovery and a session delete through the API; asserts at
    each step that tasks are on ``tasks_db`` and never on ``other_db``. Returns every answer."""
    answers: dict[str, Any] = {}

    def call(name: str, method: str, url: str, body: Any = None, status: int = 200) -> Any:
        response = getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
        assert response.status_code == status, (name, response.status_code, response.content[:500])
        content = b"".join(response.streaming_content) if response.streaming else response.content
        answers[name] = orjson.loads(content)
        return answers[name]

    call("write sessions", "post", f"{API}/sessions/batch", {"sessions": SESSIONS}, 202)
    call("write tasks", "post", f"{API}/tasks/batch", {"tasks": TASKS}, 202)
    flushed = call("flush", "post", f"{API}/flush")
    assert stored_tasks(tasks_db) == {f"t-{n}" for n in range(1, 8)}, flushed
    assert stored_tasks(other_db) == set()
    assert stored_sessions("default") == {"s-1", "s-2"}

    # A newer write of t-1, still buffered: its detail keeps the stored created_at (read from tasks_db).
    stored_created = Task.objects.using(tasks_db).get(pk="t-1").created_at
    call("write t-1 again", "post", f"{API}/tasks/batch", {"tasks": [T1_AGAIN]}, 202)
    detail = call("task t-1 (buffered)", "get", f"{API}/tasks/t-1")
    assert detail["status"] == "processing"
    assert dt.datetime.fromisoformat(detail["created_at"]) == stored_created

    assert call("task t-3", "get", f"{API}/tasks/t-3")["target_text"] == "Hallo"
    call("task unknown", "get", f"{API}/tasks/t-nope", status=404)
    listed = call("tasks of s-1", "get", f"{API}/sessions/s-1/tasks")
    assert [task["task_id"] for task in listed["items"]] == ["t-1", "t-2", "t-3", "t-4", "t-5"]
    pending = call("pending tasks of s-1", "get", f"{API}/sessions/s-1/tasks?status=pending&sheet_name=Menu")
    assert [task["task_id"] for task in pending["items"]] == ["t-5"]
    page = call("tasks page 2", "get", f"{API}/tasks?page_size=3&page=2")
    assert (page["total"], [task["task_id"] for task in page["items"]]) == (7, ["t-4", "t-5", "t-6"])
    by_session = call("tasks of s-2", "get", f"{API}/tasks?session_id=s-2&status=completed")
    assert [task["task_id"] for task in by_session["items"]] == ["t-7"]
    call("session s-1", "get", f"{API}/sessions/s-1")
    call("sessions", "get", f"{API}/sessions")
    stats = call("stats", "get", f"{API}/stats")
    assert stats["tasks"]["total"] == 7 and stats["tasks"]["completed"] == 2

    restored = call("restore s-1", "post", f"{API}/recovery/restore/s-1")
    assert sorted(task["task_id"] for task in restored["tasks"]) == ["t-1", "t-2", "t-5"]
    assert restored["tasks_count"] == 3
    incomplete = call("incomplete sessions", "get", f"{API}/recovery/incomplete-sessions")
    assert {session["session_id"] for session in incomplete["sessions"]} >= {"s-1"}
    call("recovery status", "get", f"{API}/recovery/status")

    deleted = call("delete s-1", "delete", f"{API}/sessions/s-1")
    assert deleted["deleted_tasks"] == 5
    assert stored_tasks(tasks_db) == {"t-6", "t-7"}
    assert stored_tasks(other_db) == set()
    assert stored_sessions("default") == {"s-2"}
    call("task t-2 after delete", "get", f"{API}/tasks/t-2", status=404)
    call("tasks of s-1 after delete", "get", f"{API}/sessions/s-1/tasks", status=404)
    assert call("tasks after delete", "get", f"{API}/tasks")["total"] == 2
    return answers


def empty_everything(buffer) -> None:
    buffer.clear()
    for alias in ("default", "tasks"):
        Task.objects.using(alias).all().delete()
        Session.objects.using(alias).all().delete()


def test_tasks_routed_to_a_second_database_are_written_read_and_deleted_there_alone(
    api_client, write_buffer, settings
):
    on_one_database = scenario(api_client, tasks_db="default", other_db="tasks")
    empty_everything(write_buffer)

    settings.STORAGE_BACKENDS = {**settings.STORAGE_BACKENDS, "translation_tasks": ON_TASKS_DB}
    assert registry.backend("translation_tasks").database == "tasks"
    on_two_databases = scenario(api_client, tasks_db="tasks", other_db="default")

    assert normalised(on_two_databases) == normalised(on_one_database)


def test_the_second_database_has_no_foreign_key_to_its_empty_sessions_table():
    """The cascade constraint is added only where sessions and tasks live together (migration 0002)."""
    names = {}
    for alias in ("default", "tasks"):
        connection = connections[alias]
        with connection.cursor() as cursor:
            names[alias] = set(connection.introspection.get_constraints(cursor, "translation_tasks"))
    assert "translation_tasks_session_fk" in names["default"]
    assert "translation_tasks_session_fk" not in names["tasks"]


def test_config_shows_the_route_with_its_options(client, settings):
    settings.STORAGE_BACKENDS = {"translation_sessions": SQL, "translation_tasks": ON_TASKS_DB}

    storage = client.get("/api/v1/system/config").json()["storage"]

    assert storage["backends"] == [
        {"name": "sql", "path": SQL, "collections": ["translation_sessions"]},
        {"name": "sql", "path": SQL, "collections": ["translation_tasks"], "options": {"database": "tasks"}},
    ]
    assert storage["collections"] == {"translation_sessions": "sql", "translation_tasks": "sql"}


def test_one_instance_per_class_and_options():
    assert registry.backend("translation_sessions") is registry.backend("translation_tasks")
    on_tasks = registry._instance(*registry.parse_route("translation_tasks", ON_TASKS_DB))
    assert isinstance(on_tasks, SQLBackend) and on_tasks.database == "tasks"
    assert on_tasks is not registry.backend("translation_tasks")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"BACKEND": SQL, "OPTIONS": {"database": "nope"}},
            r"STORAGE_BACKENDS\['translation_tasks'\].*names the database 'nope', which DATABASES does not define",
        ),
        ({"BACKEND": SQL, "OPTIONS": {"colour": "red"}}, r"OPTIONS \{'colour': 'red'\}, which it refuses"),
        (
            {"BACKEND": SQL, "OPTION": {}},
            r"STORAGE_BACKENDS\['translation_tasks'\] must be a dotted class path",
        ),
        ({"OPTIONS": {"database": "tasks"}}, r"must be a dotted class path or"),
    ],
)
def test_a_bad_route_with_options_is_refused_at_start_up(entry, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        validate_routes({**django_settings.STORAGE_BACKENDS, "translation_tasks": entry})


def test_retention_cleanup_deletes_the_tasks_on_the_second_database(write_buffer, settings):
    from translation.services.lifecycle import sessions_cleanup

    settings.STORAGE_BACKENDS = {**settings.STORAGE_BACKENDS, "translation_tasks": ON_TASKS_DB}
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    registry.backend("translation_sessions").write(
        "translation_sessions",
        [
            {**session_record(sid, status=status), "created_at": long_ago, "updated_at": long_ago}
            for sid, status in (("old", "completed"), ("open", "processing"))
        ],
    )
    registry.backend("translation_tasks").write(
        "translation_tasks",
        [
            {**task_record(sid, f"{sid}-{n}"), "created_at": long_ago, "updated_at": long_ago}
            for sid in ("old", "open")
            for n in range(3)
        ],
    )

    result = sessions_cleanup(completed_days=90, failed_days=30)

    assert (result.deleted_sessions, result.deleted_tasks) == (1, 3)
    assert stored_sessions("default") == {"open"}
    assert stored_tasks("tasks") == {"open-0", "open-1", "open-2"}


def test_health_asks_every_database_a_collection_is_routed_to(client, settings):
    """/health's ``database`` covers the tasks' own database: with it unreachable (a port nobody
    listens on) the service is unhealthy, as it is when the default database is."""
    from system.health import databases

    assert databases() == ["default"]
    settings.STORAGE_BACKENDS = {**settings.STORAGE_BACKENDS, "translation_tasks": ON_TASKS_DB}
    assert databases() == ["default", "tasks"]
    assert client.get("/health").json()["database"] == "healthy"

    tasks_db = connections["tasks"]
    port = tasks_db.settings_dict["PORT"]
    tasks_db.close()
    tasks_db.settings_dict["PORT"] = 1
    try:
        answer = client.get("/health")
    finally:
        tasks_db.close()
        tasks_db.settings_dict["PORT"] = port

    assert (answer.status_code, answer.json()["database"]) == (503, "unhealthy")
    assert client.get("/health").status_code == 200


def test_the_admin_reads_and_counts_tasks_on_the_database_they_are_routed_to(
    admin_client, write_buffer, settings
):
    from storage_backends.flush import flush_all

    settings.STORAGE_BACKENDS = {**settings.STORAGE_BACKENDS, "translation_tasks": ON_TASKS_DB}
    write_buffer.add("translation_sessions", SESSIONS)
    write_buffer.add("translation_tasks", TASKS)
    flush_all(write_buffer)
    assert (stored_tasks("default"), len(stored_tasks("tasks"))) == (set(), 7)

    listed = admin_client.get("/admin/translation/task/?session__exact=s-1")
    detail = admin_client.get("/admin/translation/task/t-3/change/")
    confirm = admin_client.get("/admin/translation/session/s-1/delete/")

    assert listed.status_code == 200
    assert all(f">t-{n}<" in listed.content.decode() for n in range(1, 6)), listed.content[:2000]
    assert detail.status_code == 200 and "Hallo" in detail.content.decode()
    assert "5 tasks of this session" in confirm.content.decode()
