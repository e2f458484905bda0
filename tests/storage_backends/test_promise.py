"""202 is a promise: no record blocks the others, no race loses or dead-letters an accepted write.

Real Redis and MariaDB. Poison records are put into the buffer directly (validation refuses them at
the API, which is the point: these tests prove the flusher survives what validation might miss).
Races are deterministic interleavings: a hook runs the competing step at the exact point between
two reads or writes; each test fails on the code before its fix.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection

from core import metrics
from storage_backends import flush
from storage_backends.buffer import ParentsDeleted
from storage_backends.flush import FlushResult, flush_all
from storage_backends.models import DeadLetter
from storage_backends.records import decode
from storage_backends.sql import SQLBackend
from tests.factories import session_record, task_record
from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS, TASKS = "translation_sessions", "translation_tasks"
FLUSH_URL = "/api/v1/translation/flush"


def _counter(metric, **labels) -> float:
    return metric.labels(**labels)._value.get()


# --- one bad record never blocks the others ---------------------------------------------------


def test_a_timestamp_that_overflows_at_flush_is_dead_lettered_and_the_rest_are_stored(
    write_buffer, api_client
):
    # given: the value of finding 1, buffered as if validation had let it through, among healthy tasks
    write_buffer.add(SESSIONS, [session_record("s-1")])
    poison = task_record("s-1", "t-poison", start_time="9999-12-31T23:59:59-05:00")
    write_buffer.add(TASKS, [task_record("s-1", f"t-{i}") for i in range(5)] + [poison])

    # when
    response = api_client.post(FLUSH_URL)

    # then: the flush answers 200, the healthy tasks are stored, the poison is set aside
    assert response.status_code == 200, response.content
    assert response.json()["tasks_written"] == 5
    assert Task.objects.count() == 5
    assert list(DeadLetter.objects.values_list("record_id", flat=True)) == ["t-poison"]
    assert write_buffer.counts()[TASKS] == 0

    # and later batches flow as before
    write_buffer.add(TASKS, [task_record("s-1", f"u-{i}") for i in range(3)])
    assert api_client.post(FLUSH_URL).status_code == 200
    assert Task.objects.count() == 8


def test_a_record_refused_by_an_operators_constraint_is_dead_lettered_in_every_later_batch_too(
    write_buffer, api_client
):
    # given: a CHECK constraint added by an operator (a refusal no validation could foresee)
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE translation_tasks ADD CONSTRAINT no_forbidden CHECK (sheet_name <> 'forbidden')"
        )
    try:
        write_buffer.add(SESSIONS, [session_record("s-1")])
        for batch in range(2):
            records = [task_record("s-1", f"t-{batch}-{i}") for i in range(50)]
            records[17]["sheet_name"] = "forbidden"
            write_buffer.add(TASKS, records)

            response = api_client.post(FLUSH_URL)

            assert response.status_code == 200
            assert response.json()["tasks_written"] == 49
        assert Task.objects.count() == 98
        assert DeadLetter.objects.count() == 2
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE translation_tasks DROP CONSTRAINT no_forbidden")


def _unknown_error_for(record_id: str):
    """Makes the SQL upsert fail with an error code nobody listed whenever ``record_id`` is written
    (a fault that cannot be caused on demand: every real refusal has a known code)."""
    original = SQLBackend._upsert

    def upsert(backend, collection, records, sizes):
        if any(record.get("task_id") == record_id for record in records):
            raise DatabaseError(9999, "an error nobody has seen before")
        return original(backend, collection, records, sizes)

    return upsert


def test_an_unknown_error_is_retried_a_bounded_number_of_flushes_then_dead_lettered(
    write_buffer, api_client, monkeypatch, settings
):
    settings.FLUSH_MAX_ATTEMPTS = 3
    monkeypatch.setattr(SQLBackend, "_upsert", _unknown_error_for("t-odd"))
    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.add(TASKS, [task_record("s-1", f"t-{i}") for i in range(9)] + [task_record("s-1", "t-odd")])
    failures_before = _counter(metrics.FLUSH_RECORD_FAILURES, type="task")

    # the first flushes: the healthy ones are stored, the odd one stays buffered and is reported
    for attempt in (1, 2):
        response = api_client.post(FLUSH_URL)
        assert response.status_code == 200
        assert write_buffer.counts()[TASKS] == 1
        assert write_buffer.retrying_count() == 1
        status = api_client.get("/api/v1/translation/recovery/status").json()
        assert status["retrying"] == 1
        assert DeadLetter.objects.count() == 0
        assert _counter(metrics.FLUSH_RECORD_FAILURES, type="task") == failures_before + attempt
    assert Task.objects.count() == 9

    # the last allowed attempt: dead-lettered, with its error, and no longer retrying
    assert api_client.post(FLUSH_URL).status_code == 200
    letter = DeadLetter.objects.get()
    assert letter.record_id == "t-odd" and "9999" in letter.error and "3 flushes" in letter.error
    assert write_buffer.counts()[TASKS] == 0
    assert write_buffer.retrying_count() == 0


def test_a_newer_write_of_a_failing_record_starts_its_attempts_from_zero(write_buffer, settings):
    settings.FLUSH_MAX_ATTEMPTS = 2
    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.add(TASKS, [task_record("s-1", "t-1")])
    [entry] = next(write_buffer.scan(TASKS, 10))
    assert write_buffer.record_failures(TASKS, [entry]) == {"t-1": 1}

    write_buffer.add(TASKS, [task_record("s-1", "t-1", retry_count=1)])
    [newer] = next(write_buffer.scan(TASKS, 10))

    assert write_buffer.record_failures(TASKS, [newer]) == {"t-1": 1}
    flush_all(write_buffer)
    assert write_buffer.retrying_count() == 0
    assert Task.objects.get().retry_count == 1


def test_a_flush_that_hits_an_unexpected_exception_answers_503_and_keeps_everything(
    write_buffer, api_client, monkeypatch
):
    def broken_scan(*args, **kwargs):
        raise RuntimeError("a bug in the flusher")

    write_buffer.add(SESSIONS, [session_record("s-1")])
    monkeypatch.setattr(type(write_buffer), "scan", broken_scan)

    response = api_client.post(FLUSH_URL)

    assert response.status_code == 503
    assert response.json()["error_code"] == "FLUSH_FAILED"
    assert write_buffer.counts()[SESSIONS] == 1


# --- races ----------------------------------------------------------------------------------


def test_a_session_flushed_between_the_two_existence_reads_does_not_dead_letter_its_tasks(
    write_buffer, monkeypatch
):
    # given: a session and its tasks buffered; the tasks flusher starts while the session is
    # still buffered, and the session flusher commits it (and removes it from the buffer) right
    # after the first of the tasks flusher's two existence reads
    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.add(TASKS, [task_record("s-1", f"t-{i}") for i in range(3)])
    fired = []

    def after_first_read(original):
        def wrapper(*args, **kwargs):
            answer = original(*args, **kwargs)
            if not fired:
                fired.append(True)
                flush_all(write_buffer, wait=0)  # the session flusher; the tasks lock is ours
            return answer

        return wrapper

    monkeypatch.setattr(type(write_buffer), "get_many", after_first_read(type(write_buffer).get_many))
    monkeypatch.setattr(SQLBackend, "existing_ids", after_first_read(SQLBackend.existing_ids))
    shard = write_buffer.shard_of("s-1")  # a session and its tasks share a shard
    lock = write_buffer.flush_lock(TASKS, 0, shard)
    result = FlushResult()

    # when
    try:
        flush._flush_collection(write_buffer, TASKS, shard, lock, None, result)
    finally:
        lock.release()

    # then
    assert fired
    assert DeadLetter.objects.count() == 0
    assert Task.objects.count() + result.deferred == 3
    flush_all(write_buffer)
    assert Task.objects.count() == 3


def test_a_flusher_that_lost_its_lock_and_writes_late_never_overwrites_a_newer_version(write_buffer):
    # given: flusher A read version 1 and stalled (its lease expired unnoticed)
    write_buffer.add(SESSIONS, [session_record("s-1", total_tasks=1)])
    stale = next(write_buffer.scan(SESSIONS, 10))
    stale_records = [decode(SESSIONS, entry) for entry in stale]
    # meanwhile version 2 is accepted and flusher B stores it
    write_buffer.add(SESSIONS, [session_record("s-1", total_tasks=2)])
    flush_all(write_buffer)
    assert Session.objects.get().total_tasks == 2

    # when: A wakes up and commits what it read
    SQLBackend().write(SESSIONS, stale_records)

    # then: the database-side guard kept the newer version
    assert Session.objects.get().total_tasks == 2


def test_an_older_write_never_replaces_a_newer_stored_row_and_an_equal_time_does():
    backend = SQLBackend()
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    newer = {**session_record("s-1", filename="new.xlsx"), "created_at": t0, "updated_at": t0}
    older = {**session_record("s-1", filename="old.xlsx"), "created_at": t0, "updated_at": t0}
    older["updated_at"] = t0 - dt.timedelta(microseconds=1)
    backend.write(SESSIONS, [newer])

    backend.write(SESSIONS, [older])
    assert Session.objects.get().filename == "new.xlsx"

    backend.write(SESSIONS, [{**newer, "filename": "same-time.xlsx"}])
    assert Session.objects.get().filename == "same-time.xlsx"


def test_acceptance_times_never_go_backwards_even_if_the_clock_does(write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1")])
    first = write_buffer.get(SESSIONS, "s-1")["updated_at"]
    # a clock stepped back: the buffer's last acceptance time is in the future
    future_us = int((first + dt.timedelta(hours=1)).timestamp() * 1_000_000)
    write_buffer.redis.set(write_buffer._key("last_accepted"), future_us)

    write_buffer.add(SESSIONS, [session_record("s-1", total_tasks=5)])

    assert write_buffer.get(SESSIONS, "s-1")["updated_at"] >= first + dt.timedelta(hours=1)


def test_a_task_write_racing_a_session_delete_is_refused_not_buffered_for_a_deleted_session(
    write_buffer, api_client, monkeypatch
):
    # given: a stored session; a task write has found it in the database...
    from translation.services.lifecycle import session_delete

    write_buffer.add(SESSIONS, [session_record("s-1")])
    flush_all(write_buffer)
    original = SQLBackend.existing_ids

    def existing_then_deleted(self, collection, ids):
        found = original(self, collection, ids)
        if collection == SESSIONS:
            session_delete(session_id="s-1", buffer=write_buffer)  # ...and the delete runs now
        return found

    monkeypatch.setattr(SQLBackend, "existing_ids", existing_then_deleted)

    # when
    response = api_client.post(
        "/api/v1/translation/tasks/batch", {"tasks": [task_record("s-1", "t-1")]}, format="json"
    )

    # then: refused, nothing buffered, nothing dead-lettered by a later flush
    assert response.status_code == 422, response.content
    assert response.json()["error_code"] == "SESSION_NOT_FOUND"
    monkeypatch.undo()
    assert write_buffer.counts()[TASKS] == 0
    flush_all(write_buffer)
    assert DeadLetter.objects.count() == 0


def test_a_deleted_session_written_again_accepts_tasks_again(write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.purge(SESSIONS, "s-1")
    with pytest.raises(ParentsDeleted):
        write_buffer.add(TASKS, [task_record("s-1", "t-1")])

    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.add(TASKS, [task_record("s-1", "t-1")], require_parents={"s-1"})

    assert write_buffer.counts()[TASKS] == 1


# --- back-pressure by bytes -------------------------------------------------------------------


def test_the_buffer_refuses_writes_above_its_byte_capacity_and_frees_bytes_when_flushed(
    write_buffer, api_client, settings
):
    settings.BUFFER_CAPACITY_BYTES = 200_000
    api_client.post(
        "/api/v1/translation/sessions/batch", {"sessions": [session_record("s-1")]}, format="json"
    )
    big = [task_record("s-1", f"t-{i}", source_text="x" * 50_000) for i in range(3)]
    assert (
        api_client.post("/api/v1/translation/tasks/batch", {"tasks": big}, format="json").status_code == 202
    )
    used = write_buffer.size_bytes()
    assert used > 150_000

    more = [task_record("s-1", f"u-{i}", source_text="y" * 50_000) for i in range(2)]
    response = api_client.post("/api/v1/translation/tasks/batch", {"tasks": more}, format="json")

    assert response.status_code == 503
    assert response.json()["error_code"] == "BUFFER_FULL"
    assert "Retry-After" in response.headers
    # a rewrite of the same ids replaces their bytes rather than adding to them
    assert (
        api_client.post("/api/v1/translation/tasks/batch", {"tasks": big}, format="json").status_code == 202
    )
    assert write_buffer.size_bytes() == used
    flush_all(write_buffer)
    assert write_buffer.size_bytes() == 0
    assert (
        api_client.post("/api/v1/translation/tasks/batch", {"tasks": more}, format="json").status_code == 202
    )


# --- loss is counted, not silent ------------------------------------------------------------


def test_a_buffer_store_that_lost_its_state_is_counted_as_data_loss(write_buffer):
    # given: records flushed once (the checkpoint knows the store's sequence)
    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.add(SESSIONS, [session_record("s-2")])
    flush_all(write_buffer)
    lost_before = metrics.DATA_LOSS._value.get()

    # when: Redis restarts without persistence (its keys, the sequence counter among them, are gone)
    write_buffer.add(SESSIONS, [session_record("s-3")])
    write_buffer.redis.flushdb()
    write_buffer.add(SESSIONS, [session_record("s-4")])
    flush_all(write_buffer)

    # then: counted once, and a normal flush afterwards counts nothing more (nor does a buffer
    # emptied on purpose with clear(), as the tests and the bench do)
    try:
        assert metrics.DATA_LOSS._value.get() == lost_before + 1
        write_buffer.add(SESSIONS, [session_record("s-5")])
        flush_all(write_buffer)
        write_buffer.clear()
        write_buffer.add(SESSIONS, [session_record("s-6")])
        flush_all(write_buffer)
        assert metrics.DATA_LOSS._value.get() == lost_before + 1
    finally:  # this process's counter is shared by the tests that check it stays 0
        metrics.DATA_LOSS._value.set(lost_before)
