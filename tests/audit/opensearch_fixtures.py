"""Fixtures of the OpenSearch audit search plugin's tests, over HTTP (never a mocked client).

``os_backend`` is parametrized: ``osmem`` (the osmem-server OpenSearch-API emulator started by
scripts/services.sh on 127.0.0.1:AUDIT_TEST_SEARCH_PORT, default 9200) and ``external`` (the same
cases against a real OpenSearch/Elasticsearch at AUDIT_SEARCH_URL, marked ``external``; skipped
when unset). Each backend gets an index prefix of its own (``audit-os-test-<random>``) and its
indices and template are deleted afterwards, so runs sharing a server never see each other.

    from tests.audit.opensearch_fixtures import os_backend, audit_event  # noqa: F401
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy.exceptions import NotFoundError

from storage_backends.search_opensearch import OpenSearchAuditSearch

SEARCH_PORT = int(os.environ.get("AUDIT_TEST_SEARCH_PORT", "9200"))
OSMEM_URL = f"http://127.0.0.1:{SEARCH_PORT}"
EXTERNAL_URL = os.environ.get("AUDIT_SEARCH_URL")

SEARCH_SERVERS = ["osmem", pytest.param("external", marks=pytest.mark.external)]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def server_url(kind: str) -> str:
    """The URL of the search server of this parameter (fails or skips when there is none)."""
    if kind == "osmem":
        if not _port_open(SEARCH_PORT):
            pytest.fail(f"osmem-server is not running on {OSMEM_URL}: run scripts/services.sh")
        return OSMEM_URL
    if not EXTERNAL_URL:
        pytest.skip("AUDIT_SEARCH_URL is not set: no external OpenSearch/Elasticsearch to test")
    return EXTERNAL_URL


def new_backend(url: str, *, prefix: str | None = None, refresh: str = "false") -> OpenSearchAuditSearch:
    return OpenSearchAuditSearch(
        url=url, index_prefix=prefix or f"audit-os-test-{uuid.uuid4().hex[:10]}", refresh=refresh
    )


def remove(backend: OpenSearchAuditSearch) -> None:
    """Delete the backend's indices and template from the shared server."""
    indices = backend.monthly_indices()
    if indices:
        backend.client.indices.delete(index=",".join(indices))
    with contextlib.suppress(NotFoundError):
        backend.client.indices.delete_index_template(name=backend.prefix)


@pytest.fixture(params=SEARCH_SERVERS)
def os_url(request: pytest.FixtureRequest) -> str:
    return server_url(request.param)


@pytest.fixture
def os_backend(os_url: str) -> Iterator[OpenSearchAuditSearch]:
    backend = new_backend(os_url)
    yield backend
    remove(backend)


def audit_event(event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A model-ready audit event (API.md §9), as the flusher hands it to the plugin."""
    event: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4().hex,
        "timestamp": dt.datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=dt.UTC),
        "actor_id": "translator-bot",
        "actor_type": "api_key",
        "action": "session.delete",
        "resource_type": "translation_session",
        "resource_id": "sess-1",
        "outcome": "success",
        "message": "Deleted the session",
        "ip": "10.0.0.7",
        "user_agent": "persistence-client/1.0",
        "request_id": "req-1",
        "details": {"reason": "cleanup", "rows": [1, 2, {"nested": None}]},
    }
    event.update(fields)
    return event


def store(backend: OpenSearchAuditSearch, events: list[dict[str, Any]], batch: int = 5000) -> None:
    """Write events and make them searchable now (a real cluster refreshes every second)."""
    for start in range(0, len(events), batch):
        backend.write("audit_logs", events[start : start + batch])
    backend.refresh_indices()
