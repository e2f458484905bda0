"""The OpenSearch audit search plugin against a real OpenSearch-API server over HTTP (osmem-server,
or a real cluster at AUDIT_SEARCH_URL for the ``external`` cases): index template and mapping,
monthly indices behind the alias, bulk create semantics and every failure path of a bulk answer,
filters, full text in English and Chinese, ordering, deep paging, export over a point-in-time,
stats and retention."""

# The fixtures come from tests.audit.opensearch_fixtures (imported, so the test parameters shadow
# them: F811); full-width letters are what the analyzer's cjk_width test is about (RUF001).
# ruff: noqa: F811, RUF001

from __future__ import annotations

import datetime as dt
import json
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opensearchpy.exceptions import NotFoundError

from storage_backends.base import PermanentWriteError, TransientWriteError
from storage_backends.search import AuditQuery, PartialWriteError, SearchCursor
from storage_backends.search_opensearch import MAX_RESULT_WINDOW, OpenSearchAuditSearch
from tests.audit.opensearch_fixtures import (  # noqa: F401
    SEARCH_SERVERS,
    audit_event,
    new_backend,
    os_backend,
    os_url,
    remove,
    server_url,
    store,
)
from tests.processes import free_port

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in events]


# --- template, mapping, indices ------------------------------------------------------------------


def test_template_has_a_strict_mapping_a_cjk_analyzer_and_the_alias(os_backend):
    # when
    store(os_backend, [audit_event("e1")])

    # then
    [entry] = os_backend.client.indices.get_index_template(name=os_backend.prefix)["index_templates"]
    template = entry["index_template"]
    assert template["index_patterns"] == [f"{os_backend.prefix}-*"]
    assert os_backend.alias in template["template"]["aliases"]
    index = os_backend.index_for(at(2026, 3, 1))
    mapping = os_backend.client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    properties = mapping["properties"]
    assert properties["details"] == {"type": "object", "enabled": False}
    assert properties["message"]["type"] == "text"
    for name in (
        "event_id",
        "actor_id",
        "action",
        "resource_type",
        "resource_id",
        "outcome",
        "ip",
        "request_id",
    ):
        assert properties[name]["type"] == "keyword", name
    assert properties["timestamp"]["type"] == "date"
    assert properties["timestamp_us"]["type"] == "long"
    tokens = os_backend.client.indices.analyze(
        index=index, body={"analyzer": "audit_message", "text": "删除翻译会话 Ｈｅｌｌｏ World"}
    )["tokens"]
    assert [t["token"] for t in tokens] == ["删除", "除翻", "翻译", "译会", "会话", "hello", "world"]


def test_details_are_returned_as_sent_but_not_searchable(os_backend):
    details = {"reason": "cleanup", "rows": [1, 2, {"nested": None}], "翻译": "值"}
    store(os_backend, [audit_event("e1", details=details)])

    assert os_backend.read("audit_logs", "e1")["details"] == details
    # details is not indexed: a query on it finds nothing (strict mapping knows no such field)
    answer = os_backend.client.search(
        index=os_backend.alias, body={"query": {"term": {"details.reason": "cleanup"}}}
    )
    assert answer["hits"]["total"]["value"] == 0


def test_template_creation_is_idempotent(os_url):
    prefix = f"audit-os-test-{uuid.uuid4().hex[:10]}"
    first, second = new_backend(os_url, prefix=prefix), new_backend(os_url, prefix=prefix)
    try:
        store(first, [audit_event("a")])
        store(second, [audit_event("b")])  # puts the same template again and finds the index made

        assert first.monthly_indices() == [f"{prefix}-2026.03"]
        assert ids(first.search(AuditQuery(), order="asc").items) == ["a", "b"]
    finally:
        remove(first)


def test_events_go_to_the_monthly_index_of_their_utc_timestamp(os_backend):
    # given: 2026-01-31 23:30 at UTC-2 is February in UTC
    late_january_local = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    events = [
        audit_event("feb", timestamp=late_january_local),
        audit_event("dec", timestamp=at(2025, 12, 31, 23, 59, 59, 999999)),
        audit_event("jan", timestamp=at(2026, 1, 1)),
    ]

    # when
    store(os_backend, events)

    # then
    p = os_backend.prefix
    assert os_backend.monthly_indices() == [f"{p}-2025.12", f"{p}-2026.01", f"{p}-2026.02"]
    for index, event_id in [(f"{p}-2025.12", "dec"), (f"{p}-2026.01", "jan"), (f"{p}-2026.02", "feb")]:
        hits = os_backend.client.search(index=index)["hits"]["hits"]
        assert [h["_id"] for h in hits] == [event_id]
    aliases = os_backend.client.indices.get_alias(name=os_backend.alias)
    assert sorted(aliases) == os_backend.monthly_indices()
    assert ids(os_backend.search(AuditQuery(), order="asc").items) == ["dec", "jan", "feb"]
    assert os_backend.read("audit_logs", "feb")["timestamp"] == at(2026, 2, 1, 1, 30)


# --- bulk writes ----------------------------------------------------------------------------------


def test_a_resent_event_counts_as_stored_and_the_first_version_is_kept(os_backend):
    store(os_backend, [audit_event("e1", message="first")])

    # when: the same id again, alone and with a new one, and twice in one call
    assert os_backend.write("audit_logs", [audit_event("e1", message="second")]) == 1
    assert os_backend.write("audit_logs", [audit_event("e1", message="third"), audit_event("e2")]) == 2
    assert (
        os_backend.write("audit_logs", [audit_event("e3", message="x"), audit_event("e3", message="y")]) == 2
    )
    os_backend.refresh_indices()

    # then
    assert os_backend.read("audit_logs", "e1")["message"] == "first"
    assert os_backend.read("audit_logs", "e3")["message"] == "x"
    assert os_backend.search(AuditQuery()).total == 3


def test_an_item_the_strict_mapping_refuses_is_permanent_and_the_others_are_stored(os_backend):
    # given: events with fields the mapping does not know, between stored ones
    events = [
        audit_event("good-1"),
        audit_event("unknown-field", surprise="not in the mapping"),
        audit_event("good-2"),
        audit_event("unknown-object", extra={"a": 1}),
    ]

    # when
    with pytest.raises(PartialWriteError) as caught:
        os_backend.write("audit_logs", events)
    os_backend.refresh_indices()

    # then
    assert set(caught.value.permanent) == {"unknown-field", "unknown-object"}
    assert "strict" in caught.value.permanent["unknown-field"]
    assert caught.value.transient == {}
    assert os_backend.existing_ids("audit_logs", ids(events)) == {"good-1", "good-2"}


def test_a_record_that_is_no_event_is_refused_alone(os_backend):
    events = [
        audit_event("good"),
        audit_event("naive", timestamp=dt.datetime(2026, 3, 1)),  # noqa: DTZ001  (the point of the test)
        audit_event("good-2"),
    ]

    with pytest.raises(PartialWriteError) as caught:
        os_backend.write("audit_logs", events)
    os_backend.refresh_indices()

    assert list(caught.value.permanent) == ["naive"]
    assert os_backend.existing_ids("audit_logs", ["good", "naive", "good-2"]) == {"good", "good-2"}


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(lambda c, i: c.indices.close(index=i), id="closed-index"),
        pytest.param(
            lambda c, i: c.indices.put_settings(index=i, body={"index.blocks.write": True}), id="write-block"
        ),
    ],
)
def test_items_of_a_closed_or_blocked_index_are_transient_and_succeed_once_it_is_back(os_backend, block):
    # given: March is stored and its index is made unwritable
    store(os_backend, [audit_event("march-1", timestamp=at(2026, 3, 1))])
    march = os_backend.index_for(at(2026, 3, 1))
    block(os_backend.client, march)
    events = [
        audit_event("march-2", timestamp=at(2026, 3, 2)),
        audit_event("april-1", timestamp=at(2026, 4, 1)),
    ]

    # when
    with pytest.raises(PartialWriteError) as caught:
        os_backend.write("audit_logs", events)

    # then: the March event is to be retried, April is stored
    assert set(caught.value.transient) == {"march-2"}
    assert caught.value.permanent == {}
    os_backend.client.indices.open(index=march)
    os_backend.client.indices.put_settings(index=march, body={"index.blocks.write": False})
    assert os_backend.write("audit_logs", events) == 2  # the retry: April is a duplicate now
    os_backend.refresh_indices()
    assert os_backend.existing_ids("audit_logs", ["march-1", "march-2", "april-1"]) == {
        "march-1",
        "march-2",
        "april-1",
    }


def test_an_unreachable_cluster_is_a_transient_error_and_unhealthy():
    backend = OpenSearchAuditSearch(
        url=f"http://127.0.0.1:{free_port()}", index_prefix="audit-os-test-nowhere"
    )

    with pytest.raises(TransientWriteError):
        backend.write("audit_logs", [audit_event()])
    assert backend.health_check() is False


def test_the_plugin_answers_healthy_on_a_live_server(os_backend):
    assert os_backend.health_check() is True


class _ScriptedServer:
    """An HTTP server answering every request with one scripted (status, body): the answers a real
    cluster gives under pressure (429, 5xx) or to oversized requests, which cannot be caused here."""

    def __init__(self, status: int, body: Any) -> None:
        outer = self
        self.status, self.body = status, body

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = self.rfile.read(length) if length else b""
                body = outer.body(request) if callable(outer.body) else outer.body
                payload = json.dumps(body).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _ScriptedServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, TransientWriteError), (503, TransientWriteError), (413, PermanentWriteError)],
)
def test_a_refused_bulk_request_is_transient_or_permanent_by_status(status, expected):
    error = {"error": {"type": "some_exception", "reason": "scripted"}, "status": status}
    with _ScriptedServer(status, error) as server:
        backend = OpenSearchAuditSearch(url=server.url, index_prefix="audit-os-test-scripted")
        backend._template_ready = True  # the scripted server answers the template with the error too
        backend._known_indices.add("audit-os-test-scripted-2026.03")

        with pytest.raises(expected):
            backend.write("audit_logs", [audit_event()])


@pytest.mark.parametrize("status", [400, 403])
def test_a_refused_index_template_keeps_the_events_for_later(status):
    # a cluster that refuses the template (a setting it does not know, no privilege) is an
    # operator's problem: the events wait in the buffer rather than being dead-lettered
    error = {"error": {"type": "illegal_argument_exception", "reason": "scripted"}, "status": status}
    with _ScriptedServer(status, error) as server:
        backend = OpenSearchAuditSearch(url=server.url, index_prefix="audit-os-test-scripted")

        with pytest.raises(TransientWriteError):
            backend.write("audit_logs", [audit_event()])


def test_a_200_bulk_answer_with_rejected_items_is_a_partial_failure():
    def bulk_answer(request: bytes) -> dict[str, Any]:
        lines = request.splitlines()[::2]
        statuses = [201, 429, 409, 503, 400]
        items = []
        for line, status in zip(lines, statuses, strict=True):
            action = json.loads(line)["create"]
            result: dict[str, Any] = {"_index": action["_index"], "_id": action["_id"], "status": status}
            if status >= 400:
                kind = {429: "es_rejected_execution_exception", 409: "version_conflict_engine_exception"}.get(
                    status, "mapper_parsing_exception" if status == 400 else "node_not_connected_exception"
                )
                result["error"] = {"type": kind, "reason": "scripted"}
            items.append({"create": result})
        return {"took": 1, "errors": True, "items": items}

    with _ScriptedServer(200, bulk_answer) as server:
        backend = OpenSearchAuditSearch(url=server.url, index_prefix="audit-os-test-scripted")
        backend._template_ready = True
        backend._known_indices.add("audit-os-test-scripted-2026.03")
        events = [
            audit_event(name) for name in ("created", "rejected", "duplicate", "unavailable", "refused")
        ]

        with pytest.raises(PartialWriteError) as caught:
            backend.write("audit_logs", events)

    assert set(caught.value.transient) == {"rejected", "unavailable"}
    assert set(caught.value.permanent) == {"refused"}


# --- search --------------------------------------------------------------------------------------

KNOWN = [
    audit_event(
        "k1",
        timestamp=at(2026, 3, 1, 8),
        action="session.delete",
        actor_id="alice",
        actor_type="user",
        outcome="success",
        resource_type="translation_session",
        resource_id="s-1",
        message="删除翻译会话 s-1",
    ),
    audit_event(
        "k2",
        timestamp=at(2026, 3, 1, 23, 59, 59),
        action="session.status_change",
        actor_id="alice",
        actor_type="user",
        outcome="failure",
        resource_type="translation_session",
        resource_id="s-2",
        message="Session status changed to FAILED",
    ),
    audit_event(
        "k3",
        timestamp=at(2026, 3, 2, 0, 0),
        action="file.download",
        actor_id="bot",
        actor_type="api_key",
        outcome="success",
        resource_type="file",
        resource_id="f-1",
        message="Downloaded the quarterly report",
    ),
    audit_event(
        "k4",
        timestamp=at(2026, 4, 3, 12),
        action="sessions.cleanup",
        actor_id="system",
        actor_type="system",
        outcome="success",
        resource_type=None,
        resource_id=None,
        message="Cleaned up 12 sessions; 翻译任务 kept",
    ),
    audit_event(
        "k5",
        timestamp=at(2026, 4, 3, 12),
        action="user.create",
        actor_id="admin",
        actor_type="user",
        outcome="success",
        resource_type="user",
        resource_id="u-1",
        message="Created user 张三 (report viewer)",
    ),
]


@pytest.fixture
def known(os_backend):
    store(os_backend, KNOWN)
    return os_backend


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (AuditQuery(), ["k1", "k2", "k3", "k4", "k5"]),
        (AuditQuery(actor_id="alice"), ["k1", "k2"]),
        (AuditQuery(actor_type="user"), ["k1", "k2", "k5"]),
        (AuditQuery(action="session.delete"), ["k1"]),
        (AuditQuery(action_prefix="session."), ["k1", "k2"]),  # not sessions.cleanup
        (AuditQuery(resource_type="file"), ["k3"]),
        (AuditQuery(resource_id="u-1"), ["k5"]),
        (AuditQuery(outcome="failure"), ["k2"]),
        (AuditQuery(time_from=at(2026, 3, 1, 23, 59, 59), time_to=at(2026, 3, 2)), ["k2", "k3"]),  # inclusive
        (AuditQuery(time_from=at(2026, 4, 1)), ["k4", "k5"]),
        (AuditQuery(q="翻译"), ["k1", "k4"]),  # Chinese by character pairs
        (AuditQuery(q="翻译会话"), ["k1"]),
        (AuditQuery(q="翻"), ["k1", "k4"]),  # one character: the per-character field
        (AuditQuery(q="张 viewer"), ["k5"]),
        (AuditQuery(q="译翻"), []),  # a pair must occur as written
        (AuditQuery(q="张三"), ["k5"]),
        (AuditQuery(q="report"), ["k3", "k5"]),
        (AuditQuery(q="QUARTERLY report"), ["k3"]),  # every word, any case
        (AuditQuery(q="quarterly viewer"), []),
        (AuditQuery(q="ｆａｉｌｅｄ"), ["k2"]),  # full-width letters fold
        (AuditQuery(actor_id="alice", outcome="success", q="翻译"), ["k1"]),
        (AuditQuery(actor_id="nobody"), []),
    ],
)
def test_filters_and_full_text(known, query, expected):
    page = known.search(query, order="asc", page_size=50)

    assert ids(page.items) == expected
    assert page.total == len(expected)
    assert page.next_cursor is None


def test_search_returns_whole_events(known):
    [event] = known.search(AuditQuery(action="session.delete")).items

    assert event == {**KNOWN[0], "accepted_at": KNOWN[0]["timestamp"]}
    assert event["timestamp"].tzinfo is not None


def test_the_buffer_acceptance_time_is_stored_as_accepted_at(os_backend):
    # given: a record as the flusher decodes it, with the buffer's timestamps
    accepted = at(2026, 3, 14, 9, 30, 0, 123456)
    record = audit_event("e1", created_at=accepted, updated_at=accepted + dt.timedelta(seconds=5))

    store(os_backend, [record])

    event = os_backend.read("audit_logs", "e1")
    assert event["accepted_at"] == accepted
    assert "created_at" not in event
    assert "updated_at" not in event


def test_order_is_by_timestamp_then_event_id_in_both_directions(os_backend):
    # given: three events in one microsecond, one a microsecond later, one a millisecond earlier
    t = at(2026, 5, 1, 10, 0, 0, 500_001)
    events = [
        audit_event("b", timestamp=t),
        audit_event("c", timestamp=t),
        audit_event("a", timestamp=t),
        audit_event("0-later", timestamp=t + dt.timedelta(microseconds=1)),
        audit_event("z-earlier", timestamp=t - dt.timedelta(milliseconds=1)),
    ]
    store(os_backend, events)

    assert ids(os_backend.search(AuditQuery(), order="asc").items) == ["z-earlier", "a", "b", "c", "0-later"]
    assert ids(os_backend.search(AuditQuery(), order="desc").items) == ["0-later", "c", "b", "a", "z-earlier"]


def test_timestamps_across_the_contract_range_are_stored_and_ordered(os_backend):
    # given: years 1000-9999 (docs/api.md §9), before 1970 included
    events = [
        audit_event("y9999", timestamp=at(9999, 12, 31, 23, 59, 59, 999999)),
        audit_event("y1969", timestamp=at(1969, 7, 20, 20, 17, 40, 1)),
        audit_event("y1000", timestamp=at(1000, 1, 1)),
        audit_event("y1969-earlier", timestamp=at(1969, 7, 20, 20, 17, 40)),
    ]

    store(os_backend, events)

    page = os_backend.search(AuditQuery(), order="asc")
    assert ids(page.items) == ["y1000", "y1969-earlier", "y1969", "y9999"]
    assert [e["timestamp"] for e in page.items] == sorted(e["timestamp"] for e in events)
    assert ids(os_backend.search(AuditQuery(time_to=at(1969, 7, 20, 20, 17, 40))).items) == [
        "y1969-earlier",
        "y1000",
    ]


def test_an_empty_store_answers_empty_pages_stats_and_export(os_backend):
    assert os_backend.search(AuditQuery()).total == 0
    assert list(os_backend.export(AuditQuery())) == []
    assert os_backend.stats(AuditQuery()).total == 0
    assert os_backend.read("audit_logs", "missing") is None


# --- 25,000 events: deep paging and export ---------------------------------------------------------

BIG = 25_000


def _big_events() -> list[dict[str, Any]]:
    # Three events per second (ties broken by event_id), ids not in time order, over two months.
    start = at(2026, 6, 30, 20)
    return [
        audit_event(
            uuid.UUID(int=(i * 2_654_435_761) % (1 << 128)).hex,
            timestamp=start + dt.timedelta(seconds=i // 3),
            action=f"bulk.action{i % 7}",
            message=f"event number {i} 翻译" if i % 10 == 0 else f"event number {i}",
        )
        for i in range(BIG)
    ]


@pytest.fixture(scope="module", params=SEARCH_SERVERS)
def big(request: pytest.FixtureRequest) -> Iterator[tuple[OpenSearchAuditSearch, list[str]]]:
    backend = new_backend(server_url(request.param))
    events = _big_events()
    store(backend, events)
    expected = [e["event_id"] for e in sorted(events, key=lambda e: (e["timestamp"], e["event_id"]))]
    yield backend, expected
    remove(backend)


@pytest.mark.slow
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_paging_over_25000_events_has_no_duplicate_or_gap(big, order):
    backend, expected = big
    if order == "desc":
        expected = expected[::-1]
    seen: list[str] = []
    cursor: SearchCursor | None = None

    while True:
        page = backend.search(AuditQuery(), order=order, page_size=700, after=cursor)
        assert page.total == BIG
        seen.extend(ids(page.items))
        cursor = page.next_cursor
        if cursor is None:
            break

    assert len(seen) == BIG
    assert seen == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "page_size"), [(1, 100), (100, 100), (101, 100), (500, 20), (501, 20), (1250, 20)]
)
def test_page_numbers_past_10000_give_the_same_slice(big, page, page_size):
    backend, expected = big
    offset = (page - 1) * page_size

    result = backend.search(AuditQuery(), order="asc", page=page, page_size=page_size)

    assert ids(result.items) == expected[offset : offset + page_size]
    assert result.total == BIG
    assert (result.next_cursor is None) == (offset + page_size >= BIG)
    if result.next_cursor is not None:  # and a cursor from there continues exactly
        following = backend.search(AuditQuery(), order="asc", page_size=page_size, after=result.next_cursor)
        assert ids(following.items) == expected[offset + page_size : offset + 2 * page_size]
    assert offset + page_size <= MAX_RESULT_WINDOW or page > 100  # the cases cross the window


@pytest.mark.slow
def test_a_page_beyond_the_last_is_empty(big):
    backend, _ = big

    result = backend.search(AuditQuery(), order="asc", page=2000, page_size=20)

    assert result.items == []
    assert result.total == BIG
    assert result.next_cursor is None


@pytest.mark.slow
def test_filtered_cursor_paging_over_the_chinese_matches(big):
    backend, expected = big
    seen, cursor = [], None
    while True:
        page = backend.search(AuditQuery(q="翻译"), order="asc", page_size=600, after=cursor)
        seen.extend(ids(page.items))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert len(seen) == BIG // 10
    assert seen == [i for i in expected if i in set(seen)]


def _open_pits(backend: OpenSearchAuditSearch) -> int:
    return len(backend.client.get_all_pits().get("pits") or [])


def _export_peak(
    backend: OpenSearchAuditSearch, query: AuditQuery, during: Any = None
) -> tuple[list[str], int]:
    """(event ids in export order, checked on the fly; peak traced memory while exporting)."""
    tracemalloc.start()
    try:
        count, last, out_of_order, first, final = 0, None, 0, None, None
        for event in backend.export(query, order="asc"):
            key = (event["timestamp"], event["event_id"])
            out_of_order += last is not None and key <= last
            last = key
            count += 1
            first = first or event["event_id"]
            if during is not None and count == 2500:
                during()
        final = last[1] if last else None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out_of_order == 0
    return [count, first, final], peak


@pytest.mark.slow
def test_export_of_25000_events_over_a_point_in_time_in_flat_memory(big):
    backend, expected = big
    pits_before = _open_pits(backend)

    def pit_is_held() -> None:
        assert _open_pits(backend) == pits_before + 1

    # when: all 25,000, and the first 5,000 only (by time)
    (count, first, last), peak = _export_peak(backend, AuditQuery(), during=pit_is_held)
    fifth = AuditQuery(time_to=at(2026, 6, 30, 20) + dt.timedelta(seconds=BIG // 5 // 3 - 1))
    (small_count, _, _), small_peak = _export_peak(backend, fifth)

    # then
    assert (count, first, last) == (BIG, expected[0], expected[-1])
    assert small_count == BIG // 5 - 2
    assert peak < 1.5 * small_peak  # five times the events, not five times the memory
    assert _open_pits(backend) == pits_before  # deleted at the end


@pytest.mark.slow
def test_export_in_descending_order_matches_cursor_order(big):
    backend, expected = big

    assert [e["event_id"] for e in backend.export(AuditQuery(), order="desc")] == expected[::-1]


@pytest.mark.slow
def test_an_export_closed_early_deletes_its_point_in_time(big):
    backend, expected = big
    pits_before = _open_pits(backend)
    stream = backend.export(AuditQuery(), order="asc")

    first = [next(stream)["event_id"] for _ in range(1500)]
    assert _open_pits(backend) == pits_before + 1
    stream.close()

    assert first == expected[:1500]
    assert _open_pits(backend) == pits_before


@pytest.mark.slow
def test_export_without_point_in_time_falls_back_to_search_after(big, monkeypatch):
    # A server without the point-in-time API (Elasticsearch 7) cannot be had here: its 404 is scripted.
    backend, expected = big

    def no_pit(*args: Any, **kwargs: Any) -> Any:
        raise NotFoundError(404, "no handler found for uri [/audit/_search/point_in_time]", {})

    monkeypatch.setattr(backend.client, "create_pit", no_pit)

    exported = [e["event_id"] for e in backend.export(AuditQuery(action="bulk.action3"), order="asc")]

    assert exported == [i for i, e in zip(expected, range(BIG), strict=True) if i in set(exported)]
    assert len(exported) == len([i for i in range(BIG) if i % 7 == 3])


def test_export_in_time_windows_handles_bursts_and_sparse_months(os_backend):
    # given: 2,500 events in one microsecond, others spread over a year (windows sized for the
    # average must shrink for the burst and grow across the empty months)
    burst = at(2026, 6, 1, 12)
    events = [audit_event(f"burst-{i:04d}", timestamp=burst) for i in range(2500)]
    events += [
        audit_event(f"sparse-{m:02d}", timestamp=at(2025, m, 28, 23, 59, 59, 999999)) for m in range(1, 13)
    ]
    events += [audit_event("last", timestamp=at(2026, 12, 31, 23, 59, 59, 999999))]
    store(os_backend, events)
    expected = ids(sorted(events, key=lambda e: (e["timestamp"], e["event_id"])))

    assert ids(list(os_backend.export(AuditQuery(), order="asc"))) == expected
    assert ids(list(os_backend.export(AuditQuery(), order="desc"))) == expected[::-1]
    assert ids(list(os_backend.export(AuditQuery(time_to=burst), order="desc"))) == expected[-2::-1]


# --- stats ---------------------------------------------------------------------------------------


def test_stats_on_a_known_data_set(known):
    stats = known.stats(AuditQuery())

    assert stats.total == 5
    assert stats.by_action == {
        "file.download": 1,
        "session.delete": 1,
        "session.status_change": 1,
        "sessions.cleanup": 1,
        "user.create": 1,
    }
    assert list(stats.by_action) == sorted(stats.by_action)  # ties by key
    assert stats.by_outcome == {"success": 4, "failure": 1}
    assert stats.by_actor == {"alice": 2, "admin": 1, "bot": 1, "system": 1}
    assert list(stats.by_actor) == ["alice", "admin", "bot", "system"]
    # 23:59:59 and 00:00 fall on two UTC days
    assert stats.per_day == [(dt.date(2026, 3, 1), 2), (dt.date(2026, 3, 2), 1), (dt.date(2026, 4, 3), 2)]


def test_stats_follow_the_filters(known):
    stats = known.stats(AuditQuery(q="翻译"))

    assert stats.total == 2
    assert stats.by_action == {"session.delete": 1, "sessions.cleanup": 1}
    assert stats.per_day == [(dt.date(2026, 3, 1), 1), (dt.date(2026, 4, 3), 1)]


def test_stats_keep_the_top_20_actions_and_actors(os_backend):
    # given: action-00 happens 25 times, action-01 24 times, ... action-24 once
    events = [
        audit_event(f"e{n:02d}-{i}", action=f"action-{n:02d}", actor_id=f"actor-{n:02d}")
        for n in range(25)
        for i in range(25 - n)
    ]
    store(os_backend, events)

    stats = os_backend.stats(AuditQuery())

    assert stats.total == len(events)
    assert stats.by_action == {f"action-{n:02d}": 25 - n for n in range(20)}
    assert list(stats.by_actor) == [f"actor-{n:02d}" for n in range(20)]


# --- retention -----------------------------------------------------------------------------------


def test_retention_drops_whole_months_before_the_given_one(os_url, os_backend):
    # given: three months, and a neighbour whose prefix extends this one's
    store(
        os_backend,
        [
            audit_event("nov", timestamp=at(2025, 11, 30, 23)),
            audit_event("dec", timestamp=at(2025, 12, 15)),
            audit_event("jan", timestamp=at(2026, 1, 1)),
        ],
    )
    neighbour = new_backend(os_url, prefix=f"{os_backend.prefix}-other")
    try:
        store(neighbour, [audit_event("other-nov", timestamp=at(2025, 11, 2))])

        # when
        dropped = os_backend.drop_months_before(dt.date(2026, 1, 1))

        # then
        p = os_backend.prefix
        assert dropped == ["2025-11", "2025-12"]
        assert os_backend.monthly_indices() == [f"{p}-2026.01"]
        assert ids(os_backend.search(AuditQuery()).items) == ["jan"]
        assert ids(neighbour.search(AuditQuery()).items) == ["other-nov"]
        assert os_backend.drop_months_before(dt.date(2026, 1, 1)) == []
        # a late event of a dropped month recreates its index from the template
        store(os_backend, [audit_event("late-dec", timestamp=at(2025, 12, 31))])
        assert ids(os_backend.search(AuditQuery(), order="asc").items) == ["late-dec", "jan"]
    finally:
        remove(neighbour)


# --- configuration -------------------------------------------------------------------------------


def test_the_plugin_without_a_url_is_refused_at_start_up(settings):
    from storage_backends.checks import audit_search_configured

    settings.STORAGE_BACKENDS = {
        **settings.STORAGE_BACKENDS,
        "audit_logs": f"{OpenSearchAuditSearch.__module__}.OpenSearchAuditSearch",
    }
    settings.AUDIT_SEARCH_URL = ""

    assert [e.id for e in audit_search_configured()] == ["storage_backends.E001"]
    settings.AUDIT_SEARCH_URL = "http://127.0.0.1:9200"
    assert audit_search_configured() == []


# --- tracing -------------------------------------------------------------------------------------


@pytest.fixture
def spans():
    """Tracing on in this process, spans kept in memory (as tests/tracing/conftest.py's fixture)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from core import tracing

    exporter = InMemorySpanExporter()
    assert tracing.setup(service_name="persistence-test", exporter=exporter, set_global=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_writes_searches_and_export_batches_are_spans(os_backend, spans):
    store(os_backend, [audit_event("e1"), audit_event("e2")])
    os_backend.search(AuditQuery(q="session"))
    list(os_backend.export(AuditQuery()))

    finished = {span.name: span for span in spans.get_finished_spans()}
    assert finished["search.write"].attributes["persistence.record_count"] == 2
    assert finished["search.write"].attributes["db.system.name"] == "opensearch"
    assert "search.query" in finished
    assert finished["search.export"].attributes["persistence.point_in_time"] is True
