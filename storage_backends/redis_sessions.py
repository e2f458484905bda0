"""The Redis plugin serving the ``user_sessions`` collection (docs/api.md §8): sessions expire by themselves.

One hash per session with a native TTL (``<prefix>:s:<session_id>``), the token's sha256 pointing at
it (``<prefix>:t:<hash>``, same TTL), and a per-user sorted set of session ids scored by expiry
(``<prefix>:u:<user_id>``), pruned as it is read. Every multi-key change is one Lua script, so it is
atomic; times come from the Redis server's clock, so instances with skewed clocks agree. The keys
share the prefix's ``{hash tag}``, so the scripts also run on a Redis Cluster.

    STORAGE_BACKENDS["user_sessions"] = "storage_backends.redis_sessions.RedisUserSessions"
    record, token = user_session_store().create(user_id="u1", ttl_seconds=3600, max_per_user=100)

The Redis must not evict keys (``maxmemory-policy`` ``noeviction`` or a ``volatile-*`` policy would
still drop live sessions; ``allkeys-*`` drops anything): ``warn_if_evicting`` logs a warning at
start-up and the system check ``storage_backends.W002`` reports it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import redis
from django.conf import settings
from django.core.checks import Warning, register

from core import tracing
from core.exceptions import StorageUnavailable
from core.redis_clients import ThreadClients, run_script
from storage_backends import registry
from storage_backends.user_sessions import (
    Session,
    UserSessionStore,
    new_session_id,
    new_token,
    token_hash,
    utc_from_ms,
)

logger = logging.getLogger(__name__)

#: Policies under which Redis may drop a key that has not expired. ``volatile-*`` evicts keys with a
#: TTL, and every session key has one, so those are as bad as ``allkeys-*`` here.
EVICTING_POLICIES = frozenset(
    {
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    }
)

# Shared by the scripts: the server's time in ms, and one session as a flat array (or nil).
_LUA_COMMON = """
local prefix = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function slide(sid, now)
  local sk = prefix .. ':s:' .. sid
  local fields = redis.call('HMGET', sk, 'user_id', 'token_hash', 'ttl')
  if not fields[1] then return false end
  local exp = now + tonumber(fields[3]) * 1000
  redis.call('HSET', sk, 'last_seen_at', now, 'expires_at', exp)
  redis.call('PEXPIREAT', sk, exp)
  redis.call('PEXPIREAT', prefix .. ':t:' .. fields[2], exp)
  local uk = prefix .. ':u:' .. fields[1]
  redis.call('ZADD', uk, exp, sid)
  redis.call('PEXPIREAT', uk, exp, 'GT')
  return true
end
local function drop(sid)
  local sk = prefix .. ':s:' .. sid
  local fields = redis.call('HMGET', sk, 'user_id', 'token_hash')
  if not fields[1] then return 0 end
  redis.call('DEL', sk, prefix .. ':t:' .. fields[2])
  redis.call('ZREM', prefix .. ':u:' .. fields[1], sid)
  return 1
end
"""

# ARGV: prefix, session_id, user_id, token_hash, ttl_seconds, max_per_user, extra (JSON)
_CREATE = (
    _LUA_COMMON
    + """
local sid, user_id = ARGV[2], ARGV[3]
local uk = prefix .. ':u:' .. user_id
local now = now_ms()
local exp = now + tonumber(ARGV[5]) * 1000
redis.call('ZREMRANGEBYSCORE', uk, '-inf', now)
local live = redis.call('ZCARD', uk)
local max = tonumber(ARGV[6])
local evicted = 0
if live >= max then
  for _, old in ipairs(redis.call('ZRANGE', uk, 0, live - max)) do
    drop(old)
    redis.call('ZREM', uk, old)
    evicted = evicted + 1
  end
end
local sk = prefix .. ':s:' .. sid
redis.call('HSET', sk, 'user_id', user_id, 'token_hash', ARGV[4], 'created_at', now,
  'last_seen_at', now, 'expires_at', exp, 'ttl', ARGV[5], 'extra', ARGV[7])
redis.call('PEXPIREAT', sk, exp)
redis.call('SET', prefix .. ':t:' .. ARGV[4], sid, 'PXAT', exp)
redis.call('ZADD', uk, exp, sid)
if redis.call('PEXPIRETIME', uk) < exp then redis.call('PEXPIREAT', uk, exp) end
return {evicted, redis.call('HGETALL', sk)}
"""
)
# ARGV: prefix, token_hash, touch (0/1)
_BY_TOKEN = (
    _LUA_COMMON
    + """
local sid = redis.call('GET', prefix .. ':t:' .. ARGV[2])
if not sid then return false end
if ARGV[3] == '1' and not slide(sid, now_ms()) then return false end
return {sid, redis.call('HGETALL', prefix .. ':s:' .. sid)}
"""
)
# ARGV: prefix, session_id
_REFRESH = (
    _LUA_COMMON
    + """
if not slide(ARGV[2], now_ms()) then return false end
return redis.call('HGETALL', prefix .. ':s:' .. ARGV[2])
"""
)
_END = _LUA_COMMON + "\nreturn drop(ARGV[2])\n"
# ARGV: prefix, user_id
_END_ALL = (
    _LUA_COMMON
    + """
local uk = prefix .. ':u:' .. ARGV[2]
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', uk, 0, -1)) do ended = ended + drop(sid) end
redis.call('DEL', uk)
return ended
"""
)
# ARGV: prefix, user_id -> {sid1, fields1, sid2, fields2, ...}, soonest expiry first
_LIST = (
    _LUA_COMMON
    + """
local uk = prefix .. ':u:' .. ARGV[2]
redis.call('ZREMRANGEBYSCORE', uk, '-inf', now_ms())
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', uk, 0, -1)) do
  local fields = redis.call('HGETALL', prefix .. ':s:' .. sid)
  if #fields > 0 then
    table.insert(out, sid)
    table.insert(out, fields)
  else
    redis.call('ZREM', uk, sid)
  end
end
return out
"""
)


# Short timeouts: a session call answers 503 quickly when Redis is down, rather than hanging.
_client = ThreadClients(socket_connect_timeout=0.5, socket_timeout=1.0, decode_responses=True)


def sessions_redis() -> redis.Redis:
    """This thread's client of the user-session Redis (USER_SESSIONS_REDIS_URL, default REDIS_URL);
    raises RedisError when it is down."""
    if not settings.USER_SESSIONS_REDIS_URL:
        raise StorageUnavailable("No Redis is configured for user sessions (USER_SESSIONS_REDIS_URL).")
    return _client(settings.USER_SESSIONS_REDIS_URL)


@contextmanager
def _unavailable_when_down() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        logger.warning("user-session Redis unavailable: %s", exc)
        raise StorageUnavailable("The user-session store is unavailable; retry later.") from None


def _record(session_id: str, flat: list[str]) -> Session:
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    extra = orjson.loads(fields["extra"])
    return {
        "session_id": session_id,
        "user_id": fields["user_id"],
        "created_at": utc_from_ms(int(fields["created_at"])),
        "last_seen_at": utc_from_ms(int(fields["last_seen_at"])),
        "expires_at": utc_from_ms(int(fields["expires_at"])),
        "ttl_seconds": int(fields["ttl"]),
        "ip": extra.get("ip"),
        "user_agent": extra.get("user_agent"),
        "data": extra.get("data") or {},
        "_token_hash": fields["token_hash"],
    }


def _public(record: Session) -> Session:
    record.pop("_token_hash", None)
    return record


class RedisUserSessions(UserSessionStore):
    """User sessions in Redis. Each call is one script (one round trip); Redis errors are 503."""

    name = "redis"

    def __init__(self) -> None:
        self._scripts: dict[str, Callable[..., Any]] = {}

    def _run(self, name: str, source: str, *args: Any) -> Any:
        with _unavailable_when_down(), tracing.span("user_sessions." + name, store="redis"):
            client = sessions_redis()
            script = self._scripts.get(name)
            if script is None:
                script = self._scripts[name] = client.register_script(source)
            return run_script(script, client, args=[settings.USER_SESSIONS_KEY_PREFIX, *args])

    def create(
        self,
        *,
        user_id: str,
        ttl_seconds: int,
        max_per_user: int,
        ip: str | None = None,
        user_agent: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> tuple[Session, str]:
        token, session_id = new_token(), new_session_id()
        extra = orjson.dumps({"ip": ip, "user_agent": user_agent, "data": data or {}}).decode()
        _, flat = self._run(
            "create", _CREATE, session_id, user_id, token_hash(token), ttl_seconds, max_per_user, extra
        )
        return _public(_record(session_id, flat)), token

    def by_token(self, token: str, *, touch: bool = False) -> Session | None:
        wanted = token_hash(token)
        found = self._run("by_token", _BY_TOKEN, wanted, "1" if touch else "0")
        if not found:
            return None
        record = _record(found[0], found[1])
        # The lookup is by hash already; comparing again in constant time costs nothing and keeps
        # the guarantee independent of how the store finds the record.
        if not hmac.compare_digest(record["_token_hash"], wanted):
            return None
        return _public(record)

    def get(self, session_id: str) -> Session | None:
        with _unavailable_when_down(), tracing.span("user_sessions.get", store="redis"):
            flat = sessions_redis().execute_command(  # type: ignore[no-untyped-call]
                "HGETALL", f"{settings.USER_SESSIONS_KEY_PREFIX}:s:{session_id}"
            )
        if not flat:
            return None
        if isinstance(flat, dict):  # redis-py turns HGETALL into a dict
            flat = [item for pair in flat.items() for item in pair]
        return _public(_record(session_id, flat))

    def refresh(self, session_id: str) -> Session | None:
        flat = self._run("refresh", _REFRESH, session_id)
        return _public(_record(session_id, flat)) if flat else None

    def list_for_user(self, user_id: str) -> list[Session]:
        flat = self._run("list", _LIST, user_id)
        return [_public(_record(flat[i], flat[i + 1])) for i in range(0, len(flat), 2)]

    def end(self, session_id: str) -> bool:
        return bool(self._run("end", _END, session_id))

    def end_all(self, user_id: str) -> int:
        return int(self._run("end_all", _END_ALL, user_id))

    def health_check(self) -> bool:
        try:
            return bool(sessions_redis().ping())
        except (redis.RedisError, StorageUnavailable):
            return False


def eviction_policy() -> str | None:
    """The ``maxmemory-policy`` of the user-session Redis; None when it cannot be read (down, or
    CONFIG disabled as on some managed services)."""
    if not settings.USER_SESSIONS_REDIS_URL:
        return None
    try:
        answer = sessions_redis().config_get("maxmemory-policy")
    except redis.RedisError:
        return None
    return answer.get("maxmemory-policy")


def _eviction_message(policy: str) -> str:
    return (
        f"The Redis holding user sessions ({settings.USER_SESSIONS_REDIS_URL.rsplit('@', 1)[-1]}) has "
        f"maxmemory-policy {policy!r}: under memory pressure it would drop live sessions (users logged "
        "out early, per-user indexes out of step). Use 'noeviction'."
    )


def warn_if_evicting() -> str | None:
    """Log a warning (and return the policy) when the user-session Redis may evict keys."""
    if "RedisUserSessions" not in (registry.backend_path("user_sessions") or ""):
        return None
    policy = eviction_policy()
    if policy in EVICTING_POLICIES:
        logger.warning(_eviction_message(policy))
        return policy
    return None


@register()
def user_sessions_eviction_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """``manage.py check``: storage_backends.W002 when the user-session Redis may evict keys."""
    if "RedisUserSessions" not in (registry.backend_path("user_sessions") or ""):
        return []
    policy = eviction_policy()
    if policy not in EVICTING_POLICIES:
        return []
    return [
        Warning(
            _eviction_message(policy),
            hint="CONFIG SET maxmemory-policy noeviction (and in redis.conf), or give user sessions a "
            "Redis of their own with USER_SESSIONS_REDIS_URL.",
            id="storage_backends.W002",
        )
    ]
