"""The audit search interface: where audit events live for good, and how they are searched.

Two plugins implement it (chosen by ``STORAGE_BACKENDS["audit_logs"]``):

- ``storage_backends.search_sql.SQLAuditSearch``: the database (SQLite FTS5 with the trigram
  tokenizer in the embedded mode; MariaDB/MySQL full-text otherwise), the embedded default;
- ``storage_backends.search_opensearch.OpenSearchAuditSearch``: the OpenSearch/Elasticsearch API
  through opensearch-py (``AUDIT_SEARCH_URL``), monthly indices ``audit-YYYY.MM`` behind an alias.

Records are model-ready audit events (docs/api.md §9): ``timestamp`` an aware UTC ``datetime``,
``details`` a dict, the others strings or None. Writes are append-only: the first stored version of
an ``event_id`` is kept and a later write of the same id is ignored (not an error).

    backend = registry.backend("audit_logs")
    backend.write("audit_logs", records)                 # via the flusher only
    page = backend.search(AuditQuery(action_prefix="session."), order="desc", page_size=20, page=1)
    for event in backend.export(AuditQuery(q="翻译"), order="asc"): ...
    backend.stats(AuditQuery())
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from storage_backends.base import StorageBackend

AUDIT_LOGS = "audit_logs"

Order = Literal["asc", "desc"]

#: The fields of an audit event (docs/api.md §9), in the order of the CSV columns.
EVENT_FIELDS = (
    "event_id",
    "timestamp",
    "actor_id",
    "actor_type",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "message",
    "ip",
    "user_agent",
    "request_id",
    "details",
)
#: What a plugin stores and returns: the event, and the time the buffer first accepted it.
STORED_FIELDS = (*EVENT_FIELDS, "accepted_at")


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """The filters of GET /api/v1/audit/logs, export and stats (all optional, combined with AND)."""

    actor_id: str | None = None
    actor_type: str | None = None
    #: ``action`` matches exactly; ``action_prefix`` (from ``action=session.*``) matches actions
    #: starting with ``"session."`` (the prefix keeps its trailing dot).
    action: str | None = None
    action_prefix: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    outcome: str | None = None
    #: Inclusive bounds on ``timestamp`` (aware datetimes).
    time_from: dt.datetime | None = None
    time_to: dt.datetime | None = None
    #: Full-text over ``message`` (all words must match; Chinese matched by character n-grams).
    q: str | None = None


@dataclass(frozen=True, slots=True)
class SearchCursor:
    """Where the next page starts: strictly after this (timestamp, event_id) in the page's order."""

    timestamp: dt.datetime
    event_id: str


@dataclass(slots=True)
class SearchPage:
    items: list[dict[str, Any]]
    #: Exact number of matches (the plugin may cap counting at a large bound and say so).
    total: int
    #: Position after the last item, for ``cursor`` paging; None when this page is the last.
    next_cursor: SearchCursor | None = None


@dataclass(slots=True)
class AuditStats:
    total: int
    by_action: dict[str, int] = field(default_factory=dict)  # top 20, by count desc then key
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_actor: dict[str, int] = field(default_factory=dict)  # top 20 actor_id
    per_day: list[tuple[dt.date, int]] = field(default_factory=list)  # UTC days with events, ascending


class PartialWriteError(Exception):
    """Some records of a ``write`` were stored and some were not (a bulk answer with failed items).

    ``permanent``/``transient``: record id -> reason, for the records refused for good (the
    flusher dead-letters them) or for now (they stay buffered and are retried). Every other record
    of the call was stored (or was a duplicate of a stored one, which counts as stored).
    """

    def __init__(self, permanent: dict[str, str], transient: dict[str, str]) -> None:
        super().__init__(f"{len(permanent)} refused, {len(transient)} to retry")
        self.permanent = permanent
        self.transient = transient


class AuditSearchBackend(StorageBackend):
    """A storage backend for the ``audit_logs`` collection that can also search it."""

    def search(
        self,
        query: AuditQuery,
        *,
        order: Order = "desc",
        page_size: int = 20,
        page: int = 1,
        after: SearchCursor | None = None,
    ) -> SearchPage:
        """One page of matches ordered by (timestamp, event_id) in ``order``. With ``after`` the
        page starts after that position and ``page`` is ignored (deep paging without offsets)."""
        raise NotImplementedError

    def export(self, query: AuditQuery, *, order: Order = "asc") -> Iterator[dict[str, Any]]:
        """Every match, in order, in constant memory (no 10,000 cap)."""
        raise NotImplementedError

    def stats(self, query: AuditQuery) -> AuditStats:
        raise NotImplementedError

    def drop_months_before(self, month: dt.date) -> list[str]:
        """Retention: delete every stored event of the months before ``month`` (its day is 1),
        whole months at a time; returns what was dropped (index names, or ``YYYY-MM`` months)."""
        raise NotImplementedError
