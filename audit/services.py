"""Writes of audit events (docs/api.md §9): batches from clients, the service's own events, retention.

    audit_logs_batch_add(records=validate_audit_batch(body))      # POST /api/v1/audit/logs/batch
    record_event("session.delete", resource_type="session", resource_id=sid, request=request)
    audit_retention_apply()                                      # beat / manage.py cleanup_audit_logs

Events go through the write buffer like tasks (202, durable, flushed to the ``audit_logs`` backend)
and are append-only: the buffer keeps the first accepted write of an ``event_id``
(declared ``keep_first``, storage_backends.catalog) and the backend ignores a later one.

Other apps import ``record_event`` (never the reverse: this app imports no other app).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit import metrics
from audit.middleware import current_request
from core.exceptions import BufferFull, StorageUnavailable
from storage_backends import registry
from storage_backends.buffer import get_write_buffer
from storage_backends.search import AUDIT_LOGS

logger = logging.getLogger(__name__)

#: After the buffer store could not be reached, the service's own events are dropped (and counted)
#: without trying for this long: an operation must not wait on a connect timeout every time.
UNREACHABLE_PAUSE_SECONDS = 5.0
_paused_until = 0.0

#: The longest strings a self-recorded event copies from a request (the model's columns).
_LIMITS = {"actor_id": 128, "ip": 64, "user_agent": 1024, "request_id": 128, "message": 10_000}


def _stamp(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill what the service assigns at acceptance: an ``event_id`` (UUID4) and the ``timestamp``."""
    now = _utc_text(timezone.now())
    for record in records:
        if record.get("event_id") is None:
            record["event_id"] = str(uuid.uuid4())
        if record.get("timestamp") is None:
            record["timestamp"] = now
    return records


def _utc_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def audit_logs_batch_add(*, records: list[dict[str, Any]]) -> int:
    """Buffer validated events (all or none); returns how many were accepted. Raises
    ``BufferFull``/``StorageUnavailable`` (503) when the buffer cannot take them."""
    get_write_buffer().add(AUDIT_LOGS, _stamp(records))
    return len(records)


# --- the service's own events -----------------------------------------------------------------------


def _truncate(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "")
    return value[: _LIMITS[name]]


def _actor_of(request: Any) -> tuple[str, str] | None:
    """(actor_id, actor_type) of a request: its API key's name, else its signed-in (admin) user."""
    api_key = getattr(request, "auth", None)
    name = getattr(api_key, "name", None)
    if name:
        return name, "api_key"
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username(), "user"
    return None


def _client_address(request: Any) -> str | None:
    try:
        from core.throttling import client_address

        return client_address(request) or None
    except Exception:  # an address is a nice-to-have of the event, never a reason to lose it
        return request.META.get("REMOTE_ADDR") if hasattr(request, "META") else None


def _request_fields(request: Any) -> dict[str, Any]:
    django_request = getattr(request, "_request", request)  # a DRF Request wraps Django's
    return {
        "ip": _truncate(_client_address(django_request), "ip"),
        "user_agent": _truncate(django_request.META.get("HTTP_USER_AGENT"), "user_agent"),
        "request_id": _truncate(getattr(django_request, "request_id", None), "request_id"),
    }


def _json_safe(details: dict[str, Any] | None) -> dict[str, Any]:
    """``details`` as the batch endpoint would accept them (the same rules, from the same module)."""
    if not details:
        return {}
    import orjson

    from core.values import check_free_json

    try:
        cleaned = orjson.loads(orjson.dumps(details, default=str))
        check_free_json(cleaned)
        return cleaned
    except (ValueError, TypeError, orjson.JSONEncodeError):
        return {"note": "details dropped: not a valid free JSON object"}


def record_event(
    action: str,
    *,
    outcome: str = "success",
    resource_type: str | None = None,
    resource_id: str | None = None,
    message: str = "",
    details: dict[str, Any] | None = None,
    request: Any = None,
    actor_id: str | None = None,
    actor_type: str | None = None,
) -> str | None:
    """Buffer one audit event of the service's own operations; returns its ``event_id``, or None
    when it could not be buffered.

    The actor is ``actor_id``/``actor_type`` when given, else the request's API key (``api_key``,
    its name) or signed-in admin user (``user``), else ``system``. ``request`` defaults to the
    request being served (``audit.middleware``), which also gives the client address, the user
    agent and the request id. Never raises into the caller and never waits on more than the
    buffer's own add (one Redis script or one SQLite transaction): a failure is logged and
    counted in ``persistence_audit_events_dropped_total``, and after the store was unreachable
    the next ``UNREACHABLE_PAUSE_SECONDS`` of events are dropped at once (counted, not retried).
    """
    global _paused_until
    if time.monotonic() < _paused_until:
        metrics.EVENTS_DROPPED.inc()
        return None
    try:
        request = request if request is not None else current_request.get()
        fields: dict[str, Any] = {"ip": None, "user_agent": None, "request_id": None}
        derived = None
        if request is not None:
            fields = _request_fields(request)
            derived = _actor_of(request)
        if actor_id is None:
            actor_id, derived_type = derived or ("system", "system")
            actor_type = actor_type or derived_type
        record = {
            "event_id": str(uuid.uuid4()),
            "timestamp": _utc_text(timezone.now()),
            "actor_id": _truncate(actor_id, "actor_id") or "system",
            "actor_type": actor_type or "system",
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id[:128] if resource_id is not None else None,
            "outcome": outcome,
            "message": _truncate(message, "message") or "",
            **fields,
            "details": _json_safe(details),
        }
        get_write_buffer().add(AUDIT_LOGS, [record])
    except Exception as exc:
        metrics.EVENTS_DROPPED.inc()
        if isinstance(exc, StorageUnavailable) and not isinstance(exc, BufferFull):
            _paused_until = time.monotonic() + UNREACHABLE_PAUSE_SECONDS
        logger.error(
            "audit event not recorded",
            extra={
                "action": action,
                "outcome": outcome,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "error": str(exc),
            },
        )
        return None
    metrics.EVENTS_RECORDED.inc()
    return record["event_id"]


@dataclass
class AuditedOperation:
    """What an ``audited`` block may fill in as it learns it (an id assigned inside, counts)."""

    resource_id: str | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _failure_message(exc: BaseException) -> str:
    detail = getattr(exc, "detail", None) or str(exc)
    return f"{type(exc).__name__}: {detail}"[:1000]


@contextlib.contextmanager
def audited(
    action: str,
    *,
    resource_type: str | None = None,
    resource_id: str | None = None,
    message: str = "",
    details: dict[str, Any] | None = None,
    request: Any = None,
    actor_id: str | None = None,
    actor_type: str | None = None,
) -> Iterator[AuditedOperation]:
    """Record ``action`` once the block ends: ``success`` when it returns, ``failure`` (with the
    error's class, detail and ``error_code`` in the event) when it raises; the error propagates.

        with audited("session.delete", resource_type="session", resource_id=sid) as event:
            event.details["deleted_tasks"] = delete(...)
    """
    event = AuditedOperation(resource_id=resource_id, message=message, details=dict(details or {}))
    common = {
        "resource_type": resource_type,
        "request": request,
        "actor_id": actor_id,
        "actor_type": actor_type,
    }
    try:
        yield event
    except Exception as exc:
        error_code = getattr(exc, "error_code", None)
        record_event(
            action,
            outcome="failure",
            resource_id=event.resource_id,
            message=event.message or _failure_message(exc),
            details={
                **event.details,
                "error": _failure_message(exc),
                **({"error_code": error_code} if error_code else {}),
            },
            **common,
        )
        raise
    record_event(
        action, resource_id=event.resource_id, message=event.message, details=event.details, **common
    )


# --- retention -------------------------------------------------------------------------------------


def retention_cutoff_month(*, now: dt.datetime | None = None, days: int | None = None) -> dt.date:
    """The first month kept: the month holding ``now - AUDIT_RETENTION_DAYS`` (every month before
    it ends more than that many days ago)."""
    now = now or timezone.now()
    oldest_kept = (
        now - dt.timedelta(days=days if days is not None else settings.AUDIT_RETENTION_DAYS)
    ).astimezone(dt.UTC)
    return dt.date(oldest_kept.year, oldest_kept.month, 1)


def audit_retention_apply(*, now: dt.datetime | None = None, days: int | None = None) -> dict[str, Any]:
    """Drop the months of audit events older than ``AUDIT_RETENTION_DAYS`` through the backend;
    returns ``{"before": "YYYY-MM-01", "dropped": [...]}``. Cost: the backend's (whole indices, or
    deletes in slices of rows)."""
    month = retention_cutoff_month(now=now, days=days)
    dropped = registry.backend(AUDIT_LOGS).drop_months_before(month)  # type: ignore[attr-defined]
    logger.info("audit retention applied", extra={"before": month.isoformat(), "dropped": dropped})
    return {"before": month.isoformat(), "dropped": dropped}
