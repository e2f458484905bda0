"""DRF authentication by the ``X-API-Key`` header (the default for every API view).

Every request is first counted against the per-client-address limit (and its key's), and an address
that failed authentication too often in the current window gets 429 THROTTLED without its key being
looked up (core.throttling): refused and anonymous requests are rate limited too. A key
verified in the last ``API_KEY_CACHE_SECONDS`` (5) is taken from this process's memory, so a
revoked key stops working within that time.

No header: the request is anonymous and ``HasScope`` answers 401 NOT_AUTHENTICATED. A header with
an unknown, revoked or expired key: 401 NOT_AUTHENTICATED here. A valid key: ``request.auth`` is
the ``APIKey`` and ``request.user`` stays None (there are no user accounts on the API).

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["api_keys.authentication.APIKeyAuthentication"]}
"""

from __future__ import annotations

import hashlib
import threading
import time

from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_api_key.permissions import KeyParser

from api_keys.models import APIKey
from core.throttling import RequestLimits

HEADER = "X-API-Key"
WWW_AUTHENTICATE = f'APIKey realm="api", header="{HEADER}"'


# Keys verified in this process, by the SHA-256 of the presented key: the lookup and hash check cost
# a database round trip per request otherwise. Bounded: cleared when it grows past this many.
_VERIFIED_MAX = 1024
_verified: dict[bytes, tuple[APIKey, float]] = {}
_verified_lock = threading.Lock()


def _verified_key(raw: str) -> APIKey | None:
    """The key ``raw`` names if it is valid, from the in-process cache when it was verified less
    than ``API_KEY_CACHE_SECONDS`` ago (so a revocation takes effect within that time), else from
    the database (one indexed lookup by the public prefix, then a constant-time hash comparison)."""
    seconds = settings.API_KEY_CACHE_SECONDS
    digest = hashlib.sha256(raw.encode()).digest()
    now = time.monotonic()
    if seconds > 0:
        cached = _verified.get(digest)
        if cached is not None and now - cached[1] < seconds and not cached[0].has_expired:
            return cached[0]
    try:
        api_key = APIKey.objects.get_from_key(raw)
    except APIKey.DoesNotExist:
        return None
    if api_key is None or api_key.has_expired:
        return None
    if seconds > 0:
        with _verified_lock:
            if len(_verified) >= _VERIFIED_MAX:
                _verified.clear()
            _verified[digest] = (api_key, now)
    return api_key


_key_parser = KeyParser()  # reads settings.API_KEY_CUSTOM_HEADER (HTTP_X_API_KEY)


def request_api_key(request: HttpRequest | Request) -> APIKey | None:
    """Count the request against its limits and verify its key (see the module docstring): the
    valid key, or None when the request names none (or keys are off); 401 ``AuthenticationFailed``
    for a wrong key, 429 ``Throttled`` over a limit. The DRF authentication below and the lean
    routes (api_keys.lean) both call this."""
    raw = _key_parser.get(request) if settings.API_AUTH_ENABLED else None
    prefix, dot, _ = (raw or "").partition(".")
    limits = RequestLimits(request, key_prefix=prefix if raw and dot else None)
    limits.check_before_lookup()
    if not raw:
        return None
    api_key = _verified_key(raw) if dot else None
    if api_key is None:
        limits.record_failure()
        raise exceptions.AuthenticationFailed("The API key is unknown, revoked or expired.")
    limits.check_key()
    return api_key


class APIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[None, APIKey] | None:
        api_key = request_api_key(request)
        return None if api_key is None else (None, api_key)

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 rather than 403 for a missing key.
        return WWW_AUTHENTICATE
