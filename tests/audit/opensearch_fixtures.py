"""Fixtures of the OpenSearch audit search plugin's tests, over HTTP (never a mocked client).

``os_backend`` is parametrized: ``osmem`` (the osmem-server OpenSearch-API emulator started by
scripts/services.sh on 127.0.0.1:AUDIT_TEST_SEARCH_PORT, default 9200) and ``external`` (the same
cases against a real OpenSearch/Elasticsearch at AUDIT_SEARCH_URL, marked ``external``; skipped
when unset). Each backend gets an index prefix of its own (``audit-os-test-<random>``) and its
indices and template are deleted afterwards, so runs sharing a server never see each other.

    from tests.audit.opensearch_fixtures import os_backend, audit_event  # noqa: F401
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
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
    """A model-ready audit event (docs/api.md §9), as the flusher hands it to the plugin."""
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


# --- the plugin in the audit suite's backend harness (tests/audit/conftest.py ``STORES``) ---------

#: One prefix per test run for the suite's cases: the registry keeps one plugin instance per class.
SUITE_PREFIX = f"audit-os-suite-{uuid.uuid4().hex[:10]}"


class SuiteOpenSearchAuditSearch(OpenSearchAuditSearch):
    """The plugin on osmem with the run's prefix, whatever the settings (the registry builds it
    from its dotted path alone); bulk writes wait for the refresh, so a loaded event is searchable."""

    def __init__(self) -> None:
        super().__init__(url=server_url("osmem"), index_prefix=SUITE_PREFIX, refresh="wait_for")


class OpenSearchStore:
    """The OpenSearch plugin on osmem-server over HTTP (the harness of tests/audit/conftest.py)."""

    name = "opensearch"
    dotted_path = f"{__name__}.SuiteOpenSearchAuditSearch"

    def __init__(self) -> None:
        from storage_backends import registry

        self.backend = registry._instance(self.dotted_path)
        if not _suite_cleanup:
            _suite_cleanup.append(atexit.register(_drop_suite_template))

    def load(self, records: Iterable[dict[str, Any]]) -> None:
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) == 5000:
                self.backend.write("audit_logs", batch)
                batch = []
        if batch:
            self.backend.write("audit_logs", batch)
        self.backend.refresh_indices()

    def clear(self) -> None:
        """Delete the run's indices. The template stays for the run (an index a bulk request
        creates then still gets the strict mapping, whichever plugin instance sends it)."""
        from storage_backends import registry

        indices = self.backend.monthly_indices()
        if indices:
            self.backend.client.indices.delete(index=",".join(indices))
        for backend in {self.backend, registry._instance(self.dotted_path)}:
            backend._known_indices.clear()


_suite_cleanup: list[Any] = []


def _drop_suite_template() -> None:
    with contextlib.suppress(Exception):  # the server may be gone at exit
        OpenSearchAuditSearch(url=OSMEM_URL, index_prefix=SUITE_PREFIX).client.indices.delete_index_template(
            name=SUITE_PREFIX
        )
