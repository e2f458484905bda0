"""The search backend interface (storage_backends.search) on every backend of ``audit_store``:
filters, action prefix, full text in English and Chinese, order and ties, keyset cursors, export,
stats, append-only writes and retention."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from storage_backends.search import AUDIT_LOGS, AuditQuery, SearchCursor
from tests.audit.conftest import T0, event

pytestmark = pytest.mark.integration


def _ids(items) -> list[str]:
    return [item["event_id"] for item in items]


def _search_all(backend, query: AuditQuery, order: str = "desc") -> list[str]:
    return _ids(backend.search(query, order=order, page_size=100).items)


@pytest.fixture
def known(audit_store):
    """Ten events with distinct fields, one minute apart (e0 oldest)."""
    rows = [
        event(
            event_id="e0",
            action="session.delete",
            actor_id="alice",
            actor_type="user",
            message="删除翻译会话",
        ),
        event(
            event_id="e1",
            action="session.create",
            actor_id="alice",
            actor_type="user",
            message="create the session",
        ),
        event(
            event_id="e2",
            action="session.status_change",
            actor_id="bob",
            outcome="failure",
            message="Status changed",
        ),
        event(
            event_id="e3",
            action="file.upload",
            resource_type="file",
            resource_id="f-1",
            message="uploaded game.xlsx",
        ),
        event(
            event_id="e4", action="file.download", resource_type="file", resource_id="f-1", message="下载文件"
        ),
        event(event_id="e5", action="user.create", actor_id="admin", actor_type="user", resource_type="user"),
        event(event_id="e6", action="sessions.purge", actor_id="system", actor_type="system", message="翻"),
        event(
            event_id="e7", action="Session.delete", actor_id="Alice", message="deleted sessions of 翻译项目"
        ),
        event(
            event_id="e8", action="api_key.create", actor_id="ops", actor_type="api_key", message="key for CI"
        ),
        event(
            event_id="e9",
            action="session.delete",
            actor_id="alice ",
            outcome="failure",
            message="delete failed",
        ),
    ]
    for i, row in enumerate(rows):
        row["timestamp"] = T0 + dt.timedelta(minutes=i)
    audit_store.load(rows)
    return audit_store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (AuditQuery(actor_id="alice"), ["e1", "e0"]),
        (AuditQuery(actor_id="Alice"), ["e7"]),
        (AuditQuery(actor_type="system"), ["e6"]),
        (AuditQuery(action="session.delete"), ["e9", "e0"]),
        (AuditQuery(resource_type="file", resource_id="f-1"), ["e4", "e3"]),
        (AuditQuery(outcome="failure"), ["e9", "e2"]),
        (
            AuditQuery(time_from=T0 + dt.timedelta(minutes=3), time_to=T0 + dt.timedelta(minutes=5)),
            ["e5", "e4", "e3"],
        ),
        (AuditQuery(action="session.delete", outcome="success"), ["e0"]),
    ],
)
def test_filters_match_exactly(known, query, expected):
    assert _search_all(known.backend, query) == expected


def test_an_action_prefix_matches_the_dotted_family_only(known):
    # "sessions.purge" and "Session.delete" share letters but not the prefix "session."
    assert _search_all(known.backend, AuditQuery(action_prefix="session.")) == ["e9", "e2", "e1", "e0"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("翻译", ["e7", "e0"]),  # two characters: below the trigram size, found all the same
        ("删除翻译会话", ["e0"]),
        ("会话 删除", ["e0"]),  # every term must occur, in any order
        ("翻", ["e7", "e6", "e0"]),
        ("下载", ["e4"]),
        ("create", ["e1"]),
        ("CREATE", ["e1"]),  # case-insensitive
        ("delete failed", ["e9"]),
        ("game.xlsx", ["e3"]),
        ("nothing-like-this", []),
    ],
)
def test_full_text_finds_english_words_and_chinese_characters(known, q, expected):
    assert _search_all(known.backend, AuditQuery(q=q)) == expected


def test_full_text_combines_with_the_other_filters(known):
    assert _search_all(known.backend, AuditQuery(q="翻译", actor_id="alice")) == ["e0"]


def test_order_is_by_timestamp_with_ties_broken_by_event_id(audit_store):
    # given: events sharing timestamps, written in a shuffled order
    same = [event(event_id=i, timestamp=T0) for i in ("b", "a", "c")]
    later = [event(event_id=i, timestamp=T0 + dt.timedelta(microseconds=1)) for i in ("a2", "Z")]
    audit_store.load(same + later)

    assert _search_all(audit_store.backend, AuditQuery(), order="asc") == ["a", "b", "c", "Z", "a2"]
    assert _search_all(audit_store.backend, AuditQuery(), order="desc") == ["a2", "Z", "c", "b", "a"]


def test_pages_and_cursors_walk_the_same_sequence(known):
    backend = known.backend
    first = backend.search(AuditQuery(), order="asc", page_size=4, page=1)
    second_by_page = backend.search(AuditQuery(), order="asc", page_size=4, page=2)
    second_by_cursor = backend.search(AuditQuery(), order="asc", page_size=4, after=first.next_cursor)
    last = backend.search(AuditQuery(), order="asc", page_size=4, after=second_by_cursor.next_cursor)

    assert first.total == 10 and _ids(first.items) == ["e0", "e1", "e2", "e3"]
    assert _ids(second_by_cursor.items) == _ids(second_by_page.items) == ["e4", "e5", "e6", "e7"]
    assert _ids(last.items) == ["e8", "e9"] and last.next_cursor is None
    assert second_by_cursor.total == 10  # the total counts every match, not what remains


def test_a_cursor_between_ties_continues_after_the_event_id(audit_store):
    audit_store.load([event(event_id=f"t{i}", timestamp=T0) for i in range(5)])
    page = audit_store.backend.search(
        AuditQuery(), order="desc", page_size=10, after=SearchCursor(timestamp=T0, event_id="t2")
    )

    assert _ids(page.items) == ["t1", "t0"]


def test_export_yields_every_match_in_order(known):
    exported = list(known.backend.export(AuditQuery(outcome="success"), order="asc"))

    assert _ids(exported) == ["e0", "e1", "e3", "e4", "e5", "e6", "e7", "e8"]
    assert exported[0]["message"] == "删除翻译会话"
    assert exported[0]["timestamp"] == T0


def test_stats_of_a_known_data_set(known):
    stats = known.backend.stats(AuditQuery())

    assert stats.total == 10
    assert stats.by_outcome == {"success": 8, "failure": 2}
    assert next(iter(stats.by_action.items())) == ("session.delete", 2)
    assert sum(stats.by_action.values()) == 10 and len(stats.by_action) == 9
    assert stats.by_actor["alice"] == 2 and stats.by_actor["backend-v2"] == 2
    assert stats.per_day == [(T0.date(), 10)]


def test_stats_of_a_full_text_query(known):
    stats = known.backend.stats(AuditQuery(q="翻译"))

    assert stats.total == 2
    assert stats.by_action == {"Session.delete": 1, "session.delete": 1}
    assert stats.by_actor == {"Alice": 1, "alice": 1}


def test_stats_keep_the_top_20_and_count_per_utc_day(audit_store):
    rows = [event(action=f"a.n{i:02d}", timestamp=T0) for i in range(25) for _ in range(i + 1)]
    rows.append(event(action="a.late", timestamp=dt.datetime(2026, 3, 11, 23, 59, 59, tzinfo=dt.UTC)))
    audit_store.load(rows)

    stats = audit_store.backend.stats(AuditQuery(action_prefix="a."))

    assert len(stats.by_action) == 20
    assert list(stats.by_action)[:2] == ["a.n24", "a.n23"] and stats.by_action["a.n24"] == 25
    assert stats.per_day == [(T0.date(), 325), (dt.date(2026, 3, 11), 1)]
    assert stats.total == 326


def test_a_second_write_of_an_event_id_keeps_the_first(audit_store):
    audit_store.load([event(event_id="dup", message="first")])
    audit_store.load([event(event_id="dup", message="second"), event(event_id="other")])

    stored = audit_store.backend.read(AUDIT_LOGS, "dup")
    assert stored["message"] == "first"
    assert audit_store.backend.search(AuditQuery()).total == 2


def test_values_are_stored_exactly(audit_store):
    details = {"nested": {"list": [1, 2.5, None, True]}, "emoji": "😀"}
    audit_store.load(
        [
            event(
                event_id="exact",
                message=" padded 😀 ",
                ip="2001:db8::1",
                user_agent="curl/8.0",
                request_id="req-1",
                details=details,
                timestamp=dt.datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=dt.UTC),
            )
        ]
    )

    (item,) = audit_store.backend.search(AuditQuery()).items
    assert item["message"] == " padded 😀 "
    assert item["details"] == details
    assert (item["ip"], item["user_agent"], item["request_id"]) == ("2001:db8::1", "curl/8.0", "req-1")
    assert item["timestamp"] == dt.datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=dt.UTC)


def test_retention_drops_whole_months_before_the_given_one(audit_store):
    audit_store.load(
        [
            event(event_id="jan", timestamp=dt.datetime(2026, 1, 31, 23, 59, 59, tzinfo=dt.UTC)),
            event(event_id="feb1", timestamp=dt.datetime(2026, 2, 1, tzinfo=dt.UTC)),
            event(event_id="feb2", timestamp=dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)),
            event(event_id="mar", timestamp=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), message="删除翻译会话"),
        ]
    )

    dropped = audit_store.backend.drop_months_before(dt.date(2026, 3, 1))

    assert dropped == ["2026-01", "2026-02"]
    assert _search_all(audit_store.backend, AuditQuery()) == ["mar"]
    assert _search_all(audit_store.backend, AuditQuery(q="翻译")) == ["mar"]  # the index followed
    assert audit_store.backend.drop_months_before(dt.date(2026, 3, 1)) == []


def test_health_check_answers(audit_store):
    assert audit_store.backend.health_check() is True


def test_the_sql_full_text_index_can_be_rebuilt(known):
    if known.name != "sql":
        pytest.skip("the SQL backend's own index")
    from django.core.management import call_command
    from django.db import connection

    from audit.models import AuditEvent

    if connection.vendor == "sqlite":  # as after a VACUUM that renumbered the rowids
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO audit_events_fts(audit_events_fts) VALUES ('delete-all')")
    else:
        AuditEvent.objects.update(search_terms="")
    damaged = _search_all(known.backend, AuditQuery(q="create"))

    call_command("rebuild_audit_index", stdout=io.StringIO())

    assert damaged == []
    assert _search_all(known.backend, AuditQuery(q="create")) == ["e1"]
    assert _search_all(known.backend, AuditQuery(q="翻译")) == ["e7", "e0"]
