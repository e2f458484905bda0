"""Tracing off (no OTLP endpoint): nothing set up, nothing recorded, nothing imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings

from tests.factories import session_record
from tests.processes import ROOT, service_env

pytestmark = pytest.mark.django_db(transaction=True)

OTEL_MIDDLEWARE = "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"


@pytest.fixture
def no_endpoint(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def test_setup_without_an_endpoint_turns_nothing_on(no_endpoint):
    from opentelemetry import trace

    from core import tracing

    assert tracing.setup(service_name="persistence-web") is False
    assert not tracing.enabled()
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # no SDK provider
    assert OTEL_MIDDLEWARE not in settings.MIDDLEWARE
    with tracing.span("buffer.add", record_count=1) as current:
        assert current is None
    assert tracing.current_ids() == ("", "")


def test_an_endpoint_with_the_sdk_disabled_turns_nothing_on(monkeypatch):
    from core import tracing

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")

    assert tracing.setup(service_name="persistence-web") is False
    assert not tracing.enabled()


def test_requests_log_no_trace_ids_when_off(no_endpoint, api_client, write_buffer, json_access_log):
    response = api_client.post(
        "/api/v1/translation/sessions/batch", {"sessions": [session_record("s-1")]}, format="json"
    )

    assert response.status_code == 202
    (line,) = json_access_log()
    assert "trace_id" not in line and "span_id" not in line
    assert line["request_id"]


# A web process serving a request with tracing off: which OpenTelemetry modules did it import?
_PROBE = """
import json, os, sys
import django
django.setup()
from django.test import Client
from core import tracing
from storage_backends.buffer import get_write_buffer
assert tracing.setup(service_name="persistence-web") is False
answer = Client().post("/api/v1/translation/sessions/batch", {"sessions": [{"session_id": "x"}]},
                       content_type="application/json")
print(json.dumps({"status": answer.status_code,
                  "modules": sorted(m for m in sys.modules if m.startswith("opentelemetry"))}))
"""


def test_a_process_with_tracing_off_never_loads_the_tracing_sdk():
    env = service_env()
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)

    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["status"] == 422  # went through the middleware and validation
    # redis-py imports OpenTelemetry's metrics API itself when it is installed (its opt-in command
    # metrics); the tracing SDK, the instrumentations and the exporter stay out.
    ours = ("opentelemetry.sdk.trace", "opentelemetry.instrumentation", "opentelemetry.exporter")
    assert [m for m in answer["modules"] if m.startswith(ours)] == []
