"""Spans of the object store (S3 over HTTP to moto_server), the Redis user-session store and the
embedded (SQLite) write buffer."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.files.conftest import MOTO_ENDPOINT, S3_PORT, _port_open
from tests.tracing.finished import by_name, one

PART = 8 * 1024 * 1024  # storage_backends.object_store.PART_SIZE


@pytest.fixture
def s3_store():
    from storage_backends.object_store import S3ObjectStore

    if not _port_open(S3_PORT):
        pytest.fail(f"moto_server is not running on {MOTO_ENDPOINT}: run scripts/services.sh")
    store = S3ObjectStore(
        endpoint_url=MOTO_ENDPOINT,
        bucket="persistence-tracing-test",
        access_key_id="testing",
        secret_access_key="testing",
        addressing_style="path",
    )
    store.ensure_bucket()
    return store


def test_object_store_calls_are_spans_of_the_callers_trace_parts_sent_by_threads_too(spans, s3_store):
    from core import tracing

    key = f"tracing-test/{uuid.uuid4()}"
    with tracing.span("upload-request") as parent:
        writer = s3_store.writer(key, content_type="application/octet-stream")
        writer.write(b"x" * PART)  # a full part: sent by a thread of the writer
        writer.write(b"y" * 1024)  # the last part, sent at close
        writer.close()
        assert s3_store.stat(key).size == PART + 1024
        assert sum(len(chunk) for chunk in s3_store.read_chunks(key)) == PART + 1024
        s3_store.delete_objects([key])
        assert s3_store.stat(key) is None

    finished = spans.get_finished_spans()
    parts = by_name(finished, "object_store.upload_part")
    assert sorted(p.attributes["persistence.part"] for p in parts) == [1, 2]
    names = [
        "object_store.create_multipart_upload",
        "object_store.complete_multipart_upload",
        "object_store.get",
        "object_store.delete",
    ]
    calls = [one(finished, name) for name in names] + parts + by_name(finished, "object_store.stat")
    assert len(calls) == 8
    for call in calls:
        assert call.context.trace_id == parent.get_span_context().trace_id
        assert call.parent.span_id == parent.get_span_context().span_id
        assert call.attributes["persistence.backend"] == "s3"


@pytest.mark.django_db
def test_user_session_store_calls_are_spans(spans, settings):
    from storage_backends.redis_sessions import RedisUserSessions

    store = RedisUserSessions()
    session, token = store.create(user_id=f"u-{uuid.uuid4().hex}", ttl_seconds=60, max_per_user=5)
    assert store.by_token(token)["session_id"] == session["session_id"]
    assert store.end(session["session_id"])

    names = [s.name for s in spans.get_finished_spans()]
    assert names == ["user_sessions.create", "user_sessions.by_token", "user_sessions.end"]
    assert all(s.attributes["persistence.store"] == "redis" for s in spans.get_finished_spans())


def test_the_embedded_buffer_add_is_a_span(spans, sqlite_buffer):
    from tests.factories import session_record

    sqlite_buffer.add("translation_sessions", [session_record("s-1"), session_record("s-2")])

    (add,) = spans.get_finished_spans()
    assert add.name == "buffer.add"
    assert add.attributes["persistence.store"] == "sqlite"
    assert add.attributes["persistence.record_count"] == 2


def test_tracer_provider_of_the_process_is_not_touched_by_tests(spans):
    """The ``spans`` fixture keeps its provider local: the global one stays OpenTelemetry's proxy."""
    from opentelemetry import trace

    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
