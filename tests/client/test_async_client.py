"""AsyncPersistenceClient against the live service, plus its retry path."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from persistence_client import AsyncPersistenceClient, BufferFull, NotFound, RetryPolicy, ValidationFailed
from tests.client.conftest import session, task
from tests.processes import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def run(coroutine):
    return asyncio.run(coroutine)


def test_write_flush_read_and_recover(live, uid):
    async def scenario():
        async with AsyncPersistenceClient(
            live.url, api_key=live.key, batch_size=2, flush_interval=60
        ) as client:
            await client.persist_sessions([session(f"{uid}-s", total_tasks=3)])
            await client.persist_tasks([task(f"{uid}-s", f"{uid}-t{i}", row=i) for i in range(3)])
            answer = await client.flush()
            detail = await client.get_session(f"{uid}-s")
            tasks = [t["task_id"] async for t in client.iter_session_tasks(f"{uid}-s", page_size=2)]
            recovered = [r for r in await client.recover() if r.session_id == f"{uid}-s"]
            with pytest.raises(NotFound):
                await client.get_task(f"{uid}-nope")
            return answer, detail, tasks, recovered, client.counters

    answer, detail, tasks, recovered, counters = run(scenario())

    assert answer["status"] == "flushed"
    assert (detail["total_tasks"], detail["pending_tasks"]) == (3, 3)
    assert tasks == [f"{uid}-t0", f"{uid}-t1", f"{uid}-t2"]
    assert len(recovered) == 1 and len(recovered[0].tasks) == 3
    assert counters.batches_sent == {"sessions": 1, "tasks": 2, "logs": 0}


def test_the_background_task_sends_on_the_time_trigger(live, uid):
    async def scenario():
        async with AsyncPersistenceClient(live.url, api_key=live.key, flush_interval=0.1) as client:
            await client.persist_sessions([session(f"{uid}-s")])
            for _ in range(50):
                if not client.buffered:
                    break
                await asyncio.sleep(0.05)
            return client.buffered, (await client.get_session(f"{uid}-s"))["session_id"]

    assert run(scenario()) == (0, f"{uid}-s")


def test_validation_errors_raise_with_their_errors(live, uid):
    async def scenario():
        async with AsyncPersistenceClient(live.url, api_key=live.key, flush_interval=60) as client:
            await client.persist_sessions([session(f"{uid}-s", total_tasks=-1)])
            with pytest.raises(ValidationFailed) as caught:
                await client.send_buffered()
            return caught.value

    error = run(scenario())
    assert [e["field"] for e in error.errors] == ["sessions[0].total_tasks"]


def test_retry_after_is_honoured():
    answers = iter(
        [httpx.Response(503, headers={"Retry-After": "2"}, json={"detail": "x", "error_code": "BUFFER_FULL"})]
    )
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(202, json={"status": "accepted"}))

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def scenario():
        client = AsyncPersistenceClient(
            "http://service", transport=httpx.MockTransport(handler), sleep=sleep, flush_interval=60
        )
        await client.persist_sessions([session("s")])
        sent = await client.send_buffered()
        client._closed = True
        await client._http.aclose()
        client._sender.cancel()
        return sent

    assert run(scenario()) == 1
    assert len(slept) == 1 and 2.0 <= slept[0] <= 2.2


def test_the_bounded_buffer_raises_when_full():
    async def scenario():
        client = AsyncPersistenceClient(
            f"http://127.0.0.1:{free_port()}", flush_interval=60, max_buffered=10, overflow="raise"
        )
        await client.persist_sessions([session(f"s{i}") for i in range(10)])
        with pytest.raises(BufferFull):
            await client.persist_sessions([session("one-more")])
        client._closed = True
        client._sender.cancel()
        await client._http.aclose()
        return client.buffered

    assert run(scenario()) == 10


def test_the_bounded_buffer_blocks_then_raises_when_the_service_stays_away():
    async def scenario():
        client = AsyncPersistenceClient(
            f"http://127.0.0.1:{free_port()}",
            retry=RetryPolicy(attempts=1),
            flush_interval=60,
            max_buffered=10,
            overflow="block",
            block_timeout=0.3,
        )
        await client.persist_sessions([session(f"s{i}") for i in range(10)])
        started = loop_time()
        with pytest.raises(BufferFull):
            await client.persist_sessions([session("one-more")])
        waited = loop_time() - started
        client._closed = True
        client._sender.cancel()
        await client._http.aclose()
        return client.buffered, waited

    buffered, waited = run(scenario())
    assert buffered == 10
    assert waited >= 0.3


def test_the_bounded_buffer_blocks_until_the_sender_makes_room(live, uid):
    async def scenario():
        async with AsyncPersistenceClient(
            live.url, api_key=live.key, batch_size=50, max_buffered=100, block_timeout=10, flush_interval=60
        ) as client:
            await client.persist_sessions([session(f"{uid}-s")])
            for chunk in range(4):  # 400 records through a buffer of 100
                await client.persist_tasks(
                    [task(f"{uid}-s", f"{uid}-t{chunk}-{i}", row=i) for i in range(100)]
                )
            await client.flush()
            return client.counters.records_sent["tasks"]

    assert run(scenario()) == 400


def loop_time() -> float:
    return asyncio.get_running_loop().time()
