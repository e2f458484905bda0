"""Rate limits per API key and per client IP: DRF throttles counting in the Django cache (Redis,
or local memory in the embedded mode). Over the limit: 429 THROTTLED with ``Retry-After``.

    REST_FRAMEWORK = {
        "DEFAULT_THROTTLE_CLASSES": ["persistence_site.throttling.APIKeyRateThrottle",
                                     "persistence_site.throttling.ClientIPRateThrottle"],
        "DEFAULT_THROTTLE_RATES": {"api_key": "6000/min", "client_ip": "30000/min"},
    }

The per-IP limit and the limit on failed authentications are checked by the authentication
itself (``api_keys.authentication``), before the key is looked up: DRF checks its throttles only
after authentication and permissions, so a request with no key or a wrong key would otherwise be
refused (401) without ever being counted, and a flood of bad keys would cost one database lookup
each with no limit.

Why not DRF's ``SimpleRateThrottle`` as it is: it keeps a list of every request time per client
and rewrites the whole list on each request (get, modify, set). At the rates the translation
client needs that list is thousands of entries long, and two workers updating it at once lose
each other's requests. A fixed-window counter (one atomic INCR per request, the key expiring
with its window) costs the same at any rate and counts correctly across processes. The price is
that a client may send up to twice the limit across a window boundary, which is fine for
protecting the service.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

OFF = ("", "off", "none")


class FixedWindowRateThrottle(SimpleRateThrottle):
    """``SimpleRateThrottle`` with a counter per window instead of a request log (see module doc)."""

    cache_format = "throttle:%(scope)s:%(ident)s"

    def get_rate(self) -> str | None:
        # Read at request time (DRF reads its class attribute once at import), so settings
        # overrides and reloads take effect.
        try:
            rate = api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] has no {self.scope!r}"
            ) from None
        return None if rate is None or str(rate).strip().lower() in OFF else rate

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        ident_key = self.get_cache_key(request, view)
        if ident_key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.wait_seconds = (window + 1) * self.duration - now
        try:
            count = self._count(f"{ident_key}:{window}")
        except Exception:  # the cache store is down: let the request through rather than fail it
            logger.warning("throttle: cache unavailable; request not counted", exc_info=True)
            return True
        return count <= self.num_requests

    def _count(self, key: str) -> int:
        """Add this request to the window's counter and return the new count."""
        # The key outlives its window by a second, so a window never restarts from zero early.
        timeout = self.duration + 1
        backend = caches["default"]
        if isinstance(backend, RedisCache):
            # One round trip instead of the cache API's three (SET NX, EXISTS, INCR). get_client
            # is Django's RedisCacheClient method; the key is the cache's own (prefixed) form.
            full_key = backend.make_and_validate_key(key)
            pipe = backend._cache.get_client(full_key, write=True).pipeline(transaction=False)
            pipe.set(full_key, 0, ex=timeout, nx=True)
            pipe.incr(full_key)
            return int(pipe.execute()[1])
        # Other backends (local memory in the embedded mode): the portable cache API.
        backend.add(key, 0, timeout)
        try:
            return backend.incr(key)
        except ValueError:  # expired between add and incr: this request opens a new count
            backend.add(key, 1, timeout)
            return 1

    def wait(self) -> float:
        return max(math.ceil(self.wait_seconds), 1)

    def check(self, request: Request) -> None:
        """Count this request; raise ``Throttled`` (429 with Retry-After) when over the limit."""
        if not self.allow_request(request, None):
            raise exceptions.Throttled(wait=self.wait())


class APIKeyRateThrottle(FixedWindowRateThrottle):
    """Per API key (by its public prefix, never the secret). Rate: ``THROTTLE_RATE_KEY``."""

    scope = "api_key"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        from api_keys.models import APIKey

        if not isinstance(request.auth, APIKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


class ClientIPRateThrottle(FixedWindowRateThrottle):
    """Per client IP, every request (with or without a key, counted before the key is checked).
    Rate: ``THROTTLE_RATE_IP``.

    The address is REMOTE_ADDR unless ``TRUSTED_PROXY_COUNT`` (DRF's NUM_PROXIES) says how many
    proxies in front of the service append to X-Forwarded-For; a client cannot forge it then.
    """

    scope = "client_ip"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthFailureRateThrottle(FixedWindowRateThrottle):
    """Failed authentications (unknown, revoked or expired key) per client IP. Over the limit, the
    address gets 429 for the rest of the window without its keys being looked up at all.
    Rate: ``THROTTLE_RATE_AUTH_FAILURES``."""

    scope = "auth_failure"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def check_not_blocked(self, request: Request) -> None:
        """429 if this address failed too often in the current window (counts nothing)."""
        if self.rate is None:
            return
        window = int(self.timer() // self.duration)
        try:
            failures = caches["default"].get(f"{self.get_cache_key(request, None)}:{window}") or 0
        except Exception:
            logger.warning("throttle: cache unavailable; failures not checked", exc_info=True)
            return
        if int(failures) >= self.num_requests:
            self.wait_seconds = (window + 1) * self.duration - self.timer()
            raise exceptions.Throttled(wait=self.wait())

    def record_failure(self, request: Request) -> None:
        self.allow_request(request, None)
