"""The two write buffers (Redis and the embedded SQLite one) keep the same semantics.

Every test taking ``buffer`` runs against both; the SQLite buffer gets its own database file
(``sqlite_buffer`` in conftest.py), so these tests need neither migrations nor the test database.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connections

from core.exceptions import BufferFull
from storage_backends.buffer import ParentsDeleted, ParentsNotBuffered
from storage_backends.records import encode
from storage_backends.redis_buffer import RedisWriteBuffer
from storage_backends.sqlite_buffer import SQLiteWriteBuffer
from tests.factories import session_record, task_record

SESSIONS, TASKS, AUDIT_LOGS = "translation_sessions", "translation_tasks", "audit_logs"


@pytest.fixture(params=["redis", "redis-4-shards", "sqlite"])
def buffer(request, settings):
    if request.param.startswith("redis"):
        # the configured BUFFER_SHARDS (1 unless set), and 4 whatever it is
        shards = 4 if request.param == "redis-4-shards" else None
        instance = RedisWriteBuffer(settings.REDIS_URL, prefix="test:{buffer}", shards=shards)
        instance.clear()
        yield instance
        instance.clear()
    else:
        yield request.getfixturevalue("sqlite_buffer")


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

    assert sorted(r["task_id"] for r in buffer.children(SESSIONS, "s-1")) == ["t-1"]
    assert sorted(r["task_id"] for r in buffer.children(SESSIONS, "s-2")) == ["t-2", "t-3"]


def test_remove_flushed_tasks_leaves_the_session_index_consistent(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1"), task_record("s-1", "t-2")])

    buffer.remove_flushed(TASKS, _all(buffer, TASKS))

    assert buffer.children(SESSIONS, "s-1") == []
    assert buffer.counts()[TASKS] == 0


def test_purge_session_drops_the_session_and_its_tasks_only(buffer):
    buffer.add(SESSIONS, [session_record("s-1"), session_record("s-2")])
    buffer.add(TASKS, [task_record("s-1", f"t-{i}") for i in range(3)] + [task_record("s-2", "keep")])

    dropped = buffer.purge(SESSIONS, "s-1")

    assert dropped == 3
    assert buffer.get(SESSIONS, "s-1") is None
    assert [r["task_id"] for r in buffer.records(TASKS)] == ["keep"]
    assert buffer.get(SESSIONS, "s-2") is not None


def test_capacity_refuses_a_batch_whole(buffer, settings):
    settings.BUFFER_CAPACITY = 3
    buffer.add(SESSIONS, [session_record(), session_record()])

    with pytest.raises(BufferFull):
        buffer.add(TASKS, [task_record("s-1"), task_record("s-1")])

    assert buffer.counts() == {SESSIONS: 2, TASKS: 0, AUDIT_LOGS: 0}


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


# --- require_sessions ---------------------------------------------------------------------------


def test_required_sessions_not_buffered_refuse_the_batch_whole(buffer):
    buffer.add(SESSIONS, [session_record("s-1")])

    with pytest.raises(ParentsNotBuffered) as excinfo:
        buffer.add(TASKS, [task_record("s-1"), task_record("s-2")], require_parents={"s-1", "s-2"})

    assert excinfo.value.ids == {"s-2"}
    assert buffer.counts()[TASKS] == 0


# --- tombstones of deleted sessions ---------------------------------------------------------------


def test_tasks_of_a_purged_session_are_refused_whole(buffer):
    # given a session deleted moments ago
    buffer.add(SESSIONS, [session_record("s-1"), session_record("s-2")])
    buffer.purge(SESSIONS, "s-1")

    # when a batch names it (beside a live session)
    with pytest.raises(ParentsDeleted) as excinfo:
        buffer.add(TASKS, [task_record("s-2", "t-ok"), task_record("s-1", "t-late")])

    # then nothing of the batch is buffered
    assert excinfo.value.ids == {"s-1"}
    assert buffer.counts()[TASKS] == 0


def test_purge_leaves_a_tombstone_for_a_session_only_stored_in_the_database(buffer):
    buffer.purge(SESSIONS, "s-stored")

    with pytest.raises(ParentsDeleted):
        buffer.add(TASKS, [task_record("s-stored")])


def test_a_session_write_clears_its_tombstone(buffer):
    buffer.add(SESSIONS, [session_record("s-1")])
    buffer.purge(SESSIONS, "s-1")

    buffer.add(SESSIONS, [session_record("s-1")])  # the session is created anew
    buffer.add(TASKS, [task_record("s-1", "t-1")])

    assert buffer.get(TASKS, "t-1") is not None


def test_a_tombstone_expires_after_its_ttl(buffer, settings):
    settings.BUFFER_TOMBSTONE_TTL = 1
    buffer.purge(SESSIONS, "s-1")

    time.sleep(1.3)
    buffer.add(TASKS, [task_record("s-1", "t-1")])

    assert buffer.get(TASKS, "t-1") is not None


# --- capacity by bytes and size_bytes ------------------------------------------------------------


def test_size_bytes_is_the_length_of_the_buffered_json(buffer):
    first, second = session_record("s-1"), session_record("s-2", filename="x" * 100)
    buffer.add(SESSIONS, [first, second])
    assert buffer.size_bytes() == len(encode(first)) + len(encode(second))

    rewritten = session_record("s-2", filename="short.xlsx")
    buffer.add(SESSIONS, [rewritten])  # coalesced: only the latest write counts
    assert buffer.size_bytes() == len(encode(first)) + len(encode(rewritten))

    buffer.remove_flushed(SESSIONS, _all(buffer, SESSIONS))
    assert buffer.size_bytes() == 0


def test_byte_capacity_refuses_a_batch_whole(buffer, settings):
    records = [session_record(f"s-{i}", filename="f" * 200) for i in range(3)]
    settings.BUFFER_CAPACITY_BYTES = len(encode(records[0])) * 2 + 10
    buffer.add(SESSIONS, records[:1])

    with pytest.raises(BufferFull):
        buffer.add(SESSIONS, records[1:])

    assert buffer.counts()[SESSIONS] == 1
    assert buffer.size_bytes() == len(encode(records[0]))


# --- failure counts ---------------------------------------------------------------------------


def test_record_failures_counts_attempts_per_write(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1"), task_record("s-1", "t-2")])
    entries = _all(buffer, TASKS)

    assert buffer.record_failures(TASKS, entries) == {"t-1": 1, "t-2": 1}
    assert buffer.record_failures(TASKS, entries[:1]) == {entries[0].record_id: 2}
    assert buffer.retrying_count() == 2


def test_a_newer_write_starts_its_failure_count_from_zero(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1", status="pending")])
    old = _all(buffer, TASKS)
    buffer.record_failures(TASKS, old)
    buffer.record_failures(TASKS, old)

    buffer.add(TASKS, [task_record("s-1", "t-1", status="completed")])

    assert buffer.retrying_count() == 0
    assert buffer.record_failures(TASKS, _all(buffer, TASKS)) == {"t-1": 1}


def test_failures_of_a_write_no_longer_buffered_count_nothing(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1", status="pending")])
    old = _all(buffer, TASKS)
    buffer.add(TASKS, [task_record("s-1", "t-1", status="completed")])

    assert buffer.record_failures(TASKS, old) == {"t-1": 0}
    assert buffer.retrying_count() == 0


def test_failure_counts_go_when_the_record_is_flushed(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1")])
    entries = _all(buffer, TASKS)
    buffer.record_failures(TASKS, entries)

    buffer.remove_flushed(TASKS, entries)

    assert buffer.retrying_count() == 0
    buffer.add(TASKS, [task_record("s-1", "t-1")])
    assert buffer.record_failures(TASKS, _all(buffer, TASKS)) == {"t-1": 1}


def test_failure_counts_go_when_the_session_is_purged(buffer):
    buffer.add(TASKS, [task_record("s-1", "t-1"), task_record("s-2", "t-2")])
    buffer.record_failures(TASKS, _all(buffer, TASKS))

    buffer.purge(SESSIONS, "s-1")

    assert buffer.retrying_count() == 1


# --- acceptance times, locks, concurrency ---------------------------------------------------------


def test_acceptance_times_never_decrease_over_many_writes(buffer):
    for i in range(30):
        buffer.add(SESSIONS, [session_record(f"s-{i}")])

    times = [buffer.get(SESSIONS, f"s-{i}")["updated_at"] for i in range(30)]

    assert times == sorted(times)


def test_flush_lock_is_released_only_by_its_owner(buffer, settings):
    settings.BUFFER_LOCK_TTL = 1
    stale = buffer.flush_lock(SESSIONS, wait=0)
    time.sleep(1.2)  # its lease ran out: another flusher may take over
    current = buffer.flush_lock(SESSIONS, wait=0)
    assert current is not None

    stale.release()  # must not free the lock that now belongs to another flusher

    assert buffer.flush_lock(SESSIONS, wait=0) is None
    assert stale.extend_lease() is False
    assert current.extend_lease() is True
    current.release()


def test_flush_lock_waits_for_its_release(buffer):
    held = buffer.flush_lock(TASKS, wait=0)
    threading.Timer(0.3, held.release).start()

    started = time.monotonic()
    taken = buffer.flush_lock(TASKS, wait=5)

    assert taken is not None
    assert 0.2 < time.monotonic() - started < 4
    taken.release()


def test_concurrent_adds_from_threads_are_all_buffered(buffer):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for batch in range(10):
                buffer.add(TASKS, [task_record("s-1", f"t-{n}-{batch}-{i}") for i in range(20)])
        except BaseException as exc:  # reported below, with the thread's traceback lost otherwise
            errors.append(exc)
        finally:
            if isinstance(buffer, SQLiteWriteBuffer):
                connections[buffer.using].close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    entries = _all(buffer, TASKS)
    assert len(entries) == 6 * 10 * 20
    assert len({e.seq for e in entries}) == len(entries)  # every write has its own sequence number


def test_begin_delete_drops_the_writes_and_refuses_new_ones_until_the_delete_ends(buffer):
    from core.exceptions import RecordsBeingDeleted

    buffer.add(SESSIONS, [session_record("s-1"), session_record("s-2")])
    buffer.add(TASKS, [task_record("s-1", f"t-{i}") for i in range(3)] + [task_record("s-2", "u-1")])

    assert buffer.begin_delete(SESSIONS, ["s-1"], keep_active=False) == {"s-1": 3}

    assert buffer.counts() == {SESSIONS: 1, TASKS: 1, AUDIT_LOGS: 0}
    with pytest.raises(RecordsBeingDeleted):
        buffer.add(SESSIONS, [session_record("s-1")])
    with pytest.raises(ParentsDeleted):
        buffer.add(TASKS, [task_record("s-1", "t-9")])
    buffer.add(SESSIONS, [session_record("s-2", total_tasks=3)])  # other sessions are unaffected

    buffer.end_delete(SESSIONS, ["s-1"], deleted=True)
    with pytest.raises(ParentsDeleted):
        buffer.add(TASKS, [task_record("s-1", "t-9")])
    buffer.add(SESSIONS, [session_record("s-1")])  # written anew
    buffer.add(TASKS, [task_record("s-1", "t-9")])
    assert buffer.counts() == {SESSIONS: 2, TASKS: 2, AUDIT_LOGS: 0}


def test_an_abandoned_delete_lifts_its_marks(buffer):
    buffer.begin_delete(SESSIONS, ["s-1"], keep_active=False)

    buffer.end_delete(SESSIONS, ["s-1"], deleted=False)

    buffer.add(TASKS, [task_record("s-1", "t-1")])
    buffer.add(SESSIONS, [session_record("s-1")])
    assert buffer.counts() == {SESSIONS: 1, TASKS: 1, AUDIT_LOGS: 0}


def test_begin_delete_keeping_active_sessions_skips_those_with_a_buffered_write(buffer):
    buffer.add(SESSIONS, [session_record("written")])
    buffer.add(TASKS, [task_record("tasks-written", "t-1")])

    marked = buffer.begin_delete(SESSIONS, ["written", "tasks-written", "idle"], keep_active=True)

    assert marked == {"idle": 0}
    assert buffer.counts() == {SESSIONS: 1, TASKS: 1, AUDIT_LOGS: 0}
    buffer.add(SESSIONS, [session_record("written", total_tasks=2)])
    buffer.add(TASKS, [task_record("tasks-written", "t-2")])
    with pytest.raises(ParentsDeleted):
        buffer.add(TASKS, [task_record("idle", "t-3")])
