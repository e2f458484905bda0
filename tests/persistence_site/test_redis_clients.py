"""core.redis_clients.run_script: the same replies as redis-py's Script call, and its fallbacks."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from core.redis_clients import ThreadClients, run_script

SCRIPT = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1, false, {1, 'x'}}"


@pytest.fixture
def client() -> redis.Redis:
    return ThreadClients(socket_connect_timeout=0.5, socket_timeout=0.5)(settings.REDIS_URL)


def test_the_reply_is_the_scripts_own(client):
    script = client.register_script(SCRIPT)
    expected = script(keys=["k"], args=["a", 41], client=client)
    assert (
        run_script(script, client, keys=["k"], args=["a", 41])
        == expected
        == [b"k", b"a", 42, None, [1, b"x"]]
    )


def test_a_script_the_server_does_not_know_is_loaded(client):
    # given a script never sent to this server (unique source)
    script = client.register_script(f"return '{uuid.uuid4().hex}'")
    assert not client.script_exists(script.sha)[0]
    # then it answers, and is loaded from then on
    assert len(run_script(script, client)) == 32
    assert client.script_exists(script.sha)[0]


def test_an_error_of_the_script_raises_as_redis_py_does(client):
    script = client.register_script("return redis.error_reply('nope')")
    with pytest.raises(redis.ResponseError, match="nope"):
        run_script(script, client)


def test_a_closed_connection_is_reopened(client):
    script = client.register_script(SCRIPT)
    run_script(script, client, keys=["k"], args=["a", 1])
    # given the server closed this client's connection
    other = redis.Redis.from_url(settings.REDIS_URL)
    assert other.client_kill_filter(_id=client.client_id()) == 1
    # then the next call reconnects and answers
    assert run_script(script, client, keys=["k"], args=["b", 1])[1] == b"b"
