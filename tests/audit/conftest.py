"""Fixtures of the audit suite.

Backend-dependent tests take ``audit_store``: one parameter per search backend, each a small
harness (``backend``, ``load(records)``, ``clear()``) that also points ``STORAGE_BACKENDS
["audit_logs"]`` at it, so the endpoints use it too. Another plugin joins by adding a harness to
``STORES`` (and its name to ``BACKENDS``): every case then runs on it as well.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from storage_backends.search import AUDIT_LOGS
from tests.api_keys.fixtures import auth_enabled, make_api_key  # noqa: F401
from tests.audit.opensearch_fixtures import OpenSearchStore

T0 = dt.datetime(2026, 3, 10, 12, 0, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def event(**overrides: Any) -> dict[str, Any]:
    """A model-ready audit event (what the flusher hands a backend)."""
    record = {
        "event_id": f"ev-{next(_ids):07d}",
        "timestamp": T0,
        "actor_id": "backend-v2",
        "actor_type": "service",
        "action": "session.create",
        "resource_type": "session",
        "resource_id": "s-1",
        "outcome": "success",
        "message": "",
        "ip": None,
        "user_agent": None,
        "request_id": None,
        "details": {},
        "created_at": T0,
        "updated_at": T0,
    }
    return record | overrides


def event_body(**overrides: Any) -> dict[str, Any]:
    """An event as a client sends it to POST /api/v1/audit/logs/batch."""
    body = {
        "event_id": f"body-{next(_ids):07d}",
        "timestamp": "2026-03-10T12:00:00Z",
        "actor_id": "backend-v2",
        "actor_type": "service",
        "action": "session.create",
        "outcome": "success",
    }
    return body | overrides


class SQLStore:
    """The SQL backend on the test database (MariaDB, or SQLite in the embedded run)."""

    name = "sql"
    dotted_path = "storage_backends.search_sql.SQLAuditSearch"

    def __init__(self) -> None:
        from storage_backends.search_sql import SQLAuditSearch

        self.backend = SQLAuditSearch()

    def load(self, records: Iterable[dict[str, Any]]) -> None:
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) == 2000:
                self.backend.write(AUDIT_LOGS, batch)
                batch = []
        if batch:
            self.backend.write(AUDIT_LOGS, batch)

    def clear(self) -> None:
        from audit.models import AuditEvent

        AuditEvent.objects.all().delete()


STORES: dict[str, Callable[[], Any]] = {"sql": SQLStore, "opensearch": OpenSearchStore}
BACKENDS = list(STORES)


@pytest.fixture(params=BACKENDS)
def audit_store(request, settings, transactional_db):
    """A clean store of each backend, committed (full-text indexes see only committed rows)."""
    store = STORES[request.param]()
    settings.STORAGE_BACKENDS = {**settings.STORAGE_BACKENDS, AUDIT_LOGS: store.dotted_path}
    store.clear()
    yield store
    store.clear()


@pytest.fixture(autouse=True)
def _buffer_ready(settings):
    """The embedded buffer (SQLite run) flushes by itself in a thread, at its start and on the size
    trigger; these tests flush explicitly and check what each flush did, so the thread stays off.
    (The Redis buffer has no thread: Celery flushes it, and no worker runs here.)"""
    from audit import services
    from storage_backends.buffer import get_write_buffer

    services._paused_until = 0.0  # an earlier test that made the buffer store unreachable
    buffer = get_write_buffer()
    if hasattr(buffer, "_background"):
        buffer._background = False
