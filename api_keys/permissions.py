"""DRF permission: the request's API key holds the scope the view needs (api_keys.scopes).

The default for every API view. ``API_AUTH_ENABLED=false`` (local development only; production
refuses it) lets every request through. A view may name a boolean setting in ``public_setting``
that, when true, opens it without a key (``METRICS_PUBLIC`` for the metrics endpoint).

    REST_FRAMEWORK = {"DEFAULT_PERMISSION_CLASSES": ["api_keys.permissions.HasScope"]}
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from api_keys.authentication import HEADER
from api_keys.models import APIKey
from api_keys.scopes import required_scope


def check_scope(api_key: Any, method: str, view: Any) -> None:
    """Whether ``api_key`` (the authenticated key, or None) may call ``view`` with ``method``:
    401 ``NotAuthenticated`` without a key, 403 ``PermissionDenied`` naming the missing scope.
    ``HasScope`` below and the lean routes (api_keys.lean) both call this."""
    if not settings.API_AUTH_ENABLED:
        return
    public_setting = getattr(view, "public_setting", None)
    if public_setting and getattr(settings, public_setting, False):
        return
    if not isinstance(api_key, APIKey):
        raise exceptions.NotAuthenticated(f"An API key is required in the {HEADER} header.")
    scope = required_scope(method, view)
    if not api_key.allows(scope):
        raise exceptions.PermissionDenied(f"This API key lacks the {scope!r} scope this endpoint needs.")


class HasScope(BasePermission):
    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        # Raising PermissionDenied here answers as DRF's permission_denied would for a False:
        # the request is authenticated (a key-less one got NotAuthenticated above).
        check_scope(request.auth, request.method, view)
        return True
