"""The two-level read cache: levels, version checks, and the write-then-read race (real Redis)."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from storage_backends.read_cache import ReadCache, invalidate


def _count(cache: str, level: str, result: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "persistence_read_cache_requests_total", {"cache": cache, "level": level, "result": result}
        )
        or 0.0
    )


@pytest.fixture
def key() -> str:
    return f"test:{uuid.uuid4().hex}"


def test_a_second_read_is_a_level_1_hit_and_another_process_a_level_2_hit(key):
    cache, other = ReadCache("user"), ReadCache("user")
    loads = []
    before = _count("user", "l1", "hit"), _count("user", "l2", "hit")
    assert cache.get(key, lambda: loads.append(1) or {"v": 1}) == {"v": 1}
    assert cache.get(key, lambda: loads.append(1) or {"v": 2}) == {"v": 1}
    assert other.get(key, lambda: loads.append(1) or {"v": 3}) == {"v": 1}
    assert loads == [1]
    assert _count("user", "l1", "hit") == before[0] + 1 and _count("user", "l2", "hit") == before[1] + 1


def test_invalidate_reaches_level_1_of_every_instance(key):
    first, second = ReadCache("user"), ReadCache("user")
    first.get(key, lambda: "old")
    second.get(key, lambda: "old")
    invalidate(key)
    assert first.get(key, lambda: "new") == "new" and second.get(key, lambda: "new") == "new"


def test_a_fill_with_a_value_loaded_before_a_write_is_not_cached(key):
    cache = ReadCache("user")

    def load_then_write_commits() -> str:
        value = "old"  # read from the database before the writer committed
        invalidate(key)  # the writer's after-commit invalidation lands before the fill
        return value

    assert cache.get(key, load_then_write_commits) == "old"  # this reader answers what it read
    assert cache.get(key, lambda: "new") == "new"  # but nobody is served it afterwards
