"""Append-only collections in both write buffers (``buffer.KEEP_FIRST``, the audit events): the first
accepted write of an id stays, and such collections share the buffer's capacity and never touch the
sessions' tombstones."""

from __future__ import annotations

import pytest

from core.exceptions import BufferFull, RecordsBeingDeleted
from storage_backends.catalog import spec
from storage_backends.redis_buffer import RedisWriteBuffer
from tests.factories import session_record

SESSIONS, AUDIT_LOGS = "translation_sessions", "audit_logs"


@pytest.fixture(params=["redis", "redis-4-shards", "sqlite"])
def buffer(request, settings):
    if request.param.startswith("redis"):
        # the configured BUFFER_SHARDS (1 unless set), and 4 whatever it is
        shards = 4 if request.param == "redis-4-shards" else None
        instance = RedisWriteBuffer(settings.REDIS_URL, prefix="test:{keepfirst}", shards=shards)
        instance.clear()
        yield instance
        instance.clear()
    else:
        yield request.getfixturevalue("sqlite_buffer")


def audit_record(event_id: str, message: str = "") -> dict:
    return {
        "event_id": event_id,
        "timestamp": "2026-03-10T12:00:00Z",
        "actor_id": "a",
        "actor_type": "user",
        "action": "session.delete",
        "resource_type": None,
        "resource_id": None,
        "outcome": "success",
        "message": message,
        "ip": None,
        "user_agent": None,
        "request_id": None,
        "details": {},
    }


def _entries(buffer, collection):
    return [entry for chunk in buffer.scan(collection, 100) for entry in chunk]


def test_audit_logs_are_declared_keep_first():
    assert spec(AUDIT_LOGS).keep_first and not spec(SESSIONS).keep_first


def test_a_second_write_of_a_buffered_id_is_ignored(buffer):
    buffer.add(AUDIT_LOGS, [audit_record("e-1", "first")])
    (before,) = _entries(buffer, AUDIT_LOGS)
    size = buffer.size_bytes()

    buffer.add(AUDIT_LOGS, [audit_record("e-1", "second, and longer than the first")])

    (after,) = _entries(buffer, AUDIT_LOGS)
    assert buffer.get(AUDIT_LOGS, "e-1")["message"] == "first"
    assert (after.seq, after.created_us, after.updated_us) == (
        before.seq,
        before.created_us,
        before.updated_us,
    )
    assert buffer.size_bytes() == size
    assert buffer.counts()[AUDIT_LOGS] == 1


def test_the_first_of_duplicates_in_one_batch_is_kept(buffer):
    buffer.add(AUDIT_LOGS, [audit_record("e-1", "one"), audit_record("e-1", "two"), audit_record("e-2")])

    assert buffer.get(AUDIT_LOGS, "e-1")["message"] == "one"
    assert buffer.counts()[AUDIT_LOGS] == 2


def test_a_flushed_entry_leaves_and_the_id_can_be_buffered_again(buffer):
    buffer.add(AUDIT_LOGS, [audit_record("e-1", "first")])
    buffer.remove_flushed(AUDIT_LOGS, _entries(buffer, AUDIT_LOGS))

    buffer.add(AUDIT_LOGS, [audit_record("e-1", "resent")])  # the backend keeps the stored one

    assert buffer.get(AUDIT_LOGS, "e-1")["message"] == "resent"


def test_sessions_still_coalesce_to_the_latest_write(buffer):
    buffer.add(SESSIONS, [session_record("s-1", status="pending")])
    buffer.add(SESSIONS, [session_record("s-1", status="completed")])

    assert buffer.get(SESSIONS, "s-1")["status"] == "completed"


def test_the_capacity_counts_every_collection(buffer, settings):
    settings.BUFFER_CAPACITY = 3
    buffer.add(SESSIONS, [session_record("s-1"), session_record("s-2")])

    with pytest.raises(BufferFull):
        buffer.add(AUDIT_LOGS, [audit_record("e-1"), audit_record("e-2")])
    buffer.add(AUDIT_LOGS, [audit_record("e-1")])
    with pytest.raises(BufferFull):
        buffer.add(SESSIONS, [session_record("s-3")])
    assert buffer.stats()["total_count"] == 3
    assert buffer.stats()["audit_logs_count"] == 1


def test_an_audit_id_equal_to_a_session_being_deleted_neither_fails_nor_clears_its_tombstone(buffer):
    buffer.begin_delete(SESSIONS, ["x"], keep_active=False)

    buffer.add(AUDIT_LOGS, [audit_record("x")])

    with pytest.raises(RecordsBeingDeleted):
        buffer.add(SESSIONS, [session_record("x")])
    buffer.end_delete(SESSIONS, ["x"], deleted=False)


def test_failures_are_counted_per_write_of_an_audit_event(buffer):
    buffer.add(AUDIT_LOGS, [audit_record("e-1")])
    entries = _entries(buffer, AUDIT_LOGS)

    assert buffer.record_failures(AUDIT_LOGS, entries) == {"e-1": 1}
    assert buffer.record_failures(AUDIT_LOGS, entries) == {"e-1": 2}
    assert buffer.retrying_count() == 1
    assert buffer.remove_flushed(AUDIT_LOGS, entries) == 1
    assert buffer.retrying_count() == 0
