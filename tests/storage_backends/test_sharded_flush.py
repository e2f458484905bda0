"""Parallel flushers over a sharded Redis buffer (``BUFFER_SHARDS`` = 4 here, whatever the run's).

Real Redis, real MariaDB, real threads and a real Celery worker (4 processes). What must hold with
several flushers writing different shards at once: every record of every shard is stored, a shard's
sessions before its tasks, the last accepted write of each id wins (across shards too: a task moved
to a session of another shard), deletes stay deleted, and a flusher SIGKILLed mid-flush loses nothing.
"""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest
from django.db import connections

from storage_backends import registry
from storage_backends.flush import flush_all
from storage_backends.models import DeadLetter
from storage_backends.records import decode
from storage_backends.sql import SQLBackend
from tests.factories import session_record, task_record
from tests.processes import CeleryWorker, service_env, wait_for
from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS, TASKS = "translation_sessions", "translation_tasks"
SHARDS = 4


@pytest.fixture
def sharded(settings):
    """The process's buffer (``get_write_buffer``) with 4 shards, emptied before and after."""
    from storage_backends.buffer import _buffer_for, get_write_buffer

    settings.BUFFER_SHARDS = SHARDS
    _buffer_for.cache_clear()
    buffer = get_write_buffer()
    assert buffer.shards == SHARDS
    buffer.clear()
    yield buffer
    buffer.clear()
    _buffer_for.cache_clear()


def sessions_per_shard(buffer, per_shard: int, prefix: str = "s") -> dict[int, list[str]]:
    """Session ids, ``per_shard`` in each shard."""
    found: dict[int, list[str]] = {shard: [] for shard in range(buffer.shards)}
    for n in itertools.count():
        session_id = f"{prefix}-{n}"
        shard = found[buffer.shard_of(session_id)]
        if len(shard) < per_shard:
            shard.append(session_id)
        if all(len(ids) == per_shard for ids in found.values()):
            return found
    raise AssertionError("unreachable")


class RecordingBackend(SQLBackend):
    """The SQL backend, recording the order of its writes: (collection, session ids written)."""

    writes: list[tuple[str, set[str]]] = []

    def write(self, collection, records, *, sizes=None):
        type(self).writes.append((collection, {r["session_id"] for r in records}))
        return super().write(collection, records, sizes=sizes)


@pytest.fixture
def recording_backend(settings):
    path = f"{__name__}.RecordingBackend"
    settings.STORAGE_BACKENDS = {**settings.STORAGE_BACKENDS, SESSIONS: path, TASKS: path}
    registry._instance.cache_clear()
    RecordingBackend.writes = []
    yield RecordingBackend
    registry._instance.cache_clear()


def test_a_session_and_its_tasks_share_a_shard_every_shard_is_used_and_all_get_stored(sharded):
    sessions = [f"job-{i}" for i in range(40)]
    sharded.add(SESSIONS, [session_record(sid) for sid in sessions])
    sharded.add(TASKS, [task_record(sid, f"{sid}/t-{i}") for sid in sessions for i in range(5)])

    by_shard = sharded.counts_by_shard()
    assert all(shard[SESSIONS] > 0 and shard[TASKS] > 0 for shard in by_shard)
    assert sum(shard[TASKS] for shard in by_shard) == 200
    for shard in range(SHARDS):
        tasks = [decode(TASKS, e) for chunk in sharded.scan(TASKS, 50, shard) for e in chunk]
        assert {sharded.shard_of(t["session_id"]) for t in tasks} == {shard}
    # shard 0 keeps the key names of the unsharded layout (an upgrade from one shard strands nothing)
    assert sharded.redis.hlen(f"{sharded.prefix}:{TASKS}") == by_shard[0][TASKS]

    result = flush_all(sharded, wait=5)

    assert result.written[SESSIONS] == 40 and result.written[TASKS] == 200
    assert Session.objects.count() == 40
    assert Task.objects.count() == 200
    assert sharded.counts() == {SESSIONS: 0, TASKS: 0, "audit_logs": 0}


def test_each_shard_flushes_its_sessions_before_its_tasks(sharded, recording_backend):
    ids = sessions_per_shard(sharded, 3)
    every = [sid for shard_ids in ids.values() for sid in shard_ids]
    sharded.add(SESSIONS, [session_record(sid) for sid in every])
    sharded.add(TASKS, [task_record(sid) for sid in every for _ in range(4)])

    result = flush_all(sharded, wait=5, start_shard=2)

    assert result.deferred == 0 and not DeadLetter.objects.exists()
    assert Task.objects.count() == 4 * len(every)
    writes = recording_backend.writes
    for shard, shard_ids in ids.items():
        session_writes = [i for i, (c, sids) in enumerate(writes) if c == SESSIONS and sids & set(shard_ids)]
        task_writes = [i for i, (c, sids) in enumerate(writes) if c == TASKS and sids & set(shard_ids)]
        assert session_writes and task_writes
        assert max(session_writes) < min(task_writes), f"shard {shard}: a task before its session"
    # start_shard=2: shard 2 is written first
    first_sessions = writes[0][1]
    assert first_sessions <= set(ids[2])


def test_a_shard_whose_sessions_lock_is_held_defers_only_its_own_tasks(sharded):
    ids = sessions_per_shard(sharded, 2)
    every = [sid for shard_ids in ids.values() for sid in shard_ids]
    sharded.add(SESSIONS, [session_record(sid) for sid in every])
    sharded.add(TASKS, [task_record(sid) for sid in every for _ in range(3)])
    busy = sharded.flush_lock(SESSIONS, wait=0, shard=1)  # another flusher is on shard 1's sessions

    try:
        result = flush_all(sharded, wait=0)
    finally:
        busy.release()

    assert result.skipped == [SESSIONS]
    assert result.deferred == 6  # shard 1's tasks wait for their sessions
    assert set(Session.objects.values_list("session_id", flat=True)) == set(every) - set(ids[1])
    assert Task.objects.count() == 3 * (len(every) - 2)
    assert not DeadLetter.objects.exists()
    flush_all(sharded, wait=5)
    assert Task.objects.count() == 3 * len(every)


def test_concurrent_flushers_of_different_shards_and_writers_keep_the_last_accepted_write(sharded):
    sessions = [sid for shard_ids in sessions_per_shard(sharded, 3).values() for sid in shard_ids]
    sharded.add(SESSIONS, [session_record(sid) for sid in sessions])
    flush_all(sharded, wait=5)
    last: dict[str, tuple[str, int]] = {}
    accepted = threading.Lock()  # orders the ledger as Redis orders the adds (one script at a time)
    versions = itertools.count(1)
    stop = threading.Event()
    errors: list[BaseException] = []
    most_locks_at_once = [0]

    def flusher(start_shard: int, wait: float) -> None:
        try:
            while not stop.is_set():
                flush_all(sharded, wait=wait, start_shard=start_shard)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(60):
                with accepted:
                    version = next(versions)
                    # tasks move between sessions, so between shards too
                    batch = [
                        task_record(rng.choice(sessions), f"t-{i}", retry_count=version)
                        for i in rng.sample(range(300), 80)
                    ]
                    sharded.add(TASKS, batch)
                    last.update({r["task_id"]: (r["session_id"], version) for r in batch})
        except BaseException as exc:
            errors.append(exc)

    def watch_locks() -> None:
        while not stop.is_set():
            held = len(sharded.redis.keys(f"{sharded.prefix}:lock:*"))
            most_locks_at_once[0] = max(most_locks_at_once[0], held)
            time.sleep(0.001)

    flushers = [threading.Thread(target=flusher, args=(shard, 0)) for shard in range(SHARDS)]
    flushers.append(threading.Thread(target=flusher, args=(0, 5)))  # and the flush endpoint
    writers = [threading.Thread(target=writer, args=(seed,)) for seed in range(2)]
    watcher = threading.Thread(target=watch_locks)
    for thread in (*flushers, *writers, watcher):
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in (*flushers, watcher):
        thread.join()
    flush_all(sharded, wait=5)

    assert not errors
    stored = {t: (s, n) for t, s, n in Task.objects.values_list("task_id", "session_id", "retry_count")}
    assert stored == last
    assert sharded.counts()[TASKS] == 0
    assert not DeadLetter.objects.exists()
    assert most_locks_at_once[0] >= 2, "the flushers never held two shards' locks at once"


@pytest.mark.parametrize("flushed_first", ["newer", "older"])
def test_a_task_moved_to_a_session_of_another_shard_ends_with_its_newer_write(sharded, flushed_first):
    ids = sessions_per_shard(sharded, 1)
    old_session, new_session = ids[0][0], ids[3][0]
    sharded.add(SESSIONS, [session_record(old_session), session_record(new_session)])
    flush_all(sharded, wait=5)
    sharded.add(TASKS, [task_record(old_session, "t-1", retry_count=1)])
    sharded.add(TASKS, [task_record(new_session, "t-1", retry_count=2)])

    # reads see the newer write only, in its new session
    assert sharded.get(TASKS, "t-1")["retry_count"] == 2
    assert sharded.children(SESSIONS, old_session) == []
    assert [t["task_id"] for t in sharded.children(SESSIONS, new_session)] == ["t-1"]
    assert [t["retry_count"] for t in sharded.records(TASKS)] == [2]

    # the older write is still buffered in the old shard: whichever shard is flushed first, the
    # database's guard keeps the newer write
    flush_all(sharded, wait=5, start_shard=3 if flushed_first == "newer" else 0)

    task = Task.objects.get(task_id="t-1")
    assert (task.session_id, task.retry_count) == (new_session, 2)
    assert sharded.counts()[TASKS] == 0
    assert not DeadLetter.objects.exists()


def test_one_batch_naming_a_task_twice_in_two_shards_buffers_its_last_write(sharded):
    ids = sessions_per_shard(sharded, 1)
    sharded.add(SESSIONS, [session_record(ids[1][0]), session_record(ids[2][0])])

    sharded.add(
        TASKS, [task_record(ids[1][0], "t-1", retry_count=1), task_record(ids[2][0], "t-1", retry_count=2)]
    )
    flush_all(sharded, wait=5)

    assert Task.objects.get(task_id="t-1").retry_count == 2
    assert Task.objects.get(task_id="t-1").session_id == ids[2][0]


def test_a_stalled_flusher_of_one_shard_committing_late_never_overwrites_a_newer_version(sharded):
    # given: flusher A read version 1 of shard k and stalled (its lease expired unnoticed)
    sharded.add(SESSIONS, [session_record("s-1", total_tasks=1)])
    shard = sharded.shard_of("s-1")
    stale = [decode(SESSIONS, e) for chunk in sharded.scan(SESSIONS, 10, shard) for e in chunk]
    # meanwhile version 2 is accepted and flusher B stores it
    sharded.add(SESSIONS, [session_record("s-1", total_tasks=2)])
    flush_all(sharded, wait=5, start_shard=(shard + 1) % SHARDS)
    assert Session.objects.get().total_tasks == 2

    # when: A wakes up and commits what it read
    SQLBackend().write(SESSIONS, stale)

    # then: the database-side guard kept the newer version
    assert Session.objects.get().total_tasks == 2


def test_session_deletes_racing_flushers_of_every_shard_stay_deleted(sharded):
    from translation.services.lifecycle import session_delete

    ids = sessions_per_shard(sharded, 4, prefix="d")
    every = [sid for shard_ids in ids.values() for sid in shard_ids]
    doomed = set(every[::2])
    sharded.add(SESSIONS, [session_record(sid) for sid in every])
    for sid in every:
        sharded.add(TASKS, [task_record(sid, f"{sid}/t-{i}") for i in range(250)])
    stop = threading.Event()
    errors: list[BaseException] = []

    def flusher(start_shard: int) -> None:
        try:
            while not stop.is_set():
                flush_all(sharded, wait=0, start_shard=start_shard)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=flusher, args=(shard,)) for shard in range(SHARDS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.05)  # the flushers are under way
        deleted_tasks = sum(session_delete(session_id=sid) for sid in sorted(doomed))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    flush_all(sharded, wait=5)

    assert not errors
    assert deleted_tasks == 250 * len(doomed)  # each delete found all its tasks (buffered or stored)
    assert set(Session.objects.values_list("session_id", flat=True)) == set(every) - doomed
    assert not Task.objects.filter(session_id__in=doomed).exists()
    assert Task.objects.count() == 250 * (len(every) - len(doomed))
    assert not DeadLetter.objects.exists()
    assert sharded.counts()[TASKS] == 0


@pytest.mark.integration
@pytest.mark.slow
def test_celery_workers_flush_shards_in_parallel_and_a_sigkill_mid_flush_loses_nothing(
    sharded, settings, tmp_path
):
    from persistence_site.celery import app
    from storage_backends.redis_buffer import _publish_flush

    # no size-triggered flush may be queued before the one under test
    settings.BUFFER_FLUSH_SIZE = 10**9
    app.control.purge()
    sessions = [sid for shard_ids in sessions_per_shard(sharded, 4).values() for sid in shard_ids]
    sharded.add(SESSIONS, [session_record(sid) for sid in sessions])
    last: dict[str, int] = {}
    total = 32_000
    for version in (1, 2):
        for start in range(0, total, 1000):
            batch = [
                task_record(sessions[i % len(sessions)], f"t-{i}", retry_count=version)
                for i in range(start, start + 1000)
            ]
            sharded.add(TASKS, batch)
            last.update({r["task_id"]: version for r in batch})
    env = service_env(BUFFER_LOCK_TTL="3", BUFFER_SHARDS=str(SHARDS), BUFFER_FLUSH_SIZE="1000000000")
    task_locks = f"{sharded.prefix}:lock:{TASKS}*"
    most_at_once = [0]

    def tasks_locks_held() -> int:
        held = len(sharded.redis.keys(task_locks))
        most_at_once[0] = max(most_at_once[0], held)
        return held

    with CeleryWorker(env=env, concurrency=SHARDS, log_path=tmp_path / "worker1.log") as worker:
        # a write crosses the size: the size trigger enqueues one flush task per shard
        settings.BUFFER_FLUSH_SIZE = 1
        sharded.redis.delete(f"{sharded.prefix}:flush_requested")
        sharded.add(SESSIONS, [session_record(sessions[0])])
        assert wait_for(lambda: tasks_locks_held() >= 2, timeout=60, interval=0.002), (
            "no two worker processes flushed tasks of two shards at once"
        )
        # kill once a few chunks are committed (and so removed from Redis)
        assert wait_for(lambda: sharded.counts()[TASKS] <= total - 3000, timeout=60, interval=0.002)
        worker.kill()
    stored_at_kill = Task.objects.count()

    assert most_at_once[0] >= 2
    assert 0 < stored_at_kill < total, "the kill must land in the middle of the flush"
    assert sharded.counts()[TASKS] >= total - stored_at_kill  # nothing left Redis uncommitted
    # writes go on while no worker runs
    for start in range(0, total, 4000):
        batch = [
            task_record(sessions[i % len(sessions)], f"t-{i}", retry_count=3)
            for i in range(start, start + 1000)
        ]
        sharded.add(TASKS, batch)
        last.update({r["task_id"]: 3 for r in batch})

    with CeleryWorker(env=env, concurrency=SHARDS, log_path=tmp_path / "worker2.log"):
        time.sleep(3.5)  # the dead workers' locks expire (BUFFER_LOCK_TTL=3)
        _publish_flush(SHARDS)
        assert wait_for(lambda: sharded.counts()[TASKS] == 0, timeout=180, interval=0.2)

    stored = dict(Task.objects.values_list("task_id", "retry_count"))
    assert len(stored) == total  # zero lost
    assert stored == last  # zero stale
    assert not DeadLetter.objects.exists()


def test_records_in_shards_beyond_buffer_shards_are_reported_by_a_system_check(sharded, settings):
    from storage_backends.checks import buffer_shards_stranded

    ids = sessions_per_shard(sharded, 1)
    sharded.add(SESSIONS, [session_record(ids[3][0])])
    assert buffer_shards_stranded() == []

    settings.BUFFER_SHARDS = 2  # lowered with shard 3 still holding a record

    (warning,) = buffer_shards_stranded()
    assert warning.id == "storage_backends.W002"
    assert f"{sharded.prefix}:{SESSIONS}:3" in warning.msg
