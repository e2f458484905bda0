"""Retries against answers the real service gives under pressure: 429 from its rate limit and 503
BUFFER_FULL from its back-pressure, each with the Retry-After it sends."""

from __future__ import annotations

import time

import pytest

from persistence_client import PersistenceClient, RetryPolicy, Unavailable
from tests.client.conftest import session
from tests.processes import GunicornServer, service_env

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_the_rate_limits_429_is_retried_after_its_retry_after(live):
    env = service_env(API_AUTH_ENABLED="true", THROTTLE_RATE_KEY="3/s", THROTTLE_RATE_IP="off")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    with (
        GunicornServer(env=env) as server,
        PersistenceClient(server.url, api_key=live.key, sleep=sleep, flush_interval=60) as client,
    ):
        answers = [client.stats() for _ in range(5)]  # more than 3 a second

    assert len(answers) == 5  # every call got through in the end
    assert client.counters.retries >= 1
    assert slept and all(seconds >= 1 for seconds in slept)  # the service's Retry-After: 1


def test_a_full_service_buffer_503_is_retried_after_its_retry_after_then_kept(live, uid):
    env = service_env(
        API_AUTH_ENABLED="true", THROTTLE_RATE_KEY="off", THROTTLE_RATE_IP="off", BUFFER_CAPACITY="5"
    )
    slept: list[float] = []
    with GunicornServer(env=env) as server:
        client = PersistenceClient(
            server.url,
            api_key=live.key,
            sleep=slept.append,  # the service asks for 5 s; the test only records the waits
            retry=RetryPolicy(attempts=3),
            flush_interval=60,
        )
        client.persist_sessions([session(f"{uid}-{n}") for n in range(10)])  # more than the service holds

        with pytest.raises(Unavailable) as caught:
            client.send_buffered()
        client._closed = True  # nothing more to send to this service

    assert (caught.value.status, caught.value.error_code) == (503, "BUFFER_FULL")
    assert len(slept) == 2 and all(seconds >= 5 for seconds in slept)
    assert client.buffered == 10  # kept for when the service has room again
