"""Django's Redis cache backend, reusing its ``redis.Redis`` client instead of building one per call.

Django's ``RedisCacheClient.get_client`` constructs a new ``redis.Redis`` for every cache operation
(about 0.15 ms of Python each: the client copies its table of ~170 response callbacks). This keeps
one client, holding one connection, per pool and process: Django gives each thread its own cache
backend, so the client is used by one thread only, and a single-connection client skips the pool's
per-command checkout (a lock and a poll of the socket), which the rate limits pay on every request
(core.redis_clients has the same for the service's own Redis calls).

    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": "redis://..."}}
"""

from __future__ import annotations

import os
from typing import Any

import redis
from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[tuple[int, int], redis.Redis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        index = self._get_connection_pool_index(write)
        client = self._clients.get((os.getpid(), index))
        if client is None:
            # Connects at once (redis.ConnectionError when Redis is down, raised from the cache call
            # as before); a forked child makes its own rather than share its parent's socket.
            client = self._client(
                connection_pool=self._get_connection_pool(index), single_connection_client=True
            )
            self._clients[(os.getpid(), index)] = client
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
