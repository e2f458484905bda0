"""Redis clients that keep one connection per thread, for the calls made on every request.

A ``redis.Redis`` on a connection pool takes a connection from the pool for each command and gives it
back afterwards (a lock, a poll of the socket for stray data, bookkeeping): on this service's hot
paths (rate limits, user-session lookups, read-cache version checks) that was a third of the client's
CPU per round trip. A single-connection client skips it; keeping one per thread (and per process, so
a forked child never shares its parent's socket) keeps it thread-safe without a shared lock. A
connection that fails is dropped and re-opened by redis-py on the next command, as with a pool.

    _client = ThreadClients(socket_connect_timeout=0.3, socket_timeout=0.5)
    client = _client("redis://127.0.0.1:6379/0")     # may raise redis.ConnectionError: Redis down

Constructing a client connects at once, so a caller that handles ``redis.RedisError`` must call
this inside its ``try`` block. A thread's clients go (and their sockets close) with the thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import redis


class ThreadClients:
    """Single-connection ``redis.Redis`` clients by URL, one per thread and process."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._local = threading.local()

    def __call__(self, url: str, **options: Any) -> redis.Redis:
        clients: dict[tuple[int, str], redis.Redis] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        key = (os.getpid(), url)
        client = clients.get(key)
        if client is None:
            client = redis.Redis.from_url(url, single_connection_client=True, **{**self.options, **options})
            clients[key] = client
        return client

    def cache_clear(self) -> None:
        """Forget every thread's clients (tests that point a URL elsewhere)."""
        self._local = threading.local()


def run_script(
    script: Any, client: redis.Redis, *, keys: Sequence[Any] = (), args: Sequence[Any] = ()
) -> Any:
    """``script(keys=keys, args=args, client=client)`` (a ``register_script`` object), with about half
    of redis-py's CPU per call on the hot paths.

    On a connected single-connection client (the clients above, and core.cache's) EVALSHA is written
    and its reply read on the connection itself, skipping redis-py's per-command wrapping (retry
    closure, operation timing hooks, command-name lookups), which cost as much as the round trip's
    own work. The reply is the same (EVALSHA has no response callback; errors raise as ever).
    Anything else goes through ``script(...)``, which connects, loads the script and retries as
    redis-py always does: no connection yet, a reconnect pending, the script unknown to the server
    (NOSCRIPT), or a connection error or timeout (the connection is closed by then, and redis-py's
    retry would have sent the command again too).
    """
    conn = client.connection
    if conn is not None and conn._sock is not None and not conn.should_reconnect():
        with client.single_connection_lock:
            try:
                conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                pass
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                pass
    return script(keys=keys, args=args, client=client)
