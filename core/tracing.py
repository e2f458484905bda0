"""Distributed tracing (OpenTelemetry): on when an OTLP endpoint is configured, off and free otherwise.

    with tracing.span("search.query", backend="opensearch", index="audit-*"):
        hits = client.search(...)

    @tracing.traced("object_store.stat", backend="s3")
    def stat(self, key): ...

Turned on per process by ``setup()``, called where a process is ready to serve and will not fork
again: gunicorn's ``post_fork`` (persistence_site/gunicorn_conf.py) and Celery's
``worker_process_init`` (persistence_site/celery.py). Never at import time: the SDK's export thread
would not survive a fork. ``setup()`` does nothing unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and ``OTEL_SDK_DISABLED`` is not true; spans then go
over OTLP http/protobuf through a batching processor, and the standard ``OTEL_*`` variables apply
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``_ARG``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``).

Off, nothing of OpenTelemetry is even imported: ``span()`` hands back one shared no-op context
manager and ``traced`` calls straight through, so the cost is a function call and a global read.

On, it instruments Django (a span per request, continuing an incoming ``traceparent``) and Celery
(the publish carries the trace in the message headers, the task's run continues it), and the
service's own spans come from ``span``/``traced``. Keyword attributes are recorded as
``persistence.<name>``; ``attributes={...}`` takes names as they are (semantic conventions such as
``db.system.name``). Log lines get the current ``trace_id`` and ``span_id``
(core.logging_setup).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Request paths not traced unless OTEL_PYTHON_DJANGO_EXCLUDED_URLS says otherwise: probes and
#: scrapes every few seconds would outnumber the traces worth reading.
DEFAULT_EXCLUDED_URLS = "/health$,/api/v1/system/metrics"

_tracer: Tracer | None = None
_trace_api: Any = None  # the opentelemetry.trace module, once on
_provider: TracerProvider | None = None
_instrumented: list[Any] = []
_lock = threading.Lock()


class _NoSpan:
    """What ``span()`` gives when tracing is off: enters to None, swallows nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> Literal[False]:
        return False


_NO_SPAN = _NoSpan()


def configured() -> bool:
    """Whether the environment asks for tracing (an OTLP endpoint, and the SDK not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def enabled() -> bool:
    """Whether this process records spans (``setup`` turned tracing on)."""
    return _tracer is not None


def setup(
    *,
    service_name: str,
    exporter: SpanExporter | None = None,
    django: bool = True,
    set_global: bool = True,
) -> bool:
    """Turn tracing on in this process, once; returns whether it is on.

    Without ``exporter``: only when ``configured()``, exporting over OTLP http/protobuf in batches
    (a background thread: call this after the process's last fork). With ``exporter`` (tests, a
    console exporter while debugging): always, each span exported as it ends.
    ``django``: instrument requests (web processes; the Celery worker only needs Celery's).
    ``set_global``: make the provider OpenTelemetry's global one, so that any other instrumented
    library traces into it too (a process can set it once; tests pass False).
    """
    global _tracer, _provider, _trace_api
    if exporter is None and not configured():
        return False
    with _lock:
        if _tracer is not None:
            return True
        from opentelemetry import trace
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
        provider = TracerProvider(resource=Resource.create(attributes))
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        if set_global:
            trace.set_tracer_provider(provider)
        if django:
            from opentelemetry.instrumentation.django import DjangoInstrumentor

            # The middleware goes first in settings.MIDDLEWARE, so it must be there before Django
            # builds its handler (gunicorn loads the app after post_fork).
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "persistence_site.settings.production")
            DjangoInstrumentor().instrument(
                tracer_provider=provider,
                excluded_urls=os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS),
            )
            _instrumented.append(DjangoInstrumentor())
        CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
        _instrumented.append(CeleryInstrumentor())  # type: ignore[no-untyped-call]
        _provider = provider
        _trace_api = trace
        _tracer = provider.get_tracer("persistence")
    exporter_name = "otlp" if exporter is None else type(exporter).__name__
    logger.info("tracing on", extra={"service": service_name, "exporter": exporter_name})
    return True


def shutdown() -> None:
    """Export what is pending and turn tracing off (tests; at exit the provider flushes itself). Safe when off."""
    global _tracer, _provider
    with _lock:
        provider, _provider, _tracer = _provider, None, None
        while _instrumented:
            _instrumented.pop().uninstrument()
    if provider is not None:
        provider.shutdown()


def force_flush(timeout_millis: int = 5000) -> None:
    """Export the spans that ended so far (before a process exits without running atexit)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def _attributes(attributes: Mapping[str, Any] | None, named: Mapping[str, Any]) -> dict[str, Any]:
    result = {f"persistence.{key}": value for key, value in named.items() if value is not None}
    if attributes:
        result.update((key, value) for key, value in attributes.items() if value is not None)
    return result


def span(name: str, *, attributes: Mapping[str, Any] | None = None, **named: Any) -> Any:
    """A span around a block, current inside it (child spans and log lines attach to it).

    ``with span("buffer.add", collection="translation_tasks", record_count=100) as current:``
    ``current`` is the OpenTelemetry span, or None when tracing is off. An exception leaving the
    block is recorded on the span and sets its status to error. Values that are None are left out.
    """
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes=_attributes(attributes, named))


def traced(name: str, *, attributes: Mapping[str, Any] | None = None, **named: Any) -> Callable[[F], F]:
    """Decorator: each call of the function runs in ``span(name, ...)``. Not for generators (the
    span would end before the first item): open a ``span`` inside them around the actual call."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracer = _tracer
            if tracer is None:
                return function(*args, **kwargs)
            with tracer.start_as_current_span(name, attributes=_attributes(attributes, named)):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def set_attributes(*, attributes: Mapping[str, Any] | None = None, **named: Any) -> None:
    """Add attributes to the current span (figures known only after the call: rows, hits)."""
    if _tracer is None:
        return
    current = _trace_api.get_current_span()
    if current.is_recording():
        current.set_attributes(_attributes(attributes, named))


def in_current_context(function: F) -> F:
    """``function`` bound to the caller's context, to run in another thread (a thread pool does
    not carry contextvars): its spans then belong to the caller's trace. Itself when off."""
    if _tracer is None:
        return function
    return functools.partial(contextvars.copy_context().run, function)  # type: ignore[return-value]


def current_ids() -> tuple[str, str]:
    """``(trace_id, span_id)`` of the current span in hex (32 and 16 digits), or empty strings."""
    if _tracer is None:
        return "", ""
    context = _trace_api.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
