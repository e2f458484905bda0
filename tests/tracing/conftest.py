"""Tracing tests: spans recorded in memory in this process, or received over OTLP from real ones."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.storage_backends.conftest import sqlite_buffer  # noqa: F401


@pytest.fixture
def spans():
    """Tracing on in this process, every span kept in memory (``spans.get_finished_spans()``).

    The provider stays local (``set_global=False``): OpenTelemetry's global one can be set only
    once per process, and the tests of tracing turned off must find none."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from core import tracing

    exporter = InMemorySpanExporter()
    assert tracing.setup(service_name="persistence-test", exporter=exporter, set_global=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


@pytest.fixture
def json_access_log():
    """The access log through the production handler's filter and JSON formatter, at INFO."""
    from core.logging_setup import JsonFormatter, RequestContextFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    access = logging.getLogger("persistence.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
