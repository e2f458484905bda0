"""The Python client sends the caller's trace context (``traceparent``); the service continues it."""

from __future__ import annotations

import asyncio
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from persistence_client import AsyncPersistenceClient, PersistenceClient
from tests.tracing.finished import server_span

STATS = {"sessions": {}, "tasks": {}}


@pytest.fixture
def caller():
    """A tracer of the calling application (its own provider, not the process's global one)."""
    provider = TracerProvider()
    yield provider.get_tracer("translation-backend")
    provider.shutdown()


def _traceparent(span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


@pytest.fixture
def service(spans):
    """The service over HTTP from a thread of this process (its middleware built now, with tracing
    on): the request arrives with only the headers to tell it the caller's trace."""
    from django.core.handlers.wsgi import WSGIHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.django_db(transaction=True)
def test_the_service_continues_the_trace_the_client_sends(spans, service, caller):
    with PersistenceClient(service) as client, caller.start_as_current_span("translate-file") as parent:
        client.stats()

    request = server_span(spans.get_finished_spans(), "stats")
    assert request.context.trace_id == parent.get_span_context().trace_id
    assert request.parent.span_id == parent.get_span_context().span_id
    assert request.parent.is_remote


def _recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=STATS)

    return httpx.MockTransport(answer)


def test_sync_client_sends_traceparent_only_inside_a_span(caller):
    seen: list[httpx.Request] = []
    with PersistenceClient("http://service", transport=_recording_transport(seen)) as client:
        client.stats()
        with caller.start_as_current_span("translate-file") as parent:
            client.stats()

    assert "traceparent" not in seen[0].headers
    assert seen[1].headers["traceparent"] == _traceparent(parent)


def test_async_client_sends_traceparent_of_the_awaiting_task(caller):
    seen: list[httpx.Request] = []

    async def main() -> str:
        async with AsyncPersistenceClient("http://service", transport=_recording_transport(seen)) as client:
            with caller.start_as_current_span("translate-file") as parent:
                await client.stats()
            await client.stats()
        return _traceparent(parent)

    expected = asyncio.run(main())

    assert seen[0].headers["traceparent"] == expected
    assert "traceparent" not in seen[1].headers
