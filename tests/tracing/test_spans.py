"""Spans of one process, recorded in memory: a request and what it does, the flush, the log lines."""

from __future__ import annotations

import logging

import pytest

from tests.factories import session_record, task_record
from tests.tracing.finished import by_name, one, server_span

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1/translation"


def _post(client, kind: str, records: list[dict]):
    return client.post(f"{API}/{kind}/batch", {kind: records}, format="json")


def test_a_batch_request_has_validation_and_buffer_add_spans_in_its_trace(spans, api_client, write_buffer):
    assert _post(api_client, "sessions", [session_record("s-1")]).status_code == 202
    spans.clear()

    response = _post(api_client, "tasks", [task_record("s-1", f"t-{i}") for i in range(100)])

    assert response.status_code == 202
    finished = spans.get_finished_spans()
    request = server_span(finished, "tasks/batch")
    validate, add = one(finished, "validate"), one(finished, "buffer.add")
    assert {s.context.trace_id for s in (request, validate, add)} == {request.context.trace_id}
    assert validate.parent.span_id == request.context.span_id
    assert add.parent.span_id == request.context.span_id
    assert validate.attributes["persistence.schema"] == "tasks"
    assert validate.attributes["persistence.record_count"] == 100
    assert add.attributes["persistence.collection"] == "translation_tasks"
    assert add.attributes["persistence.record_count"] == 100
    assert add.attributes["persistence.store"] == "redis"
    assert validate.end_time <= add.start_time  # validated before it is buffered
    assert (
        request.attributes["http.status_code"] == 202
    )  # semantic conventions of the instrumentation's default


def test_a_refused_batch_has_an_error_validation_span_and_no_buffer_add(spans, api_client, write_buffer):
    response = _post(api_client, "sessions", [session_record("s-1", status="nonsense")])

    assert response.status_code == 422
    finished = spans.get_finished_spans()
    validate = one(finished, "validate")
    assert not validate.status.is_ok
    assert not by_name(finished, "buffer.add")


def test_the_flush_has_a_span_per_chunk_with_its_record_count_and_the_database_write(
    spans, api_client, write_buffer
):
    _post(api_client, "sessions", [session_record("s-1")])
    _post(api_client, "tasks", [task_record("s-1", f"t-{i}") for i in range(120)])
    spans.clear()

    response = api_client.post(f"{API}/flush")

    assert response.status_code == 200
    finished = spans.get_finished_spans()
    request = server_span(finished, "flush")
    flush = one(finished, "buffer.flush")
    chunks = by_name(finished, "buffer.flush_chunk")
    upserts = by_name(finished, "db.upsert")
    assert flush.parent.span_id == request.context.span_id
    assert flush.attributes["persistence.tasks_written"] == 120
    assert flush.attributes["persistence.sessions_written"] == 1
    counts = {
        c.attributes["persistence.collection"]: c.attributes["persistence.record_count"] for c in chunks
    }
    assert counts == {"translation_sessions": 1, "translation_tasks": 120}
    assert all(c.parent.span_id == flush.context.span_id for c in chunks)
    by_chunk = {u.parent.span_id: u for u in upserts}
    for chunk in chunks:
        upsert = by_chunk[chunk.context.span_id]  # each chunk's write is a child of that chunk
        assert upsert.attributes["persistence.record_count"] == chunk.attributes["persistence.record_count"]
        assert upsert.attributes["db.operation.name"] == "upsert"
        assert upsert.attributes["db.system.name"] == "mysql"
    assert {s.context.trace_id for s in (request, flush, *chunks, *upserts)} == {request.context.trace_id}


def test_log_lines_carry_the_trace_id_of_the_request_span(spans, api_client, write_buffer, json_access_log):
    _post(api_client, "sessions", [session_record("s-1")])

    (line,) = json_access_log()
    request = server_span(spans.get_finished_spans(), "sessions/batch")
    assert line["trace_id"] == format(request.context.trace_id, "032x")
    assert line["span_id"] == format(request.context.span_id, "016x")
    assert line["request_id"]  # still there beside them
    assert request.attributes["persistence.request_id"] == line["request_id"]


def test_probes_and_scrapes_are_not_traced(spans, client):
    client.get("/health")
    client.get("/api/v1/system/metrics")
    client.get("/api/v1/translation/stats")

    assert [s.name for s in spans.get_finished_spans()] == ["GET api/v1/translation/stats"]


def test_a_log_line_outside_any_span_has_empty_trace_ids(spans):
    from core.logging_setup import RequestContextFilter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    RequestContextFilter().filter(record)

    assert (record.trace_id, record.span_id) == ("", "")


def test_span_helper_records_attributes_and_errors(spans):
    from core import tracing

    with pytest.raises(RuntimeError), tracing.span("search.query", backend="opensearch", hits=None):
        raise RuntimeError("index gone")

    (search,) = spans.get_finished_spans()
    assert search.name == "search.query"
    assert dict(search.attributes) == {"persistence.backend": "opensearch"}  # None values left out
    assert not search.status.is_ok
    assert search.events[0].name == "exception"


def test_traced_decorator_spans_each_call(spans):
    from core import tracing

    @tracing.traced("search.stats", attributes={"db.system.name": "opensearch"})
    def stats(n: int) -> int:
        tracing.set_attributes(buckets=n)
        return n

    assert stats(3) == 3
    (span,) = spans.get_finished_spans()
    assert span.attributes == {"db.system.name": "opensearch", "persistence.buckets": 3}
