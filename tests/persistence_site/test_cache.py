from django.core.cache import caches

from core.cache import RedisCache


def test_the_redis_cache_reuses_one_client_and_works():
    cache = caches["default"]
    assert isinstance(cache, RedisCache)  # the test settings use Redis
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client
    assert cache._cache.get_client() is client  # one server: reads and writes share the pool

    cache.delete_many(["cache-test", "cache-test-n"])
    cache.set("cache-test", {"a": 1}, 5)
    assert cache.get("cache-test") == {"a": 1}
    assert cache.add("cache-test-n", 0, 5)
    assert cache.incr("cache-test-n") == 1
    cache.delete_many(["cache-test", "cache-test-n"])
    assert cache.get("cache-test") is None
