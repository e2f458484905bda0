"""Tracing across real processes: client -> gunicorn -> Redis broker -> Celery worker, over OTLP.

The service and the worker are started with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a collector
in this test, so this also covers setting tracing up per process (gunicorn ``post_fork``, Celery
``worker_process_init``) and the OTLP http/protobuf export.
"""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider

from persistence_client import PersistenceClient
from tests.factories import session_record, task_record
from tests.processes import CeleryWorker, GunicornServer, service_env
from tests.tracing.collector import OTLPCollector
from translation.models import Task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP's SpanKind numbers
FLUSH_TASK = "storage_backends.tasks.flush_buffer"


def _trace_complete(spans) -> bool:
    """Every span the test reads has arrived. A span is exported when it ends, and parents end after
    their children (the worker's ``run/...`` after its chunks, the web's request after its publish),
    each process exporting on its own schedule: waiting for a chunk alone left them to chance."""
    kinds_and_names = {(s.kind, s.name) for s in spans}
    return (
        any(
            s.service == "persistence-worker"
            and s.name == "buffer.flush_chunk"
            and s.attributes.get("persistence.collection") == "translation_tasks"
            for s in spans
        )
        and (PRODUCER, f"apply_async/{FLUSH_TASK}") in kinds_and_names
        and (CONSUMER, f"run/{FLUSH_TASK}") in kinds_and_names
        and any(s.kind == SERVER and s.name.endswith("tasks/batch") for s in spans)
    )


def test_a_request_trace_continues_into_the_celery_flush_it_triggers(write_buffer, tmp_path):
    from persistence_site.celery import app

    app.control.purge()  # no flush queued by an earlier test may run first
    caller = TracerProvider().get_tracer("translation-backend")
    with OTLPCollector() as collector:
        env = service_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_BSP_SCHEDULE_DELAY="100",  # export within 0.1 s instead of 5 s
            BUFFER_FLUSH_SIZE="50",  # the 100 tasks below cross it: the request enqueues a flush
            LOG_LEVEL="INFO",
        )
        with (
            CeleryWorker(env=env, log_path=tmp_path / "worker.log"),
            GunicornServer(env=env) as server,
        ):
            client = PersistenceClient(server.url, batch_size=1000, flush_interval=60)
            with caller.start_as_current_span("translate-file") as parent:
                client.persist_sessions([session_record("s-1")])
                client.persist_tasks([task_record("s-1", f"t-{i}") for i in range(100)])
                client.send_buffered()  # in this thread, so inside the caller's span

            spans = collector.wait_for(_trace_complete)
            assert Task.objects.count() == 100
            client.close()
        log_lines = [json.loads(line) for line in server.output.splitlines() if line.startswith("{")]

    trace_id = format(parent.get_span_context().trace_id, "032x")
    # the service continued the client's trace
    (tasks_request,) = [s for s in spans if s.kind == SERVER and s.name.endswith("tasks/batch")]
    assert tasks_request.service == "persistence-web"
    assert tasks_request.trace_id == trace_id
    assert tasks_request.parent_span_id == format(parent.get_span_context().span_id, "016x")
    # ... into the flush it enqueued: published by the web process, run by the worker
    (publish,) = [s for s in spans if s.kind == PRODUCER and s.name == f"apply_async/{FLUSH_TASK}"]
    (run,) = [s for s in spans if s.kind == CONSUMER and s.name == f"run/{FLUSH_TASK}"]
    assert (publish.service, run.service) == ("persistence-web", "persistence-worker")
    assert publish.trace_id == run.trace_id == trace_id
    assert run.parent_span_id == publish.span_id
    # ... down to the chunks and the database writes
    flush = next(s for s in spans if s.name == "buffer.flush" and s.parent_span_id == run.span_id)
    chunk = next(
        s
        for s in spans
        if s.name == "buffer.flush_chunk" and s.attributes["persistence.collection"] == "translation_tasks"
    )
    (upsert,) = [s for s in spans if s.name == "db.upsert" and s.parent_span_id == chunk.span_id]
    assert chunk.parent_span_id == flush.span_id and chunk.trace_id == trace_id
    assert chunk.attributes["persistence.record_count"] == 100
    assert upsert.attributes["persistence.record_count"] == 100
    # the service's JSON access log line names the same trace
    (access,) = [line for line in log_lines if line.get("path") == "/api/v1/translation/tasks/batch"]
    assert access["trace_id"] == trace_id
    assert access["span_id"] == tasks_request.span_id
