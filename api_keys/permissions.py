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


class HasScope(BasePermission):
    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not settings.API_AUTH_ENABLED:
            return True
        public_setting = getattr(view, "public_setting", None)
        if public_setting and getattr(settings, public_setting, False):
            return True
        api_key = request.auth
        if not isinstance(api_key, APIKey):
            raise exceptions.NotAuthenticated(f"An API key is required in the {HEADER} header.")
        scope = required_scope(request.method, view)
        if api_key.allows(scope):
            return True
        self.message = f"This API key lacks the {scope!r} scope this endpoint needs."
        return False
