"""GET /api/v1/system/metrics in one process: every named metric from start-up, the buffer size
read at scrape time, the scrape formats and who may read it."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import session_record, task_record

pytestmark = pytest.mark.django_db
URL = "/api/v1/system/metrics"
NAMED = {
    # docs/api.md §6, by the sample names a scrape shows
    "persistence_buffer_size": {"type"},
    "persistence_flush_total": {"type"},
    "persistence_flush_duration_seconds_count": {"type"},
    "persistence_flushed_items_total": {"type"},
    "persistence_flush_errors_total": {"type"},
    "persistence_storage_operations_total": {"backend", "operation"},
    "persistence_storage_errors_total": {"backend", "operation"},
    "persistence_data_loss_total": set(),
}


def _samples(text: str) -> dict[str, list]:
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _value(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.mark.parametrize(("name", "labels"), sorted(NAMED.items()))
def test_every_named_metric_is_exposed(client, write_buffer, name, labels):
    samples = _samples(client.get(URL).content.decode())

    assert name in samples
    assert all(set(s.labels) >= labels for s in samples[name])


def test_buffer_size_is_exposed_per_type_at_zero_when_empty(client, write_buffer):
    samples = _samples(client.get(URL).content.decode())

    assert {s.labels["type"]: s.value for s in samples["persistence_buffer_size"]} == {
        "session": 0,
        "task": 0,
        "audit_log": 0,
    }


def test_data_loss_is_zero(client, write_buffer):
    samples = _samples(client.get(URL).content.decode())

    assert _value(samples, "persistence_data_loss_total") == 0


def test_storage_series_of_the_configured_backend_exist_before_any_operation(client, write_buffer):
    samples = _samples(client.get(URL).content.decode())

    operations = {
        s.labels["operation"]
        for s in samples["persistence_storage_errors_total"]
        if s.labels["backend"] == "sql"
    }
    assert operations >= {"write", "read", "query", "delete"}


def test_buffer_size_is_read_from_the_buffer_at_scrape_time(client, write_buffer):
    write_buffer.add("translation_sessions", [session_record("m-1")])
    write_buffer.add("translation_tasks", [task_record("m-1", f"mt-{i}") for i in range(3)])

    samples = _samples(client.get(URL).content.decode())

    assert _value(samples, "persistence_buffer_size", type="session") == 1
    assert _value(samples, "persistence_buffer_size", type="task") == 3


def test_request_counts_per_endpoint_are_exposed(client, write_buffer):
    client.get("/api/v1/system/config")

    samples = _samples(client.get(URL).content.decode())

    assert (
        _value(samples, "django_http_requests_total_by_view_transport_method_total", view="system:config")
        >= 1
    )
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in samples


def test_scrape_is_prometheus_text_by_default(client, write_buffer):
    response = client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")


def test_scrape_is_openmetrics_when_asked(client, write_buffer):
    accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

    response = client.get(URL, headers={"Accept": accept})

    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_accept_text_plain_alone_is_not_406(client, write_buffer):
    assert client.get(URL, headers={"Accept": "text/plain"}).status_code == 200


def test_metrics_need_a_key_by_default(client, auth_enabled, write_buffer):
    response = client.get(URL, headers={"Accept": "text/plain"})

    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"


def test_metrics_public_opens_them_without_a_key(client, auth_enabled, write_buffer):
    auth_enabled.METRICS_PUBLIC = True

    assert client.get(URL).status_code == 200


def test_buffer_store_down_does_not_fail_the_scrape(client, settings, write_buffer):
    from storage_backends.buffer import _buffer_for

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    _buffer_for.cache_clear()
    try:
        response = client.get(URL)
    finally:
        _buffer_for.cache_clear()

    assert response.status_code == 200
    assert "persistence_buffer_size" in response.content.decode()
