"""Structured logging: one JSON object per line, carrying the current request's id.

The request id lives in a context variable set by ``RequestLogMiddleware``; the filter copies it
onto every record so that any logger's line can be tied to its request. With tracing on
(core.tracing), the filter adds the current span's ``trace_id`` and ``span_id`` too
(empty strings outside any span); with tracing off they are absent, and cost nothing.

    logger.info("batch accepted", extra={"collection": "translation_tasks", "count": 100})
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from core import tracing

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request), and with tracing on the
    ``trace_id`` and ``span_id`` of the span current where the line was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if tracing.enabled() and not hasattr(record, "trace_id"):
            record.trace_id, record.span_id = tracing.current_ids()
        return True


class JsonFormatter(_BaseJsonFormatter):
    """python-json-logger with the field names the service's log pipeline expects."""

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["timestamp"] = log_record.pop("asctime", None) or self.formatTime(record)
        log_record["level"] = log_record.pop("levelname", record.levelname)
        log_record["logger"] = log_record.pop("name", record.name)
        log_record.setdefault("request_id", getattr(record, "request_id", "-"))
