"""Collections are declared by their apps; the routing table is checked against the declarations
at start-up (storage_backends.catalog, storage_backends.registry.validate_routes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from storage_backends import catalog
from storage_backends.registry import validate_routes

ROOT = Path(__file__).resolve().parents[2]
SQL = "storage_backends.sql.SQLBackend"


def test_apps_declare_their_collections_and_the_flush_order_puts_parents_first() -> None:
    declared = catalog.declared()

    assert declared["translation_tasks"].parent == "translation_sessions"
    assert declared["translation_tasks"].model_class()._meta.label == "translation.Task"
    assert declared["audit_logs"].keep_first and not declared["translation_sessions"].keep_first
    assert not declared["user_sessions"].buffered
    assert catalog.buffered_collections() == ("translation_sessions", "translation_tasks", "audit_logs")


def test_an_undeclared_collection_is_refused_by_name() -> None:
    with pytest.raises(ImproperlyConfigured, match="No app declares the collection 'translation_taks'"):
        catalog.spec("translation_taks")


def test_a_second_different_declaration_is_refused() -> None:
    tasks = catalog.spec("translation_tasks")
    catalog.declare(tasks)  # the same again: a no-op

    with pytest.raises(ImproperlyConfigured, match="declared twice"):
        catalog.declare(catalog.Collection("translation_tasks", model="x.Y", id_field="id", item_type="t"))


def test_the_configured_routes_are_valid() -> None:
    validate_routes(django_settings.STORAGE_BACKENDS)  # raises if not


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"translation_taks": SQL}, "'translation_taks', which no app declares"),
        (
            {"translation_tasks": "no.such.Backend"},
            r"STORAGE_BACKENDS\['translation_tasks'\] names 'no.such.Backend'",
        ),
        ({"translation_tasks": None}, "no backend for the collection.*'translation_tasks'"),
    ],
)
def test_a_bad_routing_table_is_refused_with_a_clear_message(change: dict, message: str) -> None:
    routes = {**django_settings.STORAGE_BACKENDS, **change}
    routes = {name: path for name, path in routes.items() if path is not None}

    with pytest.raises(ImproperlyConfigured, match=message):
        validate_routes(routes)


def test_the_service_refuses_to_start_with_an_unknown_backend() -> None:
    env = {**os.environ, "STORAGE_BACKEND_TASKS": "no.such.Backend"}
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr
    assert "STORAGE_BACKENDS['translation_tasks'] names 'no.such.Backend'" in started.stderr


@pytest.fixture
def extra_declarations():
    """Declarations added by a test, removed after it (the catalog is process-wide)."""
    added: list[str] = []

    def declare(collection: catalog.Collection) -> None:
        catalog.declare(collection)
        added.append(collection.name)

    yield declare
    for name in added:
        catalog._DECLARED.pop(name, None)
    catalog._ORDER.clear()


def test_parents_and_children_come_from_the_declarations() -> None:
    assert catalog.parent("translation_tasks") == "translation_sessions"
    assert catalog.child("translation_sessions") == "translation_tasks"
    assert catalog.parent("translation_sessions") is None
    assert catalog.child("audit_logs") is None
    assert [catalog.plural(name) for name in catalog.buffered_collections()] == [
        "sessions",
        "tasks",
        "audit_logs",
    ]


@pytest.mark.parametrize(
    ("parent", "parent_field", "message"),
    [
        ("translation_sessions", "session_id", "parent of several buffered collections"),  # a 2nd child
        ("translation_tasks", "task_id", "one parent-child level"),  # a grandchild
    ],
)
def test_parents_the_buffers_cannot_keep_are_refused_at_start_up(
    extra_declarations, parent: str, parent_field: str, message: str
) -> None:
    extra_declarations(
        catalog.Collection(
            "translation_notes", model="translation.Task", id_field="task_id", item_type="note",
            parent=parent, parent_field=parent_field,
        )
    )  # fmt: skip

    with pytest.raises(ImproperlyConfigured, match=message):
        validate_routes({**django_settings.STORAGE_BACKENDS, "translation_notes": SQL})


def test_the_declared_schema_drives_the_answer_fields_and_their_openapi_components() -> None:
    """The record shape is written once: the validation schema of the declaration. The answers'
    fields and the OpenAPI components follow it, with what the service adds."""
    from translation import openapi, representation

    sessions, tasks = catalog.spec("translation_sessions"), catalog.spec("translation_tasks")
    assert sessions.schema is not None and tasks.schema is not None
    timestamps = ("created_at", "updated_at")

    assert (*tasks.schema.model_fields, *timestamps) == representation.TASK_FIELDS
    assert (*sessions.schema.model_fields, *timestamps) == representation.SESSION_FIELDS
    assert tuple(openapi.TaskOut().fields) == representation.TASK_FIELDS
    detail = set(openapi.SessionDetailOut().fields)
    assert detail == {*representation.SESSION_FIELDS, "pending_tasks", "progress", "estimated_completion"}
    status = openapi.TaskOut().fields["status"]
    assert list(status.choices) == ["pending", "processing", "completed", "failed"]
    assert openapi.TaskOut().fields["target_text"].allow_null
    assert not openapi.TaskOut().fields["task_id"].allow_null
