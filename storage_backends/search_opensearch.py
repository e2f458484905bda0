"""The audit search plugin on the OpenSearch/Elasticsearch API (opensearch-py; docs/api.md §9).

Events live in monthly indices ``<prefix>-YYYY.MM`` (by the event's UTC timestamp) behind the
alias ``<prefix>``; one composable index template ``<prefix>`` (created or updated at first use)
gives every new monthly index its strict mapping, its analyzer and the alias, so indices created
by a bulk write (or by another process) are always right. Works with OpenSearch 1.x-3.x and
Elasticsearch 7.10+-compatible servers (point-in-time needs OpenSearch >= 2.4; see ``export``).

    backend = OpenSearchAuditSearch()                        # settings.AUDIT_SEARCH_* (or keywords)
    backend.write("audit_logs", records)                     # bulk create, _id = event_id
    backend.search(AuditQuery(q="翻译"), order="desc", page_size=20)

Choices and their reasons:
- ``op_type=create`` with ``_id=event_id``: the first stored version of an event wins, a resend is
  a 409 item, which counts as stored. The id is unique per monthly index: a resend whose
  timestamp falls in another month (only possible when the client lets the service stamp it)
  would be stored again there; checking every month first would cost a search per chunk.
- ``timestamp`` is a ``date`` (milliseconds; aggregations and dashboards use it) and
  ``timestamp_us`` a ``long`` of epoch microseconds, which orders, bounds and positions cursors
  exactly as the SQL plugin does (events within one millisecond still sort by time). Not
  ``date_nanos``: it only holds 1970-2262, and the contract accepts years 1000-9999.
- Refresh (``AUDIT_SEARCH_REFRESH``): ``false`` by default. A bulk write returns as soon as the
  cluster accepted it and the events become searchable at the next refresh (``refresh_interval``,
  1 s): a forced refresh per flush would make small segments and slow ingest. ``wait_for`` makes
  the flush return only once they are searchable (tests, or read-after-flush needs).
- Pages past ``from + size = 10,000`` (``index.max_result_window``) are reached by walking
  ``search_after`` over sort values only (no ``_source``), 10,000 hits per request; cursors
  (``after``) and ``export`` use ``search_after`` directly and never ``from``.
- The template's priority is ``100 + len(prefix)``: templates of prefixes where one extends the
  other (``audit`` and ``audit-test``) overlap, and overlapping templates must differ in priority;
  the longer, more specific prefix wins.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from opensearchpy import OpenSearch
from opensearchpy.exceptions import (
    ConnectionError as OpenSearchConnectionError,
)
from opensearchpy.exceptions import (
    NotFoundError,
    OpenSearchException,
    RequestError,
    TransportError,
)
from opensearchpy.serializer import JSONSerializer

from core import tracing
from storage_backends.base import PermanentWriteError, TransientWriteError
from storage_backends.search import (
    STORED_FIELDS,
    AuditQuery,
    AuditSearchBackend,
    AuditStats,
    Order,
    PartialWriteError,
    SearchCursor,
    SearchPage,
)

logger = logging.getLogger(__name__)
#: The attributes of this plugin's spans (core.tracing).
_SPAN: dict[str, Any] = {"attributes": {"db.system.name": "opensearch"}, "backend": "opensearch"}

FIELDS = STORED_FIELDS
#: Keys of a decoded buffer record that are the buffer's bookkeeping, not the event's: the first
#: acceptance time becomes ``accepted_at`` (as in the SQL plugin), the rest is not stored.
_BUFFER_KEYS = ("created_at", "updated_at")
#: index.max_result_window of a default index: ``from + size`` may not exceed it.
MAX_RESULT_WINDOW = 10_000
#: Hits per request of ``export``: about 1 MB of typical events, a bounded memory per batch.
EXPORT_BATCH = 1000
#: Batches per time window of ``export`` (see there): few enough that a request sorts little more
#: than its batch, enough that the per-window requests are a small share.
WINDOW_BATCHES = 4
#: How long a point-in-time lives between two batches of ``export`` (renewed by each batch): a
#: client reading the stream slowly must not lose it, an abandoned one must not pin segments long.
PIT_KEEP_ALIVE = "5m"
#: Bulk requests are cut at this many events or bytes, whichever comes first (the flusher's
#: chunks reach 5,000 events; 10 MB stays far below http.max_content_length, 100 MB).
BULK_MAX_EVENTS = 5000
BULK_MAX_BYTES = 10 * 1024 * 1024
#: Top entries of the stats' terms aggregations (docs/api.md §9), and how many each index reports
#: (a larger shard_size keeps the top 20 exact across the monthly indices in practice).
TOP_TERMS = 20
TERMS_SHARD_SIZE = 200
#: Keywords longer than this are stored but not indexed (Lucene refuses terms over 32,766 bytes;
#: ``ip``, ``user_agent`` and ``request_id`` are "as sent", without a length limit in the contract).
KEYWORD_IGNORE_ABOVE = 1024

#: Error types of a failed bulk item that may succeed later: the index is closed or blocked (a
#: full disk sets ``read_only_allow_delete``), missing (auto-creation off and deleted meanwhile),
#: or the node pushed back. Every other 4xx item is refused for good (mapping, parsing).
_TRANSIENT_ITEM_ERRORS = frozenset(
    {
        "cluster_block_exception",
        "index_closed_exception",
        "index_not_found_exception",
        "es_rejected_execution_exception",
        "rejected_execution_exception",
        "unavailable_shards_exception",
        "process_cluster_event_timeout_exception",
        "circuit_breaking_exception",
        "timeout_exception",
    }
)


# CJK scripts (radicals, kana, bopomofo, ideographs of the BMP and the supplementary planes, Hangul):
# what the cjk_bigram filter pairs.
_CJK_CHARS = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff"
_CJK = re.compile(f"[{_CJK_CHARS}]")
_CJK_PAIR = re.compile(f"[{_CJK_CHARS}]{{2}}")


class _OrjsonSerializer(JSONSerializer):
    """orjson for requests and answers: bulk bodies and export batches are most of the CPU here."""

    def loads(self, s: str | bytes) -> Any:
        return orjson.loads(s)

    def dumps(self, data: Any) -> str:
        if isinstance(data, (str, bytes)):
            return data  # type: ignore[return-value]  # already serialized (bulk bodies)
        return orjson.dumps(data, default=super().default).decode()


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: audit timestamps are aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _micros(value: dt.datetime) -> int:
    """Microseconds since the epoch, exactly (``timestamp_us``; negative before 1970)."""
    delta = value.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _parse_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, (int, float)):  # epoch millis, if something else wrote the index
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _document(record: dict[str, Any]) -> dict[str, Any]:
    """A decoded record as the stored document. Keys other than the event's and the buffer's stay
    in, so the strict mapping refuses them (a schema drift is dead-lettered, not silently lost)."""
    document = {key: value for key, value in record.items() if key not in _BUFFER_KEYS}
    accepted = record.get("accepted_at") or record.get("created_at") or record["timestamp"]
    document["timestamp"] = _iso(record["timestamp"])
    document["timestamp_us"] = _micros(record["timestamp"])
    document["accepted_at"] = _iso(accepted)
    document["message"] = record.get("message") or ""
    document["details"] = record.get("details") or {}
    return document


def _event(source: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the interface's record: every field, datetimes aware."""
    event = {name: source.get(name) for name in FIELDS}
    event["timestamp"] = _parse_timestamp(source["timestamp"])
    if event["accepted_at"] is not None:
        event["accepted_at"] = _parse_timestamp(event["accepted_at"])
    if event["details"] is None:
        event["details"] = {}
    return event


class OpenSearchAuditSearch(AuditSearchBackend):
    """Audit events in monthly OpenSearch/Elasticsearch indices (see the module docstring).

    Keyword arguments override the ``AUDIT_SEARCH_*`` settings (tests use their own prefix).
    Thread-safe: one client (a urllib3 connection pool) per instance.
    """

    name = "opensearch"
    #: Records per flush chunk (storage_backends.flush): a bulk request has a large fixed cost in
    #: the cluster, so a few thousand events per request index several times faster per event
    #: than the 500 the flusher falls back to for a slow database (osmem: 300 vs 770 events/s).
    #: 5,000 typical events are about 3 MB, within Elastic's advice of 5-15 MB per bulk request.
    flush_chunk_bounds = (2500, 5000)

    def __init__(
        self,
        *,
        url: str | None = None,
        index_prefix: str | None = None,
        refresh: str | None = None,
        client: OpenSearch | None = None,
    ) -> None:
        url = url if url is not None else settings.AUDIT_SEARCH_URL
        if not url and client is None:
            raise ImproperlyConfigured(
                "AUDIT_SEARCH_URL is not set: storage_backends.search_opensearch.OpenSearchAuditSearch "
                "needs the address of an OpenSearch/Elasticsearch server (e.g. http://127.0.0.1:9200)"
            )
        self.prefix = index_prefix or settings.AUDIT_SEARCH_INDEX_PREFIX
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", self.prefix):
            raise ImproperlyConfigured(
                f"AUDIT_SEARCH_INDEX_PREFIX={self.prefix!r}: use lowercase letters, digits, '-', '_', '.'"
            )
        self.alias = self.prefix
        self.refresh = refresh or settings.AUDIT_SEARCH_REFRESH
        self.timeout = settings.AUDIT_SEARCH_TIMEOUT
        self.bulk_timeout = settings.AUDIT_SEARCH_BULK_TIMEOUT
        self.health_timeout = settings.AUDIT_SEARCH_HEALTH_TIMEOUT
        auth = None
        if settings.AUDIT_SEARCH_USERNAME:
            auth = (settings.AUDIT_SEARCH_USERNAME, settings.AUDIT_SEARCH_PASSWORD or "")
        self.client = client or OpenSearch(
            hosts=[url],
            http_auth=auth,
            verify_certs=settings.AUDIT_SEARCH_VERIFY_CERTS,
            ca_certs=settings.AUDIT_SEARCH_CA_CERTS,
            ssl_show_warn=settings.AUDIT_SEARCH_VERIFY_CERTS,
            timeout=self.timeout,
            # The flusher retries a failed write itself (the records stay buffered); a retry here
            # would only hold the flush lock longer.
            max_retries=0,
            retry_on_timeout=False,
            serializer=_OrjsonSerializer(),
            pool_maxsize=8,
        )
        self._template_ready = False
        self._known_indices: set[str] = set()
        self._lock = threading.Lock()

    # --- index layout -------------------------------------------------------------------------

    def index_for(self, timestamp: dt.datetime) -> str:
        """The monthly index of an event: ``<prefix>-YYYY.MM`` of its UTC timestamp."""
        utc = timestamp.astimezone(dt.UTC)
        return f"{self.prefix}-{utc.year:04d}.{utc.month:02d}"

    def template_body(self) -> dict[str, Any]:
        """The composable index template of the monthly indices (strict mapping, analyzer, alias)."""
        keyword = {"type": "keyword"}
        long_keyword = {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
        return {
            "index_patterns": [f"{self.prefix}-*"],
            "priority": 100 + len(self.prefix),
            "_meta": {"managed_by": "persistence-service", "description": "audit events (docs/api.md §9)"},
            "template": {
                "settings": {
                    "index": {"number_of_shards": 1},
                    "analysis": {
                        "analyzer": {
                            # Latin words by the standard tokenizer; Chinese, Japanese and Korean
                            # as overlapping character pairs (翻译 matches 删除翻译会话), full-width
                            # forms folded first, so a search needs no dictionary.
                            "audit_message": {
                                "type": "custom",
                                "tokenizer": "standard",
                                "filter": ["cjk_width", "lowercase", "cjk_bigram"],
                            },
                            # One token per CJK character (the standard tokenizer's own), for the
                            # one-character terms bigrams cannot match (翻 finds 删除翻译会话).
                            "audit_message_chars": {
                                "type": "custom",
                                "tokenizer": "standard",
                                "filter": ["cjk_width", "lowercase"],
                            },
                        }
                    },
                },
                "mappings": {
                    "dynamic": "strict",
                    "properties": {
                        "event_id": keyword,
                        "timestamp": {"type": "date"},
                        "timestamp_us": {"type": "long"},
                        "actor_id": keyword,
                        "actor_type": keyword,
                        "action": keyword,
                        "resource_type": keyword,
                        "resource_id": keyword,
                        "outcome": keyword,
                        "message": {
                            "type": "text",
                            "analyzer": "audit_message",
                            "fields": {"chars": {"type": "text", "analyzer": "audit_message_chars"}},
                        },
                        "ip": long_keyword,
                        "user_agent": long_keyword,
                        "request_id": long_keyword,
                        # Stored in _source, returned as sent, never indexed (any shape of JSON).
                        "details": {"type": "object", "enabled": False},
                        # When the service accepted it (the buffer's clock); not searched.
                        "accepted_at": {"type": "date", "index": False},
                    },
                },
                "aliases": {self.alias: {}},
            },
        }

    def ensure_template(self) -> None:
        """Create or update the index template (idempotent; once per instance unless it fails).

        A refusal (no privilege, a server that does not know a setting) raises
        ``TransientWriteError`` from ``write``: the events must wait for an operator, not be
        dead-lettered for a cluster-side problem."""
        if self._template_ready:
            return
        with self._lock:
            if not self._template_ready:
                try:
                    self.client.indices.put_index_template(name=self.prefix, body=self.template_body())
                except TransportError as exc:
                    if isinstance(exc, OpenSearchConnectionError):
                        raise
                    raise TransientWriteError(
                        f"the search cluster refused the index template {self.prefix!r}: {exc}"
                    ) from exc
                self._template_ready = True

    def _ensure_index(self, index: str) -> None:
        """Create a monthly index from the template unless this instance knows it exists, so a
        cluster with ``action.auto_create_index`` off works as well (one request per month)."""
        if index in self._known_indices:
            return
        try:
            self.client.indices.create(index=index)
        except RequestError as exc:
            if exc.error not in ("resource_already_exists_exception", "index_already_exists_exception"):
                # e.g. the cluster's shard limit: its events wait, they are not at fault
                raise TransientWriteError(f"cannot create the index {index}: {exc}") from exc
        self._known_indices.add(index)

    def monthly_indices(self) -> list[str]:
        """The monthly indices of this prefix (open or closed), oldest first."""
        pattern = re.compile(rf"^{re.escape(self.prefix)}-\d{{4}}\.\d{{2}}$")
        try:
            rows = self.client.cat.indices(
                index=f"{self.prefix}-*", format="json", h="index", expand_wildcards="all"
            )
        except NotFoundError:
            return []
        return sorted(row["index"] for row in rows if pattern.match(row["index"]))

    def refresh_indices(self) -> None:
        """Make every written event searchable now (tests; production relies on the interval)."""
        self.client.indices.refresh(index=self.alias, params={"ignore_unavailable": "true"})

    # --- writes -------------------------------------------------------------------------------

    @tracing.traced("search.write", **_SPAN)
    def write(
        self, collection: str, records: Sequence[dict[str, Any]], *, sizes: Sequence[int] | None = None
    ) -> int:
        """Store new events with bulk ``create`` requests (one per ``BULK_MAX_EVENTS``/``BULK_MAX_BYTES``).

        Returns how many records are stored (created now or duplicates of stored ones). Every item
        of every bulk answer is read: 409 is a duplicate (stored); 429, 5xx and the errors of
        ``_TRANSIENT_ITEM_ERRORS`` are transient; other refusals (mapping, parsing) permanent.
        When any item failed, ``PartialWriteError`` names them (the others are stored). A failure
        of a whole request raises ``TransientWriteError`` (unreachable, timeout, 429/5xx, auth) or
        ``PermanentWriteError`` (the cluster refused the request itself, e.g. 413). Memory: one
        serialized bulk body (<= ``BULK_MAX_BYTES``) at a time.
        """
        if not records:
            return 0
        tracing.set_attributes(record_count=len(records))
        try:
            self.ensure_template()
            stored = 0
            permanent: dict[str, str] = {}
            transient: dict[str, str] = {}
            for indices, ids, body in self._bulk_bodies(records, permanent):
                for index in indices:
                    self._ensure_index(index)
                answer = self.client.bulk(
                    body=body,
                    params={"refresh": self.refresh, "timeout": f"{self.bulk_timeout}s"},
                    request_timeout=self.bulk_timeout,
                )
                if not answer.get("errors"):
                    stored += len(ids)
                    continue
                for event_id, item in zip(ids, answer["items"], strict=True):
                    result = next(iter(item.values()))
                    status = int(result.get("status", 500))
                    if status < 300 or status == 409:
                        stored += 1
                        continue
                    error = result.get("error") or {}
                    kind = error.get("type", "") if isinstance(error, dict) else ""
                    reason = (
                        f"{status} {kind}: {error.get('reason', '') if isinstance(error, dict) else error}"
                    )
                    if kind == "index_not_found_exception":
                        self._known_indices.discard(result.get("_index", ""))
                    if status == 429 or status >= 500 or status == 403 or kind in _TRANSIENT_ITEM_ERRORS:
                        transient[event_id] = reason
                    else:
                        permanent[event_id] = reason
        except OpenSearchConnectionError as exc:  # unreachable, reset, timed out (ConnectionTimeout)
            raise TransientWriteError(f"search cluster unreachable: {exc}") from exc
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 503
            if status in (401, 403, 408, 429) or status >= 500:
                raise TransientWriteError(f"search cluster answered {status}: {exc.error}") from exc
            raise PermanentWriteError(f"search cluster refused the request ({status}): {exc.error}") from exc
        except OpenSearchException as exc:  # serialization and other client-side failures
            raise TransientWriteError(f"search write failed: {exc}") from exc
        if permanent or transient:
            logger.warning(
                "audit bulk write: %d refused, %d to retry, e.g. %s",
                len(permanent),
                len(transient),
                next(iter((permanent or transient).values())),
            )
            raise PartialWriteError(permanent, transient)
        return stored

    def _bulk_bodies(
        self, records: Sequence[dict[str, Any]], unusable: dict[str, str]
    ) -> list[tuple[set[str], list[str], bytes]]:
        """Records as NDJSON bulk bodies: (indices they go to, their event ids in order, body).
        A record that cannot be turned into a document (no id, a naive or missing timestamp, a
        value JSON cannot hold) is not sent: it lands in ``unusable`` (id -> reason)."""
        batches: list[tuple[set[str], list[str], bytes]] = []
        parts: list[bytes] = []
        ids: list[str] = []
        indices: set[str] = set()
        size = 0
        for position, record in enumerate(records):
            event_id = str(record.get("event_id") or f"#{position}")
            try:
                index = self.index_for(record["timestamp"])
                line = (
                    orjson.dumps({"create": {"_index": index, "_id": record["event_id"]}})
                    + b"\n"
                    + orjson.dumps(_document(record))
                    + b"\n"
                )
            except (KeyError, TypeError, ValueError, AttributeError, orjson.JSONEncodeError) as exc:
                unusable[event_id] = f"not an audit event: {type(exc).__name__}: {exc}"
                continue
            if ids and (len(ids) >= BULK_MAX_EVENTS or size + len(line) > BULK_MAX_BYTES):
                batches.append((indices, ids, b"".join(parts)))
                parts, ids, indices, size = [], [], set(), 0
            parts.append(line)
            ids.append(event_id)
            indices.add(index)
            size += len(line)
        if ids:
            batches.append((indices, ids, b"".join(parts)))
        return batches

    # --- reads --------------------------------------------------------------------------------

    @tracing.traced("search.read", **_SPAN)
    def read(self, collection: str, record_id: str) -> dict[str, Any] | None:
        """The stored event with this id (the earliest, should a later month hold a resend)."""
        answer = self._search(
            {"query": {"ids": {"values": [record_id]}}, "size": 1, "sort": self._sort("asc")}
        )
        hits = answer["hits"]["hits"]
        return _event(hits[0]["_source"]) if hits else None

    def existing_ids(self, collection: str, record_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(record_ids))
        found: set[str] = set()
        for start in range(0, len(ids), EXPORT_BATCH):
            chunk = ids[start : start + EXPORT_BATCH]
            answer = self._search(
                {"query": {"ids": {"values": chunk}}, "size": len(chunk) * 2, "_source": False}
            )
            found.update(hit["_id"] for hit in answer["hits"]["hits"])
        return found

    def delete(self, collection: str, record_ids: Iterable[str]) -> int:
        """Not part of the API (audit events are append-only); for operators and tests. One
        delete-by-query per 1,000 ids, refreshed so that searches no longer see them."""
        ids = list(dict.fromkeys(record_ids))
        deleted = 0
        for start in range(0, len(ids), EXPORT_BATCH):
            answer = self.client.delete_by_query(
                index=self.alias,
                body={"query": {"ids": {"values": ids[start : start + EXPORT_BATCH]}}},
                params={"refresh": "true", "ignore_unavailable": "true", "allow_no_indices": "true"},
                request_timeout=self.bulk_timeout,
            )
            deleted += int(answer.get("deleted", 0))
        return deleted

    def health_check(self) -> bool:
        """True when the cluster answers its health API (yellow or green) within the health timeout."""
        try:
            health = self.client.cluster.health(request_timeout=self.health_timeout)
        except (OpenSearchException, OSError):
            return False
        return health.get("status") in ("green", "yellow")

    @tracing.traced("search.query", **_SPAN)
    def search(
        self,
        query: AuditQuery,
        *,
        order: Order = "desc",
        page_size: int = 20,
        page: int = 1,
        after: SearchCursor | None = None,
    ) -> SearchPage:
        """One page: ``from``/``size`` while ``from + size <= 10,000``, ``search_after`` beyond
        (walking sort values only, 10,000 per request) and for cursors. One request per page
        (plus one per 10,000 skipped hits past the window); the total is exact (track_total_hits).

        Not read in time windows like ``export``: the count-and-bounds request the windows need
        costs more than it saves on one page (measured on osmem, 100,000 events: p50 43 -> 138 ms
        for a word found in 10% of them).
        """
        body: dict[str, Any] = {
            "query": self._query(query),
            "sort": self._sort(order),
            "track_total_hits": True,
        }
        if after is not None:
            # One more than a page tells whether another page follows.
            body.update(size=page_size + 1, search_after=[_micros(after.timestamp), after.event_id])
            answer = self._search(body)
            hits = answer["hits"]["hits"]
            items = [_event(hit["_source"]) for hit in hits[:page_size]]
            more = len(hits) > page_size
            return SearchPage(items, self._total(answer), self._cursor(items) if more else None)
        offset = (page - 1) * page_size
        if offset + page_size <= MAX_RESULT_WINDOW:
            body.update({"from": offset, "size": page_size})
        else:
            position = self._position_of(query, order, offset)
            if position is None:  # fewer matches than the offset: an empty page
                total = self._total(
                    self._search({"query": body["query"], "size": 0, "track_total_hits": True})
                )
                return SearchPage([], total, None)
            body.update(size=page_size, search_after=position)
        answer = self._search(body)
        items = [_event(hit["_source"]) for hit in answer["hits"]["hits"]]
        total = self._total(answer)
        more = offset + len(items) < total and bool(items)
        return SearchPage(items, total, self._cursor(items) if more else None)

    def export(self, query: AuditQuery, *, order: Order = "asc") -> Iterator[dict[str, Any]]:
        """Every match in order, ``EXPORT_BATCH`` at a time, over a point-in-time: the export sees
        the indices as they were when it started, whatever is written or dropped meanwhile. The
        point-in-time is deleted at the end, and when the consumer stops early (``close()``).

        The matches are read in consecutive time windows (``timestamp_us`` ranges, each sized for
        about ``WINDOW_BATCHES`` batches and adapted to what the previous one held), with
        ``search_after`` inside and across them. A request then sorts only its window's matches,
        not every match left: the cost of a batch stays flat however many events there are (a
        plain ``search_after`` makes the server sort all the remaining matches per batch, which an
        emulator does literally: 100,000 events exported at 825/s). One extra request first: the
        count and the time bounds of the matches.

        Servers without the OpenSearch point-in-time API (Elasticsearch 7, OpenSearch < 2.4) get
        the same reads on the alias without one: still complete and in order for events stored
        before the export began (the log is append-only), but an event written meanwhile may
        appear, and a month dropped meanwhile disappears. Memory: one batch.
        """
        pit_id = self._open_pit()

        def search(body: dict[str, Any]) -> dict[str, Any]:
            nonlocal pit_id
            # A span per request, not around the generator (it would end before the first event).
            with tracing.span("search.export", point_in_time=pit_id is not None, **_SPAN):
                if pit_id is None:
                    return self._search(body)
                body["pit"] = {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE}
                answer = self.client.search(body=body, request_timeout=self.timeout)
                pit_id = answer.get("pit_id", pit_id)
                return answer

        try:
            filters = self._query(query)
            bounds = search(
                {
                    "query": filters,
                    "size": 0,
                    "track_total_hits": True,
                    "aggs": {
                        "lo": {"min": {"field": "timestamp_us"}},
                        "hi": {"max": {"field": "timestamp_us"}},
                    },
                }
            )
            count = self._total(bounds)
            if not count:
                return
            low = int(bounds["aggregations"]["lo"]["value"])
            high = int(bounds["aggregations"]["hi"]["value"]) + 1  # windows are [start, end)
            width = max(1, (high - low) * EXPORT_BATCH * WINDOW_BATCHES // count)
            edge = low if order == "asc" else high
            after: list[Any] | None = None
            while True:
                start, end = (edge, edge + width) if order == "asc" else (edge - width, edge)
                window = {
                    "bool": {"filter": [filters, {"range": {"timestamp_us": {"gte": start, "lt": end}}}]}
                }
                body: dict[str, Any] = {"query": window, "sort": self._sort(order), "size": EXPORT_BATCH}
                seen = 0
                while True:
                    if after is not None:
                        body["search_after"] = after
                    hits = search(body)["hits"]["hits"]
                    for hit in hits:
                        yield _event(hit["_source"])
                    seen += len(hits)
                    if hits:
                        after = hits[-1]["sort"]
                    if len(hits) < EXPORT_BATCH:
                        break
                # The next window holds about WINDOW_BATCHES batches if events arrive as in this one.
                if seen > 2 * WINDOW_BATCHES * EXPORT_BATCH:
                    width = max(1, width // 2)
                elif seen < WINDOW_BATCHES * EXPORT_BATCH // 2:
                    width *= 2
                edge = end if order == "asc" else start
                if (order == "asc" and edge >= high) or (order == "desc" and edge <= low):
                    return
        finally:
            if pit_id is not None:
                self._close_pit(pit_id)

    def _open_pit(self) -> str | None:
        if not self.client.indices.exists_alias(name=self.alias):
            return None  # nothing stored yet; the plain search answers "no hits"
        try:
            answer = self.client.create_pit(index=self.alias, params={"keep_alive": PIT_KEEP_ALIVE})
        except (NotFoundError, RequestError) as exc:  # no point-in-time API on this server
            logger.info("audit export without point-in-time (%s): plain search_after", exc.error)
            return None
        return answer["pit_id"]

    def _close_pit(self, pit_id: str) -> None:
        try:
            self.client.delete_pit(body={"pit_id": [pit_id]})
        except OpenSearchException as exc:  # it expires by itself after PIT_KEEP_ALIVE
            logger.warning("audit export: could not delete the point-in-time: %s", exc)

    @tracing.traced("search.stats", **_SPAN)
    def stats(self, query: AuditQuery) -> AuditStats:
        """Counts by aggregations in one request: top 20 actions and actors (count desc, then key),
        every outcome, and the UTC days with events."""
        by_count = [{"_count": "desc"}, {"_key": "asc"}]
        terms = {"size": TOP_TERMS, "shard_size": TERMS_SHARD_SIZE, "order": by_count}
        body = {
            "query": self._query(query),
            "size": 0,
            "track_total_hits": True,
            "aggs": {
                "by_action": {"terms": {"field": "action", **terms}},
                "by_actor": {"terms": {"field": "actor_id", **terms}},
                "by_outcome": {"terms": {"field": "outcome", "size": 10, "order": by_count}},
                "per_day": {
                    "date_histogram": {
                        "field": "timestamp",
                        "calendar_interval": "day",
                        "time_zone": "UTC",
                        "min_doc_count": 1,
                    }
                },
            },
        }
        answer = self._search(body)
        aggregations = answer.get("aggregations") or {}

        def buckets(name: str) -> dict[str, int]:
            return {b["key"]: b["doc_count"] for b in aggregations.get(name, {}).get("buckets", [])}

        per_day = [
            (dt.datetime.fromtimestamp(b["key"] / 1000, tz=dt.UTC).date(), b["doc_count"])
            for b in aggregations.get("per_day", {}).get("buckets", [])
            if b["doc_count"]
        ]
        return AuditStats(
            total=self._total(answer),
            by_action=buckets("by_action"),
            by_outcome=buckets("by_outcome"),
            by_actor=buckets("by_actor"),
            per_day=per_day,
        )

    @tracing.traced("search.retention", **_SPAN)
    def drop_months_before(self, month: dt.date) -> list[str]:
        """Delete the monthly indices of the months before ``month`` in one request; returns their
        months as ``YYYY-MM`` (as the SQL plugin does; the index names go to the log)."""
        limit = f"{self.prefix}-{month.year:04d}.{month.month:02d}"
        old = [index for index in self.monthly_indices() if index < limit]
        if old:
            self.client.indices.delete(index=",".join(old))
            self._known_indices.difference_update(old)
            logger.info("audit retention: deleted the indices %s", ", ".join(old))
        return [index[len(self.prefix) + 1 :].replace(".", "-") for index in old]

    # --- query building -----------------------------------------------------------------------

    @staticmethod
    def _sort(order: Order) -> list[dict[str, Any]]:
        return [{"timestamp_us": {"order": order}}, {"event_id": {"order": order}}]

    @staticmethod
    def _query(query: AuditQuery) -> dict[str, Any]:
        """The filters as one bool filter (no scoring: results are ordered by time)."""
        filters: list[dict[str, Any]] = []
        for name in ("actor_id", "actor_type", "action", "resource_type", "resource_id", "outcome"):
            value = getattr(query, name)
            if value is not None:
                filters.append({"term": {name: value}})
        if query.action_prefix is not None:
            filters.append({"prefix": {"action": query.action_prefix}})
        bounds = {}
        if query.time_from is not None:
            bounds["gte"] = _micros(query.time_from)
        if query.time_to is not None:
            bounds["lte"] = _micros(query.time_to)
        if bounds:
            filters.append({"range": {"timestamp_us": bounds}})
        if query.q:
            # Every term must occur. A term whose CJK characters stand alone (翻, 翻a) goes to the
            # one-token-per-character field; the others to the bigram field, where 翻译 must
            # occur as a pair (a match on single characters would accept 翻 ... 译 apart).
            terms = query.q.split()
            alone = [term for term in terms if _CJK.search(term) and not _CJK_PAIR.search(term)]
            paired = [term for term in terms if term not in alone]
            if paired:
                filters.append({"match": {"message": {"query": " ".join(paired), "operator": "and"}}})
            if alone:
                filters.append({"match": {"message.chars": {"query": " ".join(alone), "operator": "and"}}})
        return {"bool": {"filter": filters}} if filters else {"match_all": {}}

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        """A search on the alias; no index yet (nothing written) is an empty answer, not an error."""
        return self.client.search(
            index=self.alias,
            body=body,
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
            request_timeout=self.timeout,
        )

    @staticmethod
    def _total(answer: dict[str, Any]) -> int:
        total = answer["hits"]["total"]
        return total["value"] if isinstance(total, dict) else int(total)

    @staticmethod
    def _cursor(items: list[dict[str, Any]]) -> SearchCursor | None:
        if not items:
            return None
        last = items[-1]
        return SearchCursor(timestamp=last["timestamp"], event_id=last["event_id"])

    def _position_of(self, query: AuditQuery, order: Order, offset: int) -> list[Any] | None:
        """The sort values of the ``offset``-th match (0-based: the last one before the page), by
        walking ``search_after`` over sort values only; None when there are not that many."""
        body: dict[str, Any] = {
            "query": self._query(query),
            "sort": self._sort(order),
            "_source": False,
            "track_total_hits": False,
        }
        skipped = 0
        position: list[Any] | None = None
        while skipped < offset:
            body["size"] = min(MAX_RESULT_WINDOW, offset - skipped)
            if position is not None:
                body["search_after"] = position
            hits = self._search(body)["hits"]["hits"]
            if len(hits) < body["size"]:
                return None
            skipped += len(hits)
            position = hits[-1]["sort"]
        return position
