"""A two-level read cache that never answers a state older than an acknowledged write.

Level 1 is a dict in each process (entries live at most ``READ_CACHE_L1_SECONDS``, <= 10 s), level 2
is Redis (``READ_CACHE_L2_SECONDS``, <= 60 s, with jitter so entries filled together do not expire
together); reads are cache-aside. Every entry is stamped with the *version* of what it depends on
(a random token in Redis, ``<prefix>:v:<version key>``). A read fetches the current version in the
same round trip as the level-2 entry, and either level is used only when its stamp equals it, so a
write on any instance, which replaces the version, reaches level 1 of every instance at once.

Writers replace the version before their transaction and again after it commits
(``invalidate``/``invalidate_on_commit``). A reader that loaded the old row before the commit
stamped its fill with a version the commit replaced: the fill of level 2 is a compare-and-set
(Lua), so the old value is never cached under the new version. Versions are random (not counters),
so a version key that expires or is lost can never make an old entry match again.

    cache = ReadCache("user")
    body = cache.get(f"user:{user_id}", key="", load=lambda: render(load_user()))
    invalidate_on_commit(f"user:{user_id}", "users")      # in the service that writes

Without Redis (embedded mode, one process) the versions live in the process. When Redis is down,
reads go to the loader (the database) directly, uncached; ``invalidate`` raises 503 so a write is
refused rather than leaving caches that could not be told.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import transaction
from prometheus_client import Counter

from core.exceptions import StorageUnavailable
from core.redis_clients import ThreadClients, run_script

logger = logging.getLogger(__name__)

#: The caches in use; their metric series exist from start-up.
CACHE_NAMES = ("user", "user_list")
LEVELS = ("l1", "l2")
#: A version outlives every entry stamped with it (level 2 lives at most 60 s): one day.
VERSION_TTL = 86_400
#: Level-2 TTLs vary by up to this fraction downwards, spreading the refills of entries filled together.
JITTER = 0.2
#: The TTL jitter's generator: its own, not the process-wide ``random`` state.
_JITTER_RANDOM = random.Random()

REQUESTS = Counter(
    "persistence_read_cache_requests",
    "Read-cache lookups per cache and level: hit, miss, or error (Redis down: served uncached).",
    ["cache", "level", "result"],
)
for _cache in CACHE_NAMES:
    for _level in LEVELS:
        for _result in ("hit", "miss"):
            REQUESTS.labels(cache=_cache, level=_level, result=_result)
    REQUESTS.labels(cache=_cache, level="l2", result="error")

# KEYS: version key, data key. ARGV: a fresh version (used when none exists), its TTL, the version
# level 1 holds ('' for none). Answers {version} when level 1 is current, else {version, data|false}.
_LOOKUP = """
local v = redis.call('GET', KEYS[1])
if not v then
  v = ARGV[1]
  redis.call('SET', KEYS[1], v, 'EX', ARGV[2])
end
if v == ARGV[3] then return {v} end
return {v, redis.call('GET', KEYS[2])}
"""
# KEYS: version key, data key. ARGV: the version the value was loaded under, the value, its TTL.
_FILL = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"""


# Short timeouts: with Redis slow or down the reader falls back to the database quickly.
_client = ThreadClients(socket_connect_timeout=0.3, socket_timeout=0.5)


def _redis() -> redis.Redis | None:
    """This thread's client of REDIS_URL (None in the embedded mode); raises RedisError when down."""
    return _client(settings.REDIS_URL) if settings.REDIS_URL else None


def _prefix() -> str:
    return str(settings.READ_CACHE_KEY_PREFIX)


class _LocalVersions:
    """Versions of the embedded mode (no Redis: one process holds every cache)."""

    def __init__(self) -> None:
        self._versions: dict[str, str] = {}

    def get(self, version_key: str) -> str:
        return self._versions.setdefault(version_key, secrets.token_hex(8))

    def replace(self, version_key: str) -> None:
        self._versions[version_key] = secrets.token_hex(8)


_local_versions = _LocalVersions()


class ReadCache:
    """One named cache (the ``cache`` label of its metrics). Values are JSON-serialisable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._l1: OrderedDict[str, tuple[str, bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._lookup: Any = None
        self._fill: Any = None
        # The counters of this cache, looked up once rather than on every read.
        self._counted = {
            (level, result): REQUESTS.labels(cache=name, level=level, result=result)
            for level, result in (
                ("l1", "hit"),
                ("l1", "miss"),
                ("l2", "hit"),
                ("l2", "miss"),
                ("l2", "error"),
            )
        }

    def get(self, version_key: str, load: Callable[[], Any], *, key: str = "") -> Any:
        """The value of ``key`` under ``version_key``, from a current cache level or from ``load()``.

        ``load`` must read committed state (the database); its result is cached unless a write
        replaced the version meanwhile. A ``load`` raising (e.g. NotFound) caches nothing.
        """
        if not settings.READ_CACHE_ENABLED:
            return load()
        cache_key = f"{version_key}|{key}"
        with self._lock:
            entry = self._l1.get(cache_key)
        if entry is not None and entry[2] < time.monotonic():
            entry = None
        if not settings.REDIS_URL:
            return self._get_local(cache_key, version_key, entry, load)
        prefix = _prefix()
        keys = [f"{prefix}:v:{version_key}", f"{prefix}:d:{cache_key}"]
        try:
            client = _redis()
            assert client is not None  # the cache is off without REDIS_URL
            if self._lookup is None:
                self._lookup = client.register_script(_LOOKUP)
            answer = run_script(
                self._lookup,
                client,
                keys=keys,
                args=[secrets.token_hex(8), VERSION_TTL, entry[0] if entry else ""],
            )
        except redis.RedisError as exc:
            logger.warning("read cache %s: Redis unavailable, reading uncached: %s", self.name, exc)
            self._counted["l2", "error"].inc()
            return load()
        version = answer[0].decode()
        if entry is not None and len(answer) == 1:
            self._counted["l1", "hit"].inc()
            return orjson.loads(entry[1])
        self._counted["l1", "miss"].inc()
        stored = answer[1]
        if stored:
            stamp, _, data = stored.partition(b"\n")
            if stamp.decode() == version:
                self._counted["l2", "hit"].inc()
                self._keep(cache_key, version, data)
                return orjson.loads(data)
        self._counted["l2", "miss"].inc()
        value = load()
        data = orjson.dumps(value)
        ttl = max(1, int(settings.READ_CACHE_L2_SECONDS * (1 - _JITTER_RANDOM.random() * JITTER)))
        try:
            if self._fill is None:
                self._fill = client.register_script(_FILL)
            filled = run_script(
                self._fill, client, keys=keys, args=[version, version.encode() + b"\n" + data, ttl]
            )
        except redis.RedisError as exc:
            logger.warning("read cache %s: fill failed: %s", self.name, exc)
            return value
        if filled:  # not replaced meanwhile: level 1 may keep it too
            self._keep(cache_key, version, data)
        return value

    def _get_local(self, cache_key: str, version_key: str, entry: Any, load: Callable[[], Any]) -> Any:
        version = _local_versions.get(version_key)
        if entry is not None and entry[0] == version:
            self._counted["l1", "hit"].inc()
            return orjson.loads(entry[1])
        self._counted["l1", "miss"].inc()
        value = load()
        if _local_versions.get(version_key) == version:
            self._keep(cache_key, version, orjson.dumps(value))
        return value

    def _keep(self, cache_key: str, version: str, data: bytes) -> None:
        with self._lock:
            self._l1[cache_key] = (version, data, time.monotonic() + settings.READ_CACHE_L1_SECONDS)
            self._l1.move_to_end(cache_key)
            while len(self._l1) > settings.READ_CACHE_L1_MAX_ENTRIES:
                self._l1.popitem(last=False)

    def clear_local(self) -> None:
        """Forget level 1 of this process (tests and benchmarks)."""
        with self._lock:
            self._l1.clear()


def invalidate(*version_keys: str) -> None:
    """Replace the versions now, so every entry stamped with them is dead on every instance.

    Raises ``StorageUnavailable`` when Redis cannot be told: the caller refuses its write then.
    """
    if not settings.READ_CACHE_ENABLED:
        return
    if not settings.REDIS_URL:
        for version_key in version_keys:
            _local_versions.replace(version_key)
        return
    prefix = _prefix()
    try:
        pipe = _redis().pipeline(transaction=False)  # type: ignore[union-attr]
        for version_key in version_keys:
            pipe.set(f"{prefix}:v:{version_key}", secrets.token_hex(8), ex=VERSION_TTL)
        pipe.execute()
    except redis.RedisError as exc:
        raise StorageUnavailable("The cache store is unavailable; retry later.") from exc


def invalidate_on_commit(*version_keys: str) -> None:
    """``invalidate`` now and again once the current transaction commits (see the module docstring).

    Call it inside the writer's ``transaction.atomic()`` block: outside one, Django runs on-commit
    callbacks at once, before the write.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("invalidate_on_commit must be called inside transaction.atomic()")
    keys = tuple(version_keys)
    invalidate(*keys)

    def again() -> None:
        try:
            invalidate(*keys)
        except StorageUnavailable:
            # Redis failed between the two calls; entries stamped since the first replacement
            # live at most READ_CACHE_L2_SECONDS.
            logger.error("read cache: invalidation after commit failed for %s", keys)

    transaction.on_commit(again)
