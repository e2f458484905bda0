"""What the sync and async clients share: settings, retry policy, error mapping, the local buffer."""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import random
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from persistence_client.errors import (
    AuthError,
    BufferFull,
    Conflict,
    NotFound,
    PersistenceError,
    Throttled,
    Unavailable,
    ValidationFailed,
)

# Optional: with OpenTelemetry installed, requests carry the caller's trace context.
_inject_trace_context: Callable[[dict[str, str]], None] | None
try:
    from opentelemetry.propagate import inject as _inject_trace_context
except ImportError:  # not a dependency of the client
    _inject_trace_context = None

API = "/api/v1/translation"
USERS_API = "/api/v1/users"
AUDIT_API = "/api/v1/audit"
SESSIONS, TASKS, AUDIT_LOGS = "sessions", "tasks", "logs"
#: Where each kind of buffered record is sent (the body is ``{kind: [...]}``); sent in this order.
BATCH_PATHS = {
    SESSIONS: f"{API}/sessions/batch",
    TASKS: f"{API}/tasks/batch",
    AUDIT_LOGS: f"{AUDIT_API}/logs/batch",
}
KINDS = tuple(BATCH_PATHS)
#: Records per batch request the service accepts at most (docs/api.md §2).
MAX_BATCH = 1000
Record = dict[str, Any]


@dataclass(frozen=True)
class Timeouts:
    """Seconds per kind of call (the service guide's defaults)."""

    write: float = 2.0
    query: float = 5.0
    flush: float = 10.0
    restore: float = 30.0
    #: One file upload or download (bytes may be large): per read/write, not the whole transfer.
    files: float = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with full jitter on connection errors, timeouts, 429 and 5xx.

    Attempt ``n`` (from 1) waits a random time up to ``min(max_delay, base_delay * 2**(n-1))``.
    When the service sent ``Retry-After`` the client waits that long plus a jitter of up to
    ``base_delay`` (so clients told the same pause do not come back in step). A ``Retry-After``
    longer than ``max_retry_after`` ends the retries at once: coming back earlier than the service
    asked would only add load, and waiting longer would hold the caller past any sensible timeout.
    Validation errors (4xx other than 429) are never retried.
    """

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(retry_after, 0.0) + random.uniform(0, self.base_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        import datetime as dt

        return (parsedate_to_datetime(value) - dt.datetime.now(dt.UTC)).total_seconds()
    except (TypeError, ValueError):
        return None


def error_for(response: httpx.Response) -> PersistenceError:
    """The exception for an error answer, carrying the contract's error body."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    kwargs: dict[str, Any] = {
        "status": response.status_code,
        "error_code": body.get("error_code"),
        "errors": body.get("errors") or [],
        "body": body,
    }
    detail = str(body.get("detail") or response.reason_phrase or "error")
    status = response.status_code
    if status in (401, 403):
        return AuthError(detail, **kwargs)
    if status == 404:
        return NotFound(detail, **kwargs)
    if status == 409:
        return Conflict(detail, **kwargs)
    if status == 429:
        return Throttled(detail, **kwargs)
    if status >= 500:
        return Unavailable(detail, **kwargs)
    return ValidationFailed(detail, **kwargs)


def connection_error(exc: Exception) -> Unavailable:
    return Unavailable(f"{type(exc).__name__}: {exc}")


def query_params(filters: Mapping[str, Any]) -> dict[str, str]:
    """Filters as query parameters: None dropped, dates as ISO 8601."""
    params = {}
    for name, value in filters.items():
        if value is None:
            continue
        params[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return params


@dataclass
class ClientStats:
    """Counters of what the client did (for logs and tests)."""

    requests: int = 0
    retries: int = 0
    records_sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    batches_sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    records_rejected: int = 0


@dataclass
class RecoveredSession:
    """An incomplete session as the service last accepted it, with its pending and processing tasks."""

    session: Record
    tasks: list[Record]

    @property
    def session_id(self) -> str:
        return str(self.session["session_id"])


Overflow = Literal["block", "raise"]


class RecordBuffer:
    """Records waiting to be sent, per kind, bounded to ``capacity`` in total (thread-safe).

    Sessions are always sent before tasks, so a task never reaches the service before its session.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.lock = threading.Lock()
        self.space = threading.Condition(self.lock)
        self.pending: dict[str, deque[Record]] = {kind: deque() for kind in KINDS}

    def __len__(self) -> int:
        return sum(len(queue) for queue in self.pending.values())

    def try_add(self, kind: str, records: list[Record]) -> bool:
        with self.lock:
            return self._add_locked(kind, records)

    def add_blocking(self, kind: str, records: list[Record], timeout: float) -> bool:
        with self.space:
            return self.space.wait_for(lambda: self._add_locked(kind, records), timeout)

    def _add_locked(self, kind: str, records: list[Record]) -> bool:
        if len(self) + len(records) > self.capacity and len(self) > 0:
            return False
        self.pending[kind].extend(records)
        return True

    def next_batch(self, size: int) -> tuple[str, list[Record]] | None:
        """The oldest ``size`` records of the first kind with any (sessions first); not removed."""
        with self.lock:
            for kind in KINDS:
                queue = self.pending[kind]
                if queue:
                    return kind, [queue[i] for i in range(min(size, len(queue)))]
        return None

    def remove(self, kind: str, count: int) -> None:
        with self.space:
            queue = self.pending[kind]
            for _ in range(count):
                queue.popleft()
            self.space.notify_all()

    def full_batch_ready(self, size: int) -> bool:
        return any(len(q) >= size for q in self.pending.values())


def batches(records: Iterable[Mapping[str, Any]]) -> list[Record]:
    return [dict(r) for r in records]


def overflow_error(capacity: int) -> BufferFull:
    return BufferFull(
        f"The client's buffer holds {capacity} records: the service has not been taking writes."
    )


def next_delay(
    policy: RetryPolicy, attempt: int, response: httpx.Response | None, exc: Exception | None
) -> float:
    """Seconds to wait before attempt ``attempt + 1``; raises the error when it must not be retried
    (a 4xx other than 429) or the attempts are used up."""
    if response is not None:
        error = error_for(response)
        if response.status_code not in RETRYABLE_STATUSES:
            raise error
        retry_after = retry_after_seconds(response)
    else:
        error = connection_error(exc or RuntimeError("no answer"))
        retry_after = None
    if attempt >= policy.attempts or (retry_after is not None and retry_after > policy.max_retry_after):
        raise error
    return policy.delay(attempt, retry_after)


def encode(body: Any) -> bytes:
    """JSON with datetimes and dates as ISO 8601."""
    import json

    def default(value: Any) -> Any:
        if hasattr(value, "isoformat"):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(body, default=default, separators=(",", ":")).encode()


def headers(api_key: str | None) -> dict[str, str]:
    result = {"Content-Type": "application/json", "User-Agent": "persistence-client/1.0"}
    if api_key:
        result["X-API-Key"] = api_key
    return result


def with_trace_context(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` (keyword arguments of one request) with the W3C trace-context headers
    (``traceparent``, ``tracestate``) of the caller's current span added, when OpenTelemetry is
    installed and a span is current; the service then continues that trace. Otherwise unchanged.

    Records the background sender batches come from many callers: they carry no trace context.
    """
    if _inject_trace_context is None:
        return extra
    carrier: dict[str, str] = {}
    _inject_trace_context(carrier)
    if carrier:
        extra["headers"] = {**extra.get("headers", {}), **carrier}
    return extra


def segment(value: str) -> str:
    """An id as one URL path segment: ids are free text, so "?", "#", "%" or " " must not change
    which resource is asked for."""
    return quote(value, safe="")


def audit_params(filters: Mapping[str, Any]) -> dict[str, str]:
    """Audit filters as query parameters: ``from_``/``to`` (``from`` is a Python keyword) and the
    rest as named (actor_id, actor_type, action, resource_type, resource_id, outcome, q, order)."""
    renamed = {("from" if name == "from_" else name): value for name, value in filters.items()}
    return query_params(renamed)


def audit_events(records: Iterable[Mapping[str, Any]]) -> list[Record]:
    """Events ready to buffer: each gets an ``event_id`` (a UUID4) and a ``timestamp`` (now, UTC)
    when it has none, here rather than at the service, so a batch sent again after a lost answer
    is recognised as the same events (the service keeps the first version of an event_id)."""
    now = dt.datetime.now(dt.UTC)
    events = []
    for record in records:
        event = dict(record)
        if event.get("event_id") is None:
            event["event_id"] = str(uuid.uuid4())
        if event.get("timestamp") is None:
            event["timestamp"] = now
        events.append(event)
    return events


def pages_done(page: Mapping[str, Any]) -> bool:
    return not page["items"] or page["page"] >= page["total_pages"]


def json_of(response: httpx.Response) -> Record:
    """The answer's JSON object."""
    body: Record = response.json()
    return body


logger = logging.getLogger("persistence_client")
#: Called with (kind, records, error) for records the service refused for good (a 4xx).
RejectedHandler = Callable[[str, list[Record], ValidationFailed], None]


def log_rejected(kind: str, records: list[Record], error: ValidationFailed) -> None:
    logger.error("the service refused %d %s: %s %s", len(records), kind, error, error.errors)


class ClientBase:
    """What both clients keep: their settings, counters and the local buffer."""

    def __init__(
        self,
        *,
        batch_size: int,
        flush_interval: float,
        max_buffered: int,
        overflow: Overflow,
        block_timeout: float,
        retry: RetryPolicy | None,
        timeouts: Timeouts | None,
        on_rejected: RejectedHandler,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH}")
        if overflow not in ("block", "raise"):
            raise ValueError('overflow must be "block" or "raise"')
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.overflow = overflow
        self.block_timeout = block_timeout
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.on_rejected = on_rejected
        self.counters = ClientStats()
        self._buffer = RecordBuffer(max_buffered)
        self._closed = False
        # Batches the background sender had refused: nobody was there to raise to, so the next
        # flush() raises them (a caller who flushes on stop learns of every refused record).
        self._refusals: deque[ValidationFailed] = deque()
        _open_clients.add(self)

    @property
    def buffered(self) -> int:
        """Records waiting to be sent."""
        return len(self._buffer)

    def _records(self, records: Iterable[Mapping[str, Any]]) -> list[Record]:
        if self._closed:
            raise PersistenceError("The client is closed.")
        batch = [dict(record) for record in records]
        for record in batch:
            for name, value in record.items():
                # The service refuses a timestamp without an offset (422): say so here, at the call.
                if isinstance(value, dt.datetime) and value.utcoffset() is None:
                    raise ValueError(
                        f"{name}: a naive datetime has no UTC offset; pass an aware one, "
                        "e.g. datetime.now(timezone.utc)"
                    )
        return batch

    def _accepted(self, kind: str, records: list[Record]) -> None:
        self.counters.records_sent[kind] += len(records)
        self.counters.batches_sent[kind] += 1

    def _refused(self, kind: str, records: list[Record], error: ValidationFailed) -> None:
        self.counters.records_rejected += len(records)
        self.on_rejected(kind, records, error)

    def _defer(self, error: ValidationFailed) -> None:
        """Keep a refusal met by the background sender for the next flush() to raise."""
        self._refusals.append(error)

    def _raise_refusals(self, current: ValidationFailed | None = None) -> None:
        """Raise the first refusal not reported yet (deferred ones first), noting any others."""
        refusals = list(self._refusals)
        self._refusals.clear()
        if current is not None:
            refusals.append(current)
        if refusals:
            first = refusals[0]
            if len(refusals) > 1:
                first.add_note(f"{len(refusals) - 1} more batch(es) were refused; see on_rejected.")
            raise first

    def _close_at_exit(self) -> None:
        """Called at interpreter exit for a client nobody closed."""
        raise NotImplementedError

    def _forget(self) -> None:
        _open_clients.discard(self)

    def _has_sent(self) -> bool:
        return bool(self._buffer) or any(self.counters.batches_sent.values())


# Clients not closed yet: flushed at interpreter exit. A WeakSet, so that registering does not keep
# a client alive, and one atexit hook for all of them instead of one per client ever made.
_open_clients: weakref.WeakSet[ClientBase] = weakref.WeakSet()


@atexit.register
def _close_open_clients() -> None:
    for client in list(_open_clients):
        try:
            client._close_at_exit()
        except Exception:  # one client's failure must not keep the others from flushing
            logger.exception("persistence client: flushing at exit failed; records may be unsent")
