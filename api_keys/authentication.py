"""DRF authentication by the ``X-API-Key`` header (the default for every API view).

Every request is first counted against the per-client-address limit, and an address that failed
authentication too often in the current window gets 429 THROTTLED without its key being looked up
(persistence_site.throttling): refused and anonymous requests are rate limited too.

No header: the request is anonymous and ``HasScope`` answers 401 NOT_AUTHENTICATED. A header with
an unknown, revoked or expired key: 401 NOT_AUTHENTICATED here. A valid key: ``request.auth`` is
the ``APIKey`` and ``request.user`` stays None (there are no user accounts on the API).

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["api_keys.authentication.APIKeyAuthentication"]}
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_api_key.permissions import KeyParser

from api_keys.models import APIKey
from persistence_site.throttling import AuthFailureRateThrottle, ClientIPRateThrottle

HEADER = "X-API-Key"
WWW_AUTHENTICATE = f'APIKey realm="api", header="{HEADER}"'


class APIKeyAuthentication(BaseAuthentication):
    key_parser = KeyParser()  # reads settings.API_KEY_CUSTOM_HEADER (HTTP_X_API_KEY)

    def authenticate(self, request: Request) -> tuple[None, APIKey] | None:
        ClientIPRateThrottle().check(request)
        if not settings.API_AUTH_ENABLED:
            return None
        raw = self.key_parser.get(request)
        if not raw:
            return None
        failures = AuthFailureRateThrottle()
        failures.check_not_blocked(request)
        # One indexed lookup by the key's public prefix, then a constant-time hash comparison.
        try:
            api_key = APIKey.objects.get_from_key(raw)
        except APIKey.DoesNotExist:
            api_key = None
        if api_key is None or api_key.has_expired:
            failures.record_failure(request)
            raise exceptions.AuthenticationFailed("The API key is unknown, revoked or expired.")
        return None, api_key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 rather than 403 for a missing key.
        return WWW_AUTHENTICATE
