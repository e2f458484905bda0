"""Rate limits per client IP, per API key and on failed authentications, counted in the Django cache
(Redis, or local memory in the embedded mode). Over a limit: 429 THROTTLED with ``Retry-After``.

    REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"client_ip": "30000/min", "api_key": "6000/min",
                                                 "auth_failure": "120/min"}}
    limits = RequestLimits(request, key_prefix="abcd1234")   # in the authentication
    limits.check_before_lookup()      # 429 for the address, before any database lookup
    ... look the key up ...
    limits.record_failure()  or  limits.check_key()

The limits are checked by the authentication (``api_keys.authentication``), before the key is looked
up: DRF checks its throttles only after authentication and permissions, so a request with no key or
a wrong key would otherwise be refused (401) without ever being counted, and a flood of bad keys
would cost one database lookup each with no limit. All three counters of a request are read and
advanced in one Redis round trip (one Lua script); a failed authentication costs a second one, which
also gives the request back to the key it named (a wrong secret must not spend its key's budget).

Why fixed windows and not DRF's ``SimpleRateThrottle``: it keeps a list of every request time per
client and rewrites the whole list on each request (get, modify, set). At the rates the translation
client needs that list is thousands of entries long, and two workers updating it at once lose each
other's requests. A counter per window (one atomic INCR, the key expiring with its window) costs the
same at any rate and counts correctly across processes. The price is that a client may send up to
twice the limit across a window boundary, which is fine for protecting the service.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from core.redis_clients import run_script

logger = logging.getLogger(__name__)

OFF = ("", "off", "none")
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SCOPES = ("client_ip", "api_key", "auth_failure")


@dataclass(frozen=True)
class Limit:
    """One rate (``N/s``, ``N/min``, ``N/hour``, ``N/day``) of one scope, as fixed windows."""

    scope: str
    requests: int
    seconds: int

    @classmethod
    def of(cls, scope: str) -> Limit | None:
        """The scope's limit from ``DEFAULT_THROTTLE_RATES`` (read per request, so settings
        overrides take effect), or None when it is off."""
        try:
            rate = api_settings.DEFAULT_THROTTLE_RATES[scope]
        except KeyError:
            raise ImproperlyConfigured(f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] has no {scope!r}") from None
        return _parsed(scope, rate)

    def key(self, ident: str, now: float) -> str:
        return f"throttle:{self.scope}:{ident}:{int(now // self.seconds)}"

    def wait(self, now: float) -> int:
        """Seconds until this window ends (at least 1: the Retry-After)."""
        return max(math.ceil((int(now // self.seconds) + 1) * self.seconds - now), 1)


@functools.lru_cache(maxsize=64)
def _parsed(scope: str, rate: Any) -> Limit | None:
    """``Limit.of``'s parse, once per scope and rate rather than on every request."""
    if rate is None or str(rate).strip().lower() in OFF:
        return None
    count, _, period = str(rate).partition("/")
    try:
        return Limit(scope, int(count), _PERIODS[period.strip()[:1]])
    except (KeyError, ValueError):
        raise ImproperlyConfigured(f"Rate {rate!r} of {scope!r} is not like 100/min") from None


def client_address(request: Request) -> str:
    """DRF's client address (``BaseThrottle.get_ident``): REMOTE_ADDR, or X-Forwarded-For behind
    ``NUM_PROXIES`` trusted proxies (``TRUSTED_PROXY_COUNT``), so a client cannot pick its own
    address by sending the header. The same steps, reading the header from ``META`` rather than
    ``request.headers`` (which builds a dict of every header on first use, on every request)."""
    xff = request.META.get("HTTP_X_FORWARDED_FOR")
    remote_addr = request.META.get("REMOTE_ADDR")
    num_proxies = api_settings.NUM_PROXIES
    if num_proxies is not None:
        if num_proxies == 0 or xff is None:
            return str(remote_addr)
        addrs = xff.split(",")
        return str(addrs[-min(num_proxies, len(addrs))].strip())
    return str("".join(xff.split()) if xff else remote_addr)


class RequestLimits:
    """The three limits of one API request, counted in one round trip (see the module doc)."""

    def __init__(self, request: Request, *, key_prefix: str | None) -> None:
        self.now = time.time()
        self.address = client_address(request)
        self.key_prefix = key_prefix
        self.limits = {scope: Limit.of(scope) for scope in SCOPES}
        self.counts: dict[str, int] = {}

    def _active(self, scope: str, ident: str | None) -> tuple[Limit, str] | None:
        limit = self.limits[scope]
        if limit is None or ident is None:
            return None
        return limit, limit.key(ident, self.now)

    def check_before_lookup(self) -> None:
        """Count the request for its address and its key; 429 if the address is over its limit or
        failed authentication too often in this window. The key's own limit is checked by
        ``check_key`` once the key is known to be valid."""
        address = self._active("client_ip", self.address)
        key = self._active("api_key", self.key_prefix)
        failures = self._active("auth_failure", self.address if self.key_prefix else None)
        increments = {scope: item for scope, item in (("client_ip", address), ("api_key", key)) if item}
        reads = {"auth_failure": failures} if failures else {}
        try:
            self.counts = _count(increments, reads)
        except Exception:  # the cache store is down: let the request through rather than fail it
            _warn_uncounted()
            self.counts = {}
            return
        self._refuse_over("client_ip", self.counts.get("client_ip", 0) > self._allowed("client_ip"))
        self._refuse_over("auth_failure", self.counts.get("auth_failure", 0) >= self._allowed("auth_failure"))

    def check_key(self) -> None:
        """429 if the (valid) key is over its own limit."""
        self._refuse_over("api_key", self.counts.get("api_key", 0) > self._allowed("api_key"))

    def record_failure(self) -> None:
        """The key was wrong: count a failure for the address, and give the request back to the key
        it named (a guesser must not spend a real key's budget)."""
        failures = self._active("auth_failure", self.address)
        key = self._active("api_key", self.key_prefix) if "api_key" in self.counts else None
        try:
            _count({"auth_failure": failures} if failures else {}, {}, give_back=key)
        except Exception:
            logger.warning("throttle: cache unavailable; failure not counted", exc_info=True)

    def _allowed(self, scope: str) -> float:
        limit = self.limits[scope]
        return limit.requests if limit is not None else math.inf

    def _refuse_over(self, scope: str, over: bool) -> None:
        limit = self.limits[scope]
        if over and limit is not None:
            raise exceptions.Throttled(wait=limit.wait(self.now))


# One round trip for every counter of a request. KEYS: the counters to advance, then those to read,
# then the one to give a request back to (if any). ARGV: how many to advance, how many to read,
# whether to give back (1/0), then the TTL of each advanced counter. Answers the counts in KEYS order.
# A counter is created at 0 with its TTL (the window plus a second, so a window never restarts from
# zero early) and then incremented; a give-back only lowers a counter that still exists, so an
# expired window is not re-created without a TTL.
_COUNT_SCRIPT = """
local advance, read = tonumber(ARGV[1]), tonumber(ARGV[2])
local counts = {}
for i = 1, advance do
  redis.call('SET', KEYS[i], 0, 'EX', ARGV[3 + i], 'NX')
  counts[i] = redis.call('INCR', KEYS[i])
end
for i = advance + 1, advance + read do
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
if ARGV[3] == '1' then
  local back = KEYS[advance + read + 1]
  if redis.call('EXISTS', back) == 1 then redis.call('DECR', back) end
end
return counts
"""
_script: Any = None


def _count_script(client: Any) -> Any:
    """The counting script (its SHA is computed locally; each call names its client, and a NOSCRIPT
    reply loads it into that server)."""
    global _script
    if _script is None:
        _script = client.register_script(_COUNT_SCRIPT)
    return _script


def _count(
    increments: dict[str, tuple[Limit, str]],
    reads: dict[str, tuple[Limit, str]],
    give_back: tuple[Limit, str] | None = None,
) -> dict[str, int]:
    """Add one to each counter of ``increments``, read those of ``reads`` (and take one back from
    ``give_back``); returns scope -> count. One script call (one round trip) on Redis; the cache
    API elsewhere."""
    if not increments and not reads and give_back is None:
        return {}
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # The cache's own (prefixed) keys, on the client Django's RedisCacheClient picks for them.
        # make_key: validate_key only warns about keys memcached could not store.
        keys = [backend.make_key(key) for _, key in (*increments.values(), *reads.values())]
        if give_back is not None:
            keys.append(backend.make_key(give_back[1]))
        client = backend._cache.get_client(keys[0], write=True)
        ttls = [limit.seconds + 1 for limit, _ in increments.values()]
        replies = run_script(
            _count_script(client),
            client,
            keys=keys,
            args=[len(increments), len(reads), 1 if give_back is not None else 0, *ttls],
        )
        return {scope: int(count) for scope, count in zip((*increments, *reads), replies, strict=False)}
    counts = {}
    for scope, (limit, key) in increments.items():
        backend.add(key, 0, limit.seconds + 1)
        try:
            counts[scope] = backend.incr(key)
        except ValueError:  # expired between add and incr: this request opens a new count
            backend.add(key, 1, limit.seconds + 1)
            counts[scope] = 1
    for scope, (_, key) in reads.items():
        counts[scope] = int(backend.get(key) or 0)
    if give_back is not None:
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing to give back
            backend.decr(give_back[1])
    return counts


#: When this process last logged that requests went uncounted (monotonic seconds).
_last_uncounted_warning = -math.inf
#: During an outage every request goes uncounted: one log line (with the traceback) this often.
UNCOUNTED_WARNING_INTERVAL = 10.0


def _warn_uncounted() -> None:
    global _last_uncounted_warning
    now = time.monotonic()
    if now - _last_uncounted_warning >= UNCOUNTED_WARNING_INTERVAL:
        _last_uncounted_warning = now
        logger.warning(
            "throttle: cache unavailable; requests are not counted (logged at most every %.0f s)",
            UNCOUNTED_WARNING_INTERVAL,
            exc_info=True,
        )
