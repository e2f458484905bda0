"""The two write buffers (Redis and in-process) keep the same semantics."""

from __future__ import annotations

import datetime as dt

import pytest

from persistence_site.errors import BufferFull
from storage_backends.memory_buffer import InMemoryWriteBuffer
from storage_backends.redis_buffer import RedisWriteBuffer
from tests.factories import session_record, task_record

SESSIONS, TASKS = "translation_sessions", "translation_tasks"


@pytest.fixture(params=["redis", "memory"])
def buffer(request, settings):
    if request.param == "redis":
        instance = RedisWriteBuffer(settings.REDIS_URL, prefix="test:{buffer}")
        instance.clear()
        yield instance
        instance.clear()
    else:
        yield InMemoryWriteBuffer()


def _all(buffer, collection):
    return [entry for chunk in buffer.scan(collection, 100) for entry in chunk]


def test_add_then_get_returns_a_model_ready_record(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1", confidence=0.5, start_time="2025-09-30T10:15:30Z")])

    record = buffer.get(TASKS, "t-1")

    assert record["task_id"] == "t-1"
    assert record["session_id"] == "s-1"
    assert record["start_time"] == dt.datetime(2025, 9, 30, 10, 15, 30, tzinfo=dt.UTC)
    assert str(record["confidence"]) == "0.5"
    assert record["created_at"].tzinfo is not None
    assert buffer.get(TASKS, "other") is None


def test_writes_of_one_id_coalesce_keeping_first_created_and_latest_updated(buffer):
    buffer.add(SESSIONS, [session_record("s-1", status="pending")])
    first = buffer.get(SESSIONS, "s-1")
    buffer.add(SESSIONS, [session_record("s-1", status="processing")])
    buffer.add(SESSIONS, [session_record("s-1", status="completed")])

    latest = buffer.get(SESSIONS, "s-1")

    assert buffer.counts()[SESSIONS] == 1
    assert latest["status"] == "completed"
    assert latest["created_at"] == first["created_at"]
    assert latest["updated_at"] > first["updated_at"]


def test_remove_flushed_keeps_a_newer_write_that_arrived_after_the_snapshot(buffer):
    buffer.add(SESSIONS, [session_record("s-1", filename="old.xlsx"), session_record("s-2")])
    snapshot = _all(buffer, SESSIONS)
    buffer.add(SESSIONS, [session_record("s-1", filename="new.xlsx")])

    removed = buffer.remove_flushed(SESSIONS, snapshot)

    assert removed == 1
    assert buffer.get(SESSIONS, "s-2") is None
    assert buffer.get(SESSIONS, "s-1")["filename"] == "new.xlsx"


def test_session_tasks_follow_a_task_that_moves_to_another_session(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1"), task_record("s-1", "t-2"), task_record("s-2", "t-3")])
    buffer.add(TASKS, [task_record("s-2", "t-2")])

    assert sorted(r["task_id"] for r in buffer.session_tasks("s-1")) == ["t-1"]
    assert sorted(r["task_id"] for r in buffer.session_tasks("s-2")) == ["t-2", "t-3"]


def test_remove_flushed_tasks_leaves_the_session_index_consistent(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1"), task_record("s-1", "t-2")])

    buffer.remove_flushed(TASKS, _all(buffer, TASKS))

    assert buffer.session_tasks("s-1") == []
    assert buffer.counts()[TASKS] == 0


def test_purge_session_drops_the_session_and_its_tasks_only(buffer):
    buffer.add(SESSIONS, [session_record("s-1"), session_record("s-2")])
    buffer.add(TASKS, [task_record("s-1", f"t-{i}") for i in range(3)] + [task_record("s-2", "keep")])

    dropped = buffer.purge_session("s-1")

    assert dropped == 3
    assert buffer.get(SESSIONS, "s-1") is None
    assert [r["task_id"] for r in buffer.records(TASKS)] == ["keep"]
    assert buffer.get(SESSIONS, "s-2") is not None


def test_capacity_refuses_a_batch_whole(buffer, settings):
    settings.BUFFER_CAPACITY = 3
    buffer.add(SESSIONS, [session_record(), session_record()])

    with pytest.raises(BufferFull):
        buffer.add(TASKS, [task_record("s-1"), task_record("s-1")])

    assert buffer.counts() == {SESSIONS: 2, TASKS: 0}


def test_flush_lock_admits_one_holder_at_a_time(buffer):
    first = buffer.flush_lock(SESSIONS, wait=0)
    assert first is not None

    assert buffer.flush_lock(SESSIONS, wait=0) is None
    assert buffer.flush_lock(TASKS, wait=0) is not None  # one lock per collection
    first.release()
    assert buffer.flush_lock(SESSIONS, wait=0) is not None


def test_redis_flush_lock_is_released_only_by_its_owner(settings):
    buffer = RedisWriteBuffer(settings.REDIS_URL, prefix="test:{buffer}")
    buffer.clear()
    settings.BUFFER_LOCK_TTL = 1
    stale = buffer.flush_lock(SESSIONS, wait=0)
    buffer.redis.delete("test:{buffer}:lock:translation_sessions")  # as if it expired
    current = buffer.flush_lock(SESSIONS, wait=0)

    stale.release()  # must not free the lock that now belongs to another flusher

    assert buffer.flush_lock(SESSIONS, wait=0) is None
    assert stale.extend_lease() is False
    assert current.extend_lease() is True
    buffer.clear()


def test_a_lock_redis_lost_mid_flush_is_released_by_the_next_flush_of_the_process(settings, monkeypatch):
    """Redis restarted from its AOF keeps the lock of a flush it cut off; the flusher frees it at its
    next attempt instead of every flush waiting out BUFFER_LOCK_TTL."""
    import redis

    buffer = RedisWriteBuffer(settings.REDIS_URL, prefix="test:{buffer}")
    buffer.clear()
    held = buffer.flush_lock(SESSIONS, wait=0)
    real_release = held._lock.release

    def unreachable():  # the fault: Redis is down at the moment of release
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(held._lock, "release", unreachable)
    held.release()  # logged, remembered; the key is still in Redis
    assert buffer.redis.exists("test:{buffer}:lock:translation_sessions")
    monkeypatch.setattr(held._lock, "release", real_release)  # Redis is back

    again = buffer.flush_lock(SESSIONS, wait=0)

    assert again is not None  # not blocked for BUFFER_LOCK_TTL
    again.release()
    buffer.clear()


def test_acceptance_times_come_from_one_clock_and_increase(buffer):
    buffer.add(SESSIONS, [session_record("a")])
    buffer.add(SESSIONS, [session_record("b")])

    a, b = buffer.get(SESSIONS, "a"), buffer.get(SESSIONS, "b")

    assert a["updated_at"] <= b["updated_at"]
    assert abs(b["updated_at"] - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
