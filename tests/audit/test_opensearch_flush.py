"""The audit endpoints end to end on the OpenSearch plugin: batch POST -> write buffer -> flush ->
bulk index -> searchable through GET logs, export and stats; a bulk item the cluster refuses for
good is dead-lettered and one it refuses for now stays buffered until it is stored."""

# The fixtures come from tests.audit.opensearch_fixtures (imported, so the test parameters shadow
# them: F811).
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings

from audit import services as audit_services
from storage_backends import registry
from storage_backends.buffer import get_write_buffer
from storage_backends.flush import flush_all
from storage_backends.models import DeadLetter
from storage_backends.search_opensearch import OpenSearchAuditSearch
from tests.audit.opensearch_fixtures import os_url, remove  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
BATCH_URL = "/api/v1/audit/logs/batch"
LOGS_URL = "/api/v1/audit/logs"
PLUGIN = "storage_backends.search_opensearch.OpenSearchAuditSearch"


@pytest.fixture
def search_plugin(settings, os_url, write_buffer) -> Iterator[OpenSearchAuditSearch]:
    """STORAGE_BACKENDS["audit_logs"] is the OpenSearch plugin, on an index prefix of its own;
    bulk writes wait for the refresh, so a flushed event is searchable at once."""
    settings.STORAGE_BACKENDS = {**django_settings.STORAGE_BACKENDS, "audit_logs": PLUGIN}
    settings.AUDIT_SEARCH_URL = os_url
    settings.AUDIT_SEARCH_INDEX_PREFIX = f"audit-os-test-{uuid.uuid4().hex[:10]}"
    settings.AUDIT_SEARCH_REFRESH = "wait_for"
    registry._instance.cache_clear()
    backend = registry.backend("audit_logs")
    assert isinstance(backend, OpenSearchAuditSearch)
    yield backend
    remove(backend)
    registry._instance.cache_clear()


def event(event_id: str, **fields) -> dict:
    body = {
        "event_id": event_id,
        "timestamp": "2026-03-14T09:26:53.589793Z",
        "actor_id": "ops-key",
        "actor_type": "api_key",
        "action": "session.delete",
        "resource_type": "translation_session",
        "resource_id": "s-1",
        "outcome": "success",
        "message": "删除翻译会话 s-1",
        "request_id": "req-1",
        "details": {"rows": 3},
    }
    body.update(fields)
    return body


def flush(client) -> dict:
    """What POST /api/v1/translation/flush runs, with the audit counts it does not answer."""
    return flush_all(get_write_buffer(), wait=10).as_dict()


def test_batch_post_flush_then_search_export_and_stats(api_client, search_plugin):
    # given
    logs = [
        event("e1"),
        event(
            "e2", action="file.download", message="Downloaded report.xlsx", timestamp="2026-03-15T00:00:00Z"
        ),
        event("e3", outcome="failure", message="删除失败", timestamp="2026-04-01T07:00:00+08:00"),
    ]
    assert api_client.post(BATCH_URL, {"logs": logs}, format="json").status_code == 202
    assert search_plugin.search(audit_query()).total == 0  # buffered, not indexed yet

    # when: the flush endpoint, as a client calls it
    response = api_client.post("/api/v1/translation/flush")

    # then
    assert response.status_code == 200
    assert sorted(search_plugin.monthly_indices()) == [
        f"{search_plugin.prefix}-2026.03"
    ]  # 2026-04-01T07:00+08:00 is March 31st UTC
    page = api_client.get(LOGS_URL, {"q": "翻译"}).json()
    assert [item["event_id"] for item in page["items"]] == ["e1"]
    assert page["items"][0]["details"] == {"rows": 3}
    assert page["items"][0]["timestamp"] == "2026-03-14T09:26:53.589793Z"
    page = api_client.get(LOGS_URL, {"action": "session.*", "order": "asc"}).json()
    assert [item["event_id"] for item in page["items"]] == ["e1", "e3"]
    export = api_client.get(LOGS_URL + "/export", {"order": "asc"})
    lines = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
    assert [line["event_id"] for line in lines] == ["e1", "e2", "e3"]
    stats = api_client.get("/api/v1/audit/stats").json()
    assert stats["total"] == 3
    assert stats["by_outcome"] == {"success": 2, "failure": 1}
    assert stats["per_day"] == [
        {"date": "2026-03-14", "count": 1},
        {"date": "2026-03-15", "count": 1},
        {"date": "2026-03-31", "count": 1},
    ]


def test_a_resent_event_keeps_its_first_version(api_client, search_plugin):
    api_client.post(BATCH_URL, {"logs": [event("e1", message="first")]}, format="json")
    flush(api_client)

    api_client.post(BATCH_URL, {"logs": [event("e1", message="second")]}, format="json")
    result = flush(api_client)

    assert result["dead_lettered"] == 0
    items = api_client.get(LOGS_URL).json()["items"]
    assert [(i["event_id"], i["message"]) for i in items] == [("e1", "first")]


def test_cursor_paging_through_the_endpoint(api_client, search_plugin):
    logs = [event(f"e{i:03d}", timestamp=f"2026-03-14T09:00:{i % 60:02d}Z") for i in range(130)]
    api_client.post(BATCH_URL, {"logs": logs}, format="json")
    flush(api_client)

    seen, params = [], {"page_size": 25, "order": "asc"}
    while True:
        page = api_client.get(LOGS_URL, params).json()
        seen += [item["event_id"] for item in page["items"]]
        if not page["next_cursor"]:
            break
        params = {"page_size": 25, "order": "asc", "cursor": page["next_cursor"]}

    assert seen == [e["event_id"] for e in sorted(logs, key=lambda e: (e["timestamp"], e["event_id"]))]


def test_a_refused_item_is_dead_lettered_and_the_rest_indexed(api_client, search_plugin, write_buffer):
    # given: a record the strict mapping refuses, buffered beside a valid one (the API's validation
    # never lets such a record in: it stands for a schema drift between the service and the index)
    api_client.post(BATCH_URL, {"logs": [event("good")]}, format="json")
    stray = {**event("stray"), "not_in_mapping": 1}
    write_buffer.add("audit_logs", [stray])

    # when (the embedded buffer may have flushed "good" already: the outcome is what counts)
    flush(api_client)

    # then
    letter = DeadLetter.objects.get(collection="audit_logs")
    assert letter.record_id == "stray"
    assert "strict" in letter.error
    assert search_plugin.existing_ids("audit_logs", ["good", "stray"]) == {"good"}
    assert write_buffer.counts()["audit_logs"] == 0


def test_an_item_of_a_closed_index_stays_buffered_until_it_is_stored(api_client, search_plugin, write_buffer):
    # given: March's index exists and is closed
    api_client.post(BATCH_URL, {"logs": [event("march-1")]}, format="json")
    flush(api_client)
    march = search_plugin.index_for(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    search_plugin.client.indices.close(index=march)
    logs = [event("march-2"), event("april-1", timestamp="2026-04-02T00:00:00Z")]
    api_client.post(BATCH_URL, {"logs": logs}, format="json")

    # when
    result = flush(api_client)

    # then: April is indexed, March waits in the buffer (not dead-lettered)
    assert result["dead_lettered"] == 0
    assert write_buffer.counts()["audit_logs"] == 1
    assert write_buffer.retrying_count() == 1
    assert search_plugin.existing_ids("audit_logs", ["march-2", "april-1"]) == {"april-1"}

    # and once the index is open again, the next flush stores it
    search_plugin.client.indices.open(index=march)
    flush(api_client)
    assert write_buffer.counts()["audit_logs"] == 0
    assert search_plugin.existing_ids("audit_logs", ["march-1", "march-2", "april-1"]) == {
        "march-1",
        "march-2",
        "april-1",
    }


def test_retention_drops_the_old_monthly_indices(api_client, search_plugin):
    logs = [event("old", timestamp="2024-11-30T12:00:00Z"), event("kept", timestamp="2025-12-01T00:00:00Z")]
    api_client.post(BATCH_URL, {"logs": logs}, format="json")
    flush(api_client)

    outcome = audit_services.audit_retention_apply(now=dt.datetime(2026, 11, 20, tzinfo=dt.UTC), days=365)

    assert outcome["dropped"] == ["2024-11"]
    assert search_plugin.monthly_indices() == [f"{search_plugin.prefix}-2025.12"]
    assert [i["event_id"] for i in api_client.get(LOGS_URL).json()["items"]] == ["kept"]


def audit_query():
    from storage_backends.search import AuditQuery

    return AuditQuery()
