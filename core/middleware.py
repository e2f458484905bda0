"""Request id, access log, body-size limit and per-view metrics middleware.

MIDDLEWARE = ["core.middleware.RequestLogMiddleware", ...]
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import django_prometheus.middleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_prometheus.utils import Time

from core import tracing
from core.errors import error_body
from core.logging_setup import request_id_var

access_logger = logging.getLogger("persistence.access")

# A client-supplied id is echoed into logs and headers, so only a safe, bounded form is kept.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestLogMiddleware:
    """Takes ``X-Request-ID`` (or makes one), echoes it back, and logs one line per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # META, not request.headers: that builds a dict of every header, for this one.
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if _REQUEST_ID_RE.match(supplied) else uuid.uuid4().hex
        request.request_id = request_id
        tracing.set_attributes(request_id=request_id)  # on the request's span: X-Request-ID -> trace
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            access_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    **getattr(request, "log_extra", {}),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


_FILE_BODY_PATHS = ("/api/v1/storage/files/upload",)


class BodySizeLimitMiddleware:
    """413 ``PAYLOAD_TOO_LARGE`` before reading a body larger than ``REQUEST_MAX_BODY_BYTES``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.REQUEST_MAX_BODY_BYTES
        if request.path in _FILE_BODY_PATHS or request.path.startswith("/files/"):
            # File uploads stream to the object store (files app): their own, larger limit.
            limit = settings.FILES_MAX_UPLOAD_BYTES + 1024 * 1024
        if length > limit:
            return JsonResponse(
                error_body(f"Request body is {length} bytes; the limit is {limit}.", "PAYLOAD_TOO_LARGE"),
                status=413,
            )
        return self.get_response(request)


class PrometheusAfterMiddleware(django_prometheus.middleware.PrometheusAfterMiddleware):
    """django-prometheus's per-view middleware, with each labelled series looked up once per process.

    The stock ``label_metric`` calls ``metric.labels(...)`` about eight times a request (a lock, a
    tuple of label values and a dict lookup each); the same series come back request after request,
    so their children are kept here. The metrics and their values are unchanged. Bounded: the memo
    is cleared past ``_MAX_SERIES`` entries (label values are view names, methods, statuses).
    """

    _MAX_SERIES = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._series: dict[tuple[Any, ...], Any] = {}

    def process_request(self, request: HttpRequest) -> None:
        """django-prometheus's, reading the two headers it needs from ``META`` rather than
        ``request.headers`` (a dict of every header, built on first use for these two)."""
        transport = self._transport(request)
        method = self._method(request)
        self.label_metric(self.metrics.requests_by_method, request, method=method).inc()
        self.label_metric(self.metrics.requests_by_transport, request, transport=transport).inc()
        if request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            self.label_metric(self.metrics.requests_ajax, request).inc()
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        self.label_metric(self.metrics.requests_body_bytes, request).observe(content_length)
        request.prometheus_after_middleware_event = Time()

    def label_metric(self, metric: Any, request: HttpRequest, response: Any = None, **labels: str) -> Any:
        if not labels:
            return metric
        key = (id(metric), *labels.items())
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self._MAX_SERIES:
                self._series.clear()
            series = self._series[key] = metric.labels(**labels)
        return series
