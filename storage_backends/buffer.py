"""The write buffer between an accepted batch (202) and the database.

Placeholder of the foundation: reachability and counts for /health. The write path fills it in.

    buffer = get_write_buffer()
    buffer.ping(), buffer.stats()
"""

from __future__ import annotations

import functools
from typing import Any

import redis
from django.conf import settings

COLLECTIONS = ("translation_sessions", "translation_tasks")


class WriteBuffer:
    """Interface of a write buffer."""

    def ping(self) -> bool:
        """True when the buffer store answers."""
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        """Buffered records per collection."""
        raise NotImplementedError

    def last_flush(self) -> str | None:
        """ISO time of the last successful flush, if any."""
        raise NotImplementedError

    def empty_stats(self) -> dict[str, Any]:
        return self._stats_from({c: 0 for c in COLLECTIONS}, None)

    def stats(self) -> dict[str, Any]:
        return self._stats_from(self.counts(), self.last_flush())

    def _stats_from(self, counts: dict[str, int], last_flush: str | None) -> dict[str, Any]:
        sessions = counts.get("translation_sessions", 0)
        tasks = counts.get("translation_tasks", 0)
        capacity = settings.BUFFER_FLUSH_SIZE
        total = sessions + tasks
        return {
            "sessions_count": sessions,
            "tasks_count": tasks,
            "total_count": total,
            "capacity": capacity,
            "usage_percent": round(100.0 * total / capacity, 1) if capacity else 0.0,
            "last_flush": last_flush,
        }


class InMemoryWriteBuffer(WriteBuffer):
    def ping(self) -> bool:
        return True

    def counts(self) -> dict[str, int]:
        return {c: 0 for c in COLLECTIONS}

    def last_flush(self) -> str | None:
        return None


class RedisWriteBuffer(WriteBuffer):
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def counts(self) -> dict[str, int]:
        return {c: 0 for c in COLLECTIONS}

    def last_flush(self) -> str | None:
        return None


@functools.cache
def _buffer_for(url: str | None) -> WriteBuffer:
    return RedisWriteBuffer(url) if url else InMemoryWriteBuffer()


def get_write_buffer() -> WriteBuffer:
    """The process's buffer, chosen by ``REDIS_URL`` (none: the in-process embedded buffer)."""
    return _buffer_for(settings.REDIS_URL)
