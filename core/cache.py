"""Django's Redis cache backend, reusing its ``redis.Redis`` client instead of building one per call.

Django's ``RedisCacheClient.get_client`` constructs a new ``redis.Redis`` for every cache operation
(about 0.15 ms of Python each: the client copies its table of ~170 response callbacks). The
connection pools are already shared; this keeps one client per pool as well. ``redis.Redis`` is
thread-safe, and its pool re-opens connections after a fork.

    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": "redis://..."}}
"""

from __future__ import annotations

from typing import Any

import redis
from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(index))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
