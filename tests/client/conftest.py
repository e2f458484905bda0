"""A live service for the client tests: gunicorn (2 workers) on the test MariaDB and Redis, keys on."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from tests.processes import GunicornServer, free_port, service_env

_ids = itertools.count(1)


@dataclass(frozen=True)
class Live:
    url: str
    key: str  # scopes read,write: what the translation backend gets
    read_key: str  # scope read only


@pytest.fixture(scope="module")
def live(django_db_setup, django_db_blocker):
    from api_keys.services import api_key_create

    with django_db_blocker.unblock():
        _, key = api_key_create(name="client-tests", scopes="read,write")
        _, read_key = api_key_create(name="client-tests-reader", scopes="read")
    env = service_env(API_AUTH_ENABLED="true", THROTTLE_RATE_KEY="off", THROTTLE_RATE_IP="off")
    try:
        with GunicornServer(env=env, workers=2) as server:
            yield Live(server.url, key, read_key)
    finally:
        # The live service committed its rows (keys, sessions, tasks) outside any test transaction:
        # empty the tables, as a transactional test does, so no later test sees them.
        from django.core.management import call_command

        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def uid() -> str:
    """A prefix no other test uses (the live service's data outlives each test)."""
    return f"cl{next(_ids)}-{free_port()}"


def session(session_id: str, **overrides) -> dict:
    record = {
        "session_id": session_id,
        "filename": "a.xlsx",
        "file_path": "/in/a.xlsx",
        "status": "processing",
        "llm_provider": "openai",
        "total_tasks": 0,
    }
    return record | overrides


def task(session_id: str, task_id: str, row: int = 0, **overrides) -> dict:
    record = {
        "task_id": task_id,
        "session_id": session_id,
        "batch_id": "b-1",
        "sheet_name": "Dialogue",
        "row_index": row,
        "column_name": "B",
        "source_text": f"text {row}",
        "status": "pending",
    }
    return record | overrides
