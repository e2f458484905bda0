"""persistence_client against the live service: batching, time trigger, errors, buffer bounds,
queries and recovery. Faults the service cannot be made to answer on demand (a 503 or 429 sequence)
use httpx.MockTransport; an unreachable service is a real closed port."""

from __future__ import annotations

import time

import httpx
import pytest

from persistence_client import (
    AuthError,
    BufferFull,
    NotFound,
    PersistenceClient,
    RetryPolicy,
    Unavailable,
    ValidationFailed,
)
from tests.client.conftest import session, task
from tests.processes import free_port

# The live service uses the test database; the mark makes pytest-django set it up.
pytestmark = [pytest.mark.django_db, pytest.mark.integration]
NO_WAIT = RetryPolicy(attempts=3, base_delay=0, max_delay=0)


def client_for(live, **kwargs) -> PersistenceClient:
    kwargs.setdefault("flush_interval", 60)  # no time trigger unless a test wants one
    return PersistenceClient(live.url, api_key=live.key, **kwargs)


def test_records_go_in_batches_of_batch_size_sessions_first(live, uid):
    with client_for(live, batch_size=100) as client:
        client.persist_tasks([task(f"{uid}-s", f"{uid}-t{i}", row=i) for i in range(250)])
        client.persist_sessions([session(f"{uid}-s", total_tasks=250)])  # after its tasks, sent first
        answer = client.flush()

        assert answer["status"] == "flushed"
        assert client.counters.batches_sent == {"sessions": 1, "tasks": 3, "logs": 0}
        assert client.counters.records_sent == {"sessions": 1, "tasks": 250, "logs": 0}
        assert client.buffered == 0
        stored = list(client.iter_session_tasks(f"{uid}-s"))
    assert [t["task_id"] for t in stored[:2]] == [f"{uid}-t0", f"{uid}-t1"]
    assert len(stored) == 250


def test_the_time_trigger_sends_without_a_flush(live, uid):
    with client_for(live, flush_interval=0.2) as client:
        client.persist_sessions([session(f"{uid}-s")])
        client.persist_tasks([task(f"{uid}-s", f"{uid}-t", status="completed")])
        deadline = time.monotonic() + 5
        while client.buffered and time.monotonic() < deadline:
            time.sleep(0.05)

        assert client.buffered == 0
        assert client.counters.batches_sent["tasks"] == 1
        assert client.get_task(f"{uid}-t")["status"] == "completed"  # accepted, read back


def test_a_full_batch_is_sent_at_once(live, uid):
    with client_for(live, batch_size=10) as client:
        client.persist_sessions([session(f"{uid}-s")])
        client.persist_tasks([task(f"{uid}-s", f"{uid}-t{i}", row=i) for i in range(10)])
        deadline = time.monotonic() + 5
        while client.buffered and time.monotonic() < deadline:
            time.sleep(0.05)

        assert client.buffered == 0  # without waiting for the 60 s interval


def test_validation_errors_raise_with_the_contract_errors_and_are_not_retried(live, uid):
    rejected = []
    with client_for(
        live, on_rejected=lambda kind, records, exc: rejected.append((kind, len(records)))
    ) as client:
        client.persist_sessions([session(f"{uid}-s")])
        client.persist_tasks([task(f"{uid}-s", f"{uid}-ok"), task(f"{uid}-s", f"{uid}-bad", status="done")])
        with pytest.raises(ValidationFailed) as caught:
            client.flush()

        assert caught.value.status == 422
        assert caught.value.error_code == "VALIDATION_ERROR"
        assert [e["field"] for e in caught.value.errors] == ["tasks[1].status"]
        assert client.counters.retries == 0
        assert rejected == [("tasks", 2)]  # all-or-nothing: the batch was refused whole
        assert client.buffered == 0
        with pytest.raises(NotFound):
            client.get_task(f"{uid}-ok")


def test_unknown_ids_raise_not_found_with_the_id(live):
    with client_for(live) as client, pytest.raises(NotFound) as caught:
        client.get_session("no-such-session")
    assert caught.value.body["session_id"] == "no-such-session"


def test_a_wrong_key_raises_auth_error(live):
    with PersistenceClient(live.url, api_key="wrong.key") as client, pytest.raises(AuthError) as caught:
        client.stats()
    assert caught.value.status == 401


def test_a_key_without_the_scope_raises_auth_error_and_is_not_retried(live, uid):
    client = PersistenceClient(live.url, api_key=live.read_key, flush_interval=60)
    client.persist_sessions([session(f"{uid}-s")])

    with pytest.raises(AuthError) as caught:
        client.send_buffered()
    assert (caught.value.status, caught.value.error_code) == (403, "PERMISSION_DENIED")
    assert client.counters.requests == 1
    assert client.buffered == 1  # the records are fine, the key is not: they are kept
    client._closed = True


def test_pages_are_iterated_to_the_end(live, uid):
    with client_for(live) as client:
        client.persist_sessions([session(f"{uid}-{n}", llm_provider=uid[:50]) for n in range(5)])
        client.flush()
        requests_before = client.counters.requests

        found = list(client.iter_sessions(llm_provider=uid[:50], page_size=2, order="asc"))

        assert [s["session_id"] for s in found] == [f"{uid}-{n}" for n in range(5)]
        assert client.counters.requests - requests_before == 3  # pages of 2, 2, 1


def test_recover_returns_incomplete_sessions_with_their_unfinished_tasks(live, uid):
    with client_for(live) as client:
        client.persist_sessions(
            [session(f"{uid}-open", total_tasks=3), session(f"{uid}-done", status="completed")]
        )
        client.persist_tasks(
            [
                task(f"{uid}-open", f"{uid}-p", status="pending"),
                task(f"{uid}-open", f"{uid}-r", status="processing"),
                task(f"{uid}-open", f"{uid}-c", status="completed"),
                task(f"{uid}-done", f"{uid}-x", status="pending"),
            ]
        )
        client.send_buffered()  # accepted, not flushed: recovery sees the buffer too

        recovered = {r.session_id: r for r in client.recover() if r.session_id.startswith(uid)}

    assert set(recovered) == {f"{uid}-open"}
    assert sorted(t["task_id"] for t in recovered[f"{uid}-open"].tasks) == [f"{uid}-p", f"{uid}-r"]
    assert recovered[f"{uid}-open"].session["total_tasks"] == 3


# --- an unreachable service ------------------------------------------------------------------------


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_connection_errors_are_retried_then_raise_unavailable():
    with PersistenceClient(dead_url(), retry=NO_WAIT, flush_interval=60) as client:
        with pytest.raises(Unavailable):
            client.get_session("s")
        assert client.counters.requests == 3
        assert client.counters.retries == 2
        client._closed = True  # nothing to flush to a dead service


def test_the_bounded_buffer_raises_when_full():
    client = PersistenceClient(
        dead_url(), retry=NO_WAIT, flush_interval=60, max_buffered=150, overflow="raise"
    )
    client.persist_sessions([session(f"s{i}") for i in range(100)])

    with pytest.raises(BufferFull):
        client.persist_sessions([session(f"t{i}") for i in range(100)])
    assert client.buffered == 100  # what was accepted locally is kept
    client._closed = True


def test_the_bounded_buffer_blocks_then_raises_when_the_service_stays_away():
    client = PersistenceClient(
        dead_url(), retry=NO_WAIT, flush_interval=60, max_buffered=150, overflow="block", block_timeout=0.3
    )
    client.persist_sessions([session(f"s{i}") for i in range(100)])
    started = time.monotonic()

    with pytest.raises(BufferFull):
        client.persist_sessions([session(f"t{i}") for i in range(100)])
    assert time.monotonic() - started >= 0.3
    assert client.buffered == 100
    client._closed = True


def test_the_bounded_buffer_blocks_until_the_sender_makes_room(live, uid):
    with client_for(live, batch_size=50, max_buffered=100, overflow="block", block_timeout=10) as client:
        client.persist_sessions([session(f"{uid}-s")])
        for chunk in range(4):  # 400 records through a buffer of 100
            client.persist_tasks([task(f"{uid}-s", f"{uid}-t{chunk}-{i}", row=i) for i in range(100)])
        client.flush()

        assert client.counters.records_sent["tasks"] == 400


# --- retry policy (answers the live service cannot be made to give on demand) ----------------------


def scripted(*answers: tuple[int, dict[str, str]]):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        status, extra_headers = answers[min(len(calls), len(answers)) - 1]
        body = {"status": "accepted", "count": 1, "timestamp": "2026-01-01T00:00:00Z"}
        if status >= 400:
            body = {
                "detail": "busy",
                "error_code": "BUFFER_FULL" if status == 503 else "THROTTLED",
                "errors": [],
            }
        return httpx.Response(status, json=body, headers=extra_headers)

    return httpx.MockTransport(handler), calls


def test_503_and_429_are_retried_honouring_retry_after():
    transport, calls = scripted((503, {"Retry-After": "3"}), (429, {"Retry-After": "1"}), (202, {}))
    slept: list[float] = []
    client = PersistenceClient("http://service", transport=transport, sleep=slept.append, flush_interval=60)
    client.persist_sessions([session("s")])

    assert client.send_buffered() == 1
    assert len(slept) == 2
    assert 3.0 <= slept[0] <= 3.2 and 1.0 <= slept[1] <= 1.2  # at least Retry-After, plus jitter
    assert len(calls) == 3
    client._closed = True


def test_retries_stop_after_the_attempts_and_records_stay_buffered():
    transport, calls = scripted((503, {}))
    client = PersistenceClient(
        "http://service",
        transport=transport,
        retry=RetryPolicy(attempts=4),
        sleep=lambda s: None,
        flush_interval=60,
    )
    client.persist_sessions([session("s")])

    with pytest.raises(Unavailable) as caught:
        client.send_buffered()
    assert caught.value.error_code == "BUFFER_FULL"
    assert len(calls) == 4
    assert client.buffered == 1  # kept for the next round
    client._closed = True


def test_other_4xx_are_never_retried():
    transport, calls = scripted((413, {}))
    client = PersistenceClient("http://service", transport=transport, sleep=lambda s: None, flush_interval=60)
    client.persist_sessions([session("s")])

    with pytest.raises(ValidationFailed):
        client.send_buffered()
    assert len(calls) == 1
    client._closed = True


def test_back_off_grows_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=4)
    delays = {attempt: [policy.delay(attempt) for _ in range(200)] for attempt in range(1, 8)}

    for attempt, values in delays.items():
        bound = min(4, 0.5 * 2 ** (attempt - 1))
        assert all(0 <= v <= bound for v in values)
        assert max(values) > bound * 0.8  # jitter spreads over the whole range
    assert all(2.5 <= policy.delay(1, retry_after=2.5) <= 3.0 for _ in range(50))
    assert policy.delay(1, retry_after=30) >= 30  # the service's pause is never cut short


def test_a_retry_after_longer_than_the_client_will_wait_ends_the_retries_at_once():
    transport, calls = scripted((503, {"Retry-After": "120"}), (202, {}))
    slept: list[float] = []
    client = PersistenceClient(
        "http://service",
        transport=transport,
        sleep=slept.append,
        retry=RetryPolicy(max_retry_after=60),
        flush_interval=60,
    )
    client.persist_sessions([session("s")])

    with pytest.raises(Unavailable):
        client.send_buffered()
    assert (len(calls), slept, client.buffered) == (1, [], 1)
    client._closed = True


def test_default_timeouts_are_the_guides():
    client = PersistenceClient("http://service")
    assert (client.timeouts.write, client.timeouts.query, client.timeouts.flush, client.timeouts.restore) == (
        2.0,
        5.0,
        10.0,
        30.0,
    )
    client._closed = True


def test_a_batch_the_background_sender_had_refused_is_raised_by_the_next_flush(live, uid):
    with client_for(live, flush_interval=0.1) as client:
        client.persist_sessions([session(f"{uid}-s")])
        client.persist_tasks([task(f"{uid}-s", f"{uid}-bad", status="done")])
        deadline = time.monotonic() + 5
        while not client.counters.records_rejected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.counters.records_rejected == 1  # refused in the background thread
        client.persist_tasks([task(f"{uid}-s", f"{uid}-ok")])

        with pytest.raises(ValidationFailed) as caught:
            client.flush()

        assert [e["field"] for e in caught.value.errors] == ["tasks[0].status"]
        assert client.get_task(f"{uid}-ok")["status"] == "pending"  # the rest was still sent
        assert client.flush()["status"] == "flushed"  # each refusal is raised once


def test_recover_leaves_out_a_session_deleted_after_the_listing():
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/incomplete-sessions"):
            return httpx.Response(
                200, json={"count": 2, "sessions": [{"session_id": "gone"}, {"session_id": "s"}]}
            )
        if path.endswith("/restore/gone"):
            return httpx.Response(404, json={"detail": "Session not found", "error_code": "NOT_FOUND"})
        restored = {
            "session_id": "s",
            "session": {"session_id": "s"},
            "tasks_count": 1,
            "tasks": [{"task_id": "t"}],
        }
        return httpx.Response(200, json=restored)

    with PersistenceClient("http://service", transport=httpx.MockTransport(handler)) as client:
        recovered = client.recover()

    assert [(r.session_id, r.tasks) for r in recovered] == [("s", [{"task_id": "t"}])]


def test_iterating_tasks_filters_and_pages(live, uid):
    with client_for(live) as client:
        client.persist_sessions([session(f"{uid}-s")])
        client.persist_tasks(
            [task(f"{uid}-s", f"{uid}-t{i}", row=i, batch_id=uid[:64], status="failed" if i % 2 else "completed")
             for i in range(5)]
        )  # fmt: skip
        client.flush()

        failed = [t["task_id"] for t in client.iter_tasks(batch_id=uid[:64], status="failed", page_size=1)]
        stats = client.stats()

    assert sorted(failed) == [f"{uid}-t1", f"{uid}-t3"]
    assert set(stats) >= {"sessions", "tasks", "performance", "storage"}
    assert stats["tasks"]["failed"] >= 2


def test_ids_with_url_characters_address_their_own_record(live, uid):
    # Not "/": the service's routes decode %2F before matching, so it cannot serve such an id.
    session_id, task_id = f"{uid} s?#", f"{uid}-t%20?x#1&page=2"
    with client_for(live) as client:
        client.persist_sessions([session(session_id)])
        client.persist_tasks([task(session_id, task_id)])
        client.flush()

        assert client.get_session(session_id)["session_id"] == session_id
        assert client.get_task(task_id)["task_id"] == task_id
        assert [t["task_id"] for t in client.iter_session_tasks(session_id)] == [task_id]
        assert [r.session_id for r in client.recover() if r.session_id == session_id] == [session_id]


def test_leaving_the_block_on_an_exception_raises_that_exception_not_a_failed_flush():
    client = PersistenceClient(dead_url(), retry=NO_WAIT, flush_interval=60)

    def work() -> None:
        with client:
            client.persist_sessions([session("s")])
            raise KeyError("the caller's own error")

    with pytest.raises(KeyError):
        work()
    assert client.buffered == 1  # unsent, and logged


def test_a_naive_datetime_is_refused_at_the_call_not_by_the_service(live, uid):
    import datetime as dt

    with client_for(live) as client:
        with pytest.raises(ValueError, match="start_time"):
            client.persist_tasks([task(f"{uid}-s", f"{uid}-t", start_time=dt.datetime(2025, 9, 30, 10))])  # noqa: DTZ001

        assert client.buffered == 0
        client.persist_sessions([session(f"{uid}-s")])
        aware = dt.datetime(2025, 9, 30, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        client.persist_tasks([task(f"{uid}-s", f"{uid}-t", start_time=aware)])
        client.flush()
        assert client.get_task(f"{uid}-t")["start_time"] == "2025-09-30T10:00:00Z"
