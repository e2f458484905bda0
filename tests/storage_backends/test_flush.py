"""Flushing: last accepted write wins through races and failures; bad records are isolated.

Real Redis and MariaDB throughout. Faults that cannot be caused on demand from inside one test (a
write landing exactly between the snapshot and the commit, a connection dying mid-flush) are
injected through a test storage backend that wraps the real SQL backend.
"""

from __future__ import annotations

import random
import threading

import orjson
import pytest
from django.db import connection, connections

from core import metrics
from core.exceptions import FlushFailed
from storage_backends.flush import flush_all
from storage_backends.models import DeadLetter
from storage_backends.sql import SQLBackend
from tests.factories import session_record, task_record
from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS, TASKS = "translation_sessions", "translation_tasks"


class RacingBackend(SQLBackend):
    """The SQL backend, plus a hook that runs just before each write (the injected fault)."""

    before_write = None

    def write(self, collection, records, *, sizes=None):
        hook = type(self).before_write
        if hook is not None:
            type(self).before_write = None
            hook(collection, records)
        return super().write(collection, records, sizes=sizes)


@pytest.fixture
def racing_backend(settings):
    from storage_backends import registry

    path = f"{__name__}.RacingBackend"
    settings.STORAGE_BACKENDS = {SESSIONS: path, TASKS: path}
    registry._instance.cache_clear()
    yield RacingBackend
    RacingBackend.before_write = None
    registry._instance.cache_clear()


def _counter(metric, **labels) -> float:
    return metric.labels(**labels)._value.get() if labels else metric._value.get()


def test_many_updates_of_the_same_ids_across_flushes_end_at_the_last_accepted(write_buffer):
    last: dict[str, dict] = {}
    write_buffer.add(SESSIONS, [session_record("s-1")])
    for round_ in range(5):
        batch = [task_record("s-1", f"t-{i}", retry_count=round_ * 100 + i % 7) for i in range(300)]
        random.shuffle(batch)
        write_buffer.add(TASKS, batch)
        last.update({r["task_id"]: r for r in batch})
        if round_ % 2:
            flush_all(write_buffer)

    flush_all(write_buffer)

    stored = dict(Task.objects.values_list("task_id", "retry_count"))
    assert stored == {task_id: record["retry_count"] for task_id, record in last.items()}


def test_coalescing_turns_three_writes_per_id_into_one_row_write(write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1")])
    for status in ("pending", "processing", "completed"):
        write_buffer.add(TASKS, [task_record("s-1", f"t-{i}", status=status) for i in range(200)])
    before = _counter(metrics.FLUSHED_ITEMS, type="task")

    result = flush_all(write_buffer)

    assert result.written[TASKS] == 200  # 600 accepted writes, 200 row writes
    assert _counter(metrics.FLUSHED_ITEMS, type="task") - before == 200
    assert set(Task.objects.values_list("status", flat=True)) == {"completed"}


def test_a_write_accepted_during_a_flush_is_not_overwritten_by_the_older_snapshot(
    write_buffer, racing_backend
):
    write_buffer.add(SESSIONS, [session_record("s-1", filename="v1.xlsx")])

    def newer_write_arrives(collection, records):
        write_buffer.add(SESSIONS, [session_record("s-1", filename="v2.xlsx")])

    racing_backend.before_write = newer_write_arrives
    flush_all(write_buffer)

    assert Session.objects.get(session_id="s-1").filename == "v1.xlsx"
    assert write_buffer.get(SESSIONS, "s-1")["filename"] == "v2.xlsx"  # kept for the next flush
    flush_all(write_buffer)
    assert Session.objects.get(session_id="s-1").filename == "v2.xlsx"
    assert write_buffer.counts()[SESSIONS] == 0


def test_a_flush_whose_database_connection_dies_keeps_everything_and_a_retry_stores_the_latest(
    write_buffer, racing_backend
):
    write_buffer.add(SESSIONS, [session_record(f"s-{i}", total_tasks=1) for i in range(50)])
    errors_before = _counter(metrics.FLUSH_ERRORS, type="session")

    def connection_dies(collection, records):
        connection.ensure_connection()
        victim = connection.connection.thread_id()
        with _other_connection() as cursor:
            cursor.execute(f"KILL CONNECTION {victim}")

    racing_backend.before_write = connection_dies
    with pytest.raises(FlushFailed):
        flush_all(write_buffer)

    assert write_buffer.counts()[SESSIONS] == 50
    assert Session.objects.count() == 0
    assert _counter(metrics.FLUSH_ERRORS, type="session") == errors_before + 1
    # writes go on while the database is unavailable
    write_buffer.add(SESSIONS, [session_record(f"s-{i}", total_tasks=2) for i in range(25)])

    flush_all(write_buffer)

    stored = dict(Session.objects.values_list("session_id", "total_tasks"))
    assert stored == {f"s-{i}": (2 if i < 25 else 1) for i in range(50)}
    assert write_buffer.counts()[SESSIONS] == 0


class _other_connection:
    """A raw second connection to the same server (to kill the first one with)."""

    def __enter__(self):
        import MySQLdb

        params = connection.get_connection_params()
        self.conn = MySQLdb.connect(**params)
        return self.conn.cursor()

    def __exit__(self, *exc):
        self.conn.close()


def test_two_flushers_racing_with_ongoing_writes_store_the_last_accepted_write(write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1")])
    last: dict[str, int] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def flusher(wait: float) -> None:
        try:
            while not stop.is_set():
                flush_all(write_buffer, wait=wait)
                stop.wait(0.005)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=flusher, args=(w,)) for w in (0, 5)]  # periodic + manual
    for thread in threads:
        thread.start()
    for round_ in range(40):
        batch = [task_record("s-1", f"t-{i}", retry_count=round_) for i in random.sample(range(400), 150)]
        write_buffer.add(TASKS, batch)
        last.update({r["task_id"]: round_ for r in batch})
    stop.set()
    for thread in threads:
        thread.join()
    flush_all(write_buffer, wait=5)

    assert not errors
    assert dict(Task.objects.values_list("task_id", "retry_count")) == last
    assert write_buffer.counts()[TASKS] == 0


def test_one_poison_record_among_999_good_goes_to_the_dead_letter_store(write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1")])
    tasks = [task_record("s-1", f"t-{i}") for i in range(1000)]
    tasks[617]["row_index"] = -1  # bypasses validation: only the database refuses it
    write_buffer.add(TASKS, tasks)
    dead_before = _counter(metrics.DEAD_LETTERS, type="task")

    result = flush_all(write_buffer)

    assert result.written[TASKS] == 999
    assert Task.objects.count() == 999
    assert not Task.objects.filter(task_id="t-617").exists()
    letter = DeadLetter.objects.get()
    assert (letter.collection, letter.record_id) == (TASKS, "t-617")
    assert letter.error
    assert '"row_index":-1' in letter.payload
    assert write_buffer.counts()[TASKS] == 0
    assert _counter(metrics.DEAD_LETTERS, type="task") == dead_before + 1
    assert _counter(metrics.DATA_LOSS) == 0


def test_tasks_whose_session_is_still_buffered_wait_for_it(write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.add(TASKS, [task_record("s-1", "t-1")])
    # another flusher is on the sessions of s-1's shard
    sessions_lock = write_buffer.flush_lock(SESSIONS, wait=0, shard=write_buffer.shard_of("s-1"))

    result = flush_all(write_buffer)
    sessions_lock.release()

    assert result.skipped == [SESSIONS]
    assert result.deferred == 1
    assert write_buffer.get(TASKS, "t-1") is not None
    assert not DeadLetter.objects.exists()
    flush_all(write_buffer)
    assert Task.objects.filter(task_id="t-1").exists()


def test_tasks_whose_session_no_longer_exists_are_dead_lettered_not_lost(write_buffer):
    write_buffer.add(TASKS, [task_record("gone", "t-1")])

    result = flush_all(write_buffer)

    assert result.dead_lettered[TASKS] == 1
    assert DeadLetter.objects.get().record_id == "t-1"


def test_requeued_dead_letter_is_buffered_again(write_buffer):
    from storage_backends.dead_letters import dead_letters_requeue

    write_buffer.add(TASKS, [task_record("late", "t-1")])
    flush_all(write_buffer)
    letter = DeadLetter.objects.get()
    write_buffer.add(SESSIONS, [session_record("late")])  # the cause is fixed

    assert dead_letters_requeue(ids=[letter.id]) == 1
    assert dead_letters_requeue(ids=[letter.id]) == 0
    flush_all(write_buffer)

    assert Task.objects.filter(task_id="t-1", session_id="late").exists()
    letter.refresh_from_db()
    assert letter.requeued_at is not None


def test_flush_records_the_time_of_the_last_successful_flush(write_buffer):
    assert write_buffer.last_flush() is None

    flush_all(write_buffer)

    assert write_buffer.last_flush().endswith("Z")


def test_flush_paused_keeps_flushers_out_until_released(write_buffer):
    from storage_backends.flush import flush_paused

    write_buffer.add(SESSIONS, [session_record("s-1")])
    write_buffer.add(TASKS, [task_record("s-1", "t-1")])
    with flush_paused((SESSIONS, TASKS), write_buffer, wait=1):
        result = flush_all(write_buffer, wait=0)
        assert result.skipped == [SESSIONS, TASKS]
        with pytest.raises(FlushFailed):
            flush_all(write_buffer, wait=0.2)
    assert flush_all(write_buffer).written == {SESSIONS: 1, TASKS: 1, "audit_logs": 0}


def test_a_dead_letter_its_schema_now_refuses_is_not_requeued_and_says_why(write_buffer):
    """Re-queueing checks each payload against its collection's declared schema: a letter that
    would fail again (here: a status no longer accepted) is named, and nothing is buffered."""
    from core.exceptions import InvalidRecords
    from storage_backends.dead_letters import dead_letters_requeue

    write_buffer.add(TASKS, [task_record("late", "t-1"), task_record("late", "t-2")])
    flush_all(write_buffer)
    good, bad = DeadLetter.objects.order_by("record_id")
    payload = orjson.loads(bad.payload)
    DeadLetter.objects.filter(pk=bad.pk).update(
        payload=orjson.dumps({**payload, "status": "paused"}).decode()
    )
    write_buffer.add(SESSIONS, [session_record("late")])

    with pytest.raises(InvalidRecords) as refused:
        dead_letters_requeue(ids=[good.id, bad.id])

    assert refused.value.errors == [
        {"field": f"dead_letter[{bad.id}]", "message": refused.value.errors[0]["message"]}
    ]
    assert "status" in refused.value.errors[0]["message"]
    assert write_buffer.counts()[TASKS] == 0
    assert DeadLetter.objects.filter(requeued_at__isnull=True).count() == 2
    assert dead_letters_requeue(ids=[good.id]) == 1
