"""Reads of audit events (docs/api.md §9): the query, export and stats endpoints, on the search backend.

    body = audit_logs_page(query=request.query_params)         # {"total", ..., "items", "next_cursor"}
    for chunk in audit_logs_export(query=request.query_params, fmt="csv"): ...
    body = audit_stats_get(query=request.query_params)

Query parameters (all optional, combined with AND): ``actor_id``, ``actor_type``, ``action`` (exact,
or a prefix ending in ``.*``), ``resource_type``, ``resource_id``, ``outcome``, ``from``/``to``
(inclusive, on ``timestamp``: an ISO 8601 date or date-time, UTC when it has no offset; a bare
date as ``to`` covers that whole day) and ``q`` (full text over ``message``: every whitespace-
separated term must occur; see storage_backends.search_sql for how each backend matches).
Values are compared exactly as sent (nothing is stripped). A malformed one is a 400 INVALID_QUERY.

Paging: ``page``/``page_size`` (docs/api.md §0) for the first 10,000 matches (``MAX_OFFSET_WINDOW``, the
window an OpenSearch index allows), and ``cursor`` beyond: every page answers ``next_cursor`` (null
on the last page), an opaque token to pass back as ``cursor`` with the same filters and order; the
next page then starts strictly after the last item seen (``page`` is then ignored and answered as
null). The token is signed (``SECRET_KEY``) and bound to the filters and order it came from: a token
altered, cut, or used with other filters is a 400 INVALID_QUERY rather than a page of something else.

Read-your-writes: none for audit events. Search reads the backend only, so an accepted event shows
up once flushed (within ``BUFFER_FLUSH_INTERVAL``, or at once after POST /translation/flush); an
audit trail is read after the fact, and merging buffered events into ranked, counted and cursor-
paged results would cost every query a scan of the buffer.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
from collections.abc import Iterator, Mapping
from typing import Any

from django import forms
from django.core import signing
from django_filters.fields import IsoDateTimeField

from core.errors import InvalidQuery
from core.json_codec import dumps
from core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, form_errors
from storage_backends import registry
from storage_backends.search import AUDIT_LOGS, EVENT_FIELDS, AuditQuery, AuditSearchBackend, SearchCursor

#: Offset paging stops here (OpenSearch's default ``index.max_result_window``); cursors go on.
MAX_OFFSET_WINDOW = 10_000
FILTER_NAMES = (
    "actor_id",
    "actor_type",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "from",
    "to",
    "q",
)
_CURSOR_SALT = "audit.logs.cursor"
# Cells a spreadsheet would read as a formula (or that hide one behind a tab or a carriage return).
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


class _ExactDateTime(IsoDateTimeField):
    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value != value.strip():
            raise forms.ValidationError(
                "Enter a date or date-time without surrounding whitespace.", code="invalid"
            )
        return super().to_python(value)


class AuditQueryForm(forms.Form):
    actor_id = forms.CharField(required=False, strip=False)
    actor_type = forms.ChoiceField(
        required=False, choices=[(c, c) for c in ("user", "api_key", "service", "system")]
    )
    action = forms.CharField(required=False, strip=False)
    resource_type = forms.CharField(required=False, strip=False)
    resource_id = forms.CharField(required=False, strip=False)
    outcome = forms.ChoiceField(required=False, choices=[(c, c) for c in ("success", "failure")])
    q = forms.CharField(required=False, strip=False)
    order = forms.ChoiceField(required=False, choices=[("desc", "desc"), ("asc", "asc")])
    page = forms.IntegerField(required=False, min_value=1)
    page_size = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)
    cursor = forms.CharField(required=False, strip=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ``from`` is a keyword: these two cannot be declared as class attributes.
        self.fields["from"] = _ExactDateTime(required=False)
        self.fields["to"] = _ExactDateTime(required=False)


def _clean(query: Mapping[str, Any]) -> dict[str, Any]:
    form = AuditQueryForm(query)
    if not form.is_valid():
        raise InvalidQuery("Invalid query parameters.", errors=form_errors(form))
    return form.cleaned_data


def _to_bound(raw: str, value: dt.datetime) -> dt.datetime:
    if len(raw) == len("2026-01-31"):  # a bare date: the whole day
        return value + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    return value


def audit_query(query: Mapping[str, Any]) -> AuditQuery:
    """The filters of a request as the backend's ``AuditQuery`` (400 INVALID_QUERY when malformed)."""
    data = _clean(query)
    return _audit_query(query, data)


def _audit_query(query: Mapping[str, Any], data: dict[str, Any]) -> AuditQuery:
    action = data["action"] or None
    prefix = None
    if action is not None and action.endswith(".*"):
        prefix, action = action[:-1], None
    time_from = data["from"].astimezone(dt.UTC) if data["from"] else None
    time_to = _to_bound(str(query.get("to", "")), data["to"]).astimezone(dt.UTC) if data["to"] else None
    return AuditQuery(
        actor_id=data["actor_id"] or None,
        actor_type=data["actor_type"] or None,
        action=action,
        action_prefix=prefix,
        resource_type=data["resource_type"] or None,
        resource_id=data["resource_id"] or None,
        outcome=data["outcome"] or None,
        time_from=time_from,
        time_to=time_to,
        q=data["q"] or None,
    )


def _backend() -> AuditSearchBackend:
    backend = registry.backend(AUDIT_LOGS)
    assert isinstance(backend, AuditSearchBackend), (
        "STORAGE_BACKENDS['audit_logs'] must be an AuditSearchBackend"
    )
    return backend


# --- cursors --------------------------------------------------------------------------------------


def _fingerprint(query: Mapping[str, Any], order: str) -> str:
    """What a cursor is bound to: the filters as sent, and the order."""
    parts = [f"{name}={query.get(name, '')}" for name in FILTER_NAMES] + [f"order={order}"]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def cursor_encode(position: SearchCursor, *, fingerprint: str) -> str:
    stamp = position.timestamp.astimezone(dt.UTC).isoformat()
    return signing.dumps([stamp, position.event_id, fingerprint], salt=_CURSOR_SALT, compress=True)


def cursor_decode(token: str, *, fingerprint: str) -> SearchCursor:
    """The position of a ``next_cursor``; 400 INVALID_QUERY if it was altered or made for other
    filters or another order."""
    error = [{"field": "cursor", "message": "not a cursor this endpoint issued for these filters and order"}]
    try:
        stamp, event_id, bound = signing.loads(token, salt=_CURSOR_SALT)
        position = SearchCursor(timestamp=dt.datetime.fromisoformat(stamp), event_id=event_id)
    except (signing.BadSignature, ValueError, TypeError):
        raise InvalidQuery("The cursor is invalid (altered or truncated).", errors=error) from None
    if bound != fingerprint:
        raise InvalidQuery(
            "The cursor belongs to other filters or another order; send it with the same ones.", errors=error
        )
    return position


# --- the endpoints' reads -------------------------------------------------------------------------


def event_out(row: dict[str, Any]) -> dict[str, Any]:
    """An event as the API answers it (the §9 fields, timestamps in UTC)."""
    out = {name: row.get(name) for name in EVENT_FIELDS}
    stamp = out["timestamp"]
    if isinstance(stamp, dt.datetime):
        out["timestamp"] = stamp.astimezone(dt.UTC)
    out["details"] = out["details"] or {}
    return out


def audit_logs_page(*, query: Mapping[str, Any]) -> dict[str, Any]:
    """One page of matches: the contract's page object plus ``next_cursor``."""
    data = _clean(query)
    filters = _audit_query(query, data)
    order = data["order"] or "desc"
    page_size = data["page_size"] or DEFAULT_PAGE_SIZE
    fingerprint = _fingerprint(query, order)
    after = cursor_decode(data["cursor"], fingerprint=fingerprint) if data["cursor"] else None
    page = data["page"] or 1
    if after is None and page * page_size > MAX_OFFSET_WINDOW:
        raise InvalidQuery(
            f"page * page_size may be at most {MAX_OFFSET_WINDOW}; page further with `cursor` (the "
            "`next_cursor` of the previous page).",
            errors=[{"field": "page", "message": f"beyond the first {MAX_OFFSET_WINDOW} matches"}],
        )
    result = _backend().search(filters, order=order, page_size=page_size, page=page, after=after)
    next_cursor = result.next_cursor
    return {
        "total": result.total,
        "page": None if after is not None else page,
        "page_size": page_size,
        "total_pages": math.ceil(result.total / page_size),
        "items": [event_out(row) for row in result.items],
        "next_cursor": cursor_encode(next_cursor, fingerprint=fingerprint) if next_cursor else None,
    }


def audit_stats_get(*, query: Mapping[str, Any]) -> dict[str, Any]:
    stats = _backend().stats(audit_query(query))
    return {
        "total": stats.total,
        "by_action": stats.by_action,
        "by_outcome": stats.by_outcome,
        "by_actor": stats.by_actor,
        "per_day": [{"date": day.isoformat(), "count": count} for day, count in stats.per_day],
    }


def audit_export_query(*, query: Mapping[str, Any]) -> tuple[AuditQuery, str]:
    """The export's filters and order, checked before the response starts (a 400 cannot follow a
    200 that has begun streaming)."""
    data = _clean(query)
    return _audit_query(query, data), data["order"] or "asc"


def csv_cell(value: Any) -> str:
    """One CSV cell: JSON for ``details``, ``Z`` timestamps, and a leading ``'`` on text a
    spreadsheet would run as a formula (OWASP's CSV injection advice). Quoting of commas, quotes
    and newlines is the csv module's (RFC 4180, every field quoted)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    text = dumps(value).decode() if isinstance(value, dict | list) else str(value)
    if text.startswith(_FORMULA_LEADS):
        return "'" + text
    return text


#: Rows per chunk of the streamed body: few enough to keep memory flat, enough to amortise writes.
EXPORT_CHUNK_ROWS = 500


def audit_logs_export(*, filters: AuditQuery, order: str, fmt: str) -> Iterator[bytes]:
    """The body of an export, streamed in chunks of ``EXPORT_CHUNK_ROWS`` events. Memory: one chunk
    plus the backend's batch, whatever the number of matches."""
    events = _backend().export(filters, order=order)  # type: ignore[arg-type]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(EVENT_FIELDS)
        for rows, row in enumerate(events, start=1):
            writer.writerow([csv_cell(row.get(name)) for name in EVENT_FIELDS])
            if rows % EXPORT_CHUNK_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()
        return
    lines: list[bytes] = []
    for row in events:
        lines.append(dumps(event_out(row)) + b"\n")
        if len(lines) >= EXPORT_CHUNK_ROWS:
            yield b"".join(lines)
            lines = []
    if lines:
        yield b"".join(lines)
