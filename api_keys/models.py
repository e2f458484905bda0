"""API keys: djangorestframework-api-key's hashed key (prefix + SHA-512 of the secret) plus scopes.

The secret is shown once, when the key is created (``create_api_key`` or the admin); only its
hash is stored. A key is revoked by setting ``revoked`` (the admin, or ``revoke_api_key``).
"""

from __future__ import annotations

import functools

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

from api_keys.scopes import SCOPES, parse_scopes, scopes_allow


def validate_scopes(value: str) -> None:
    parse_scopes(value)


@functools.lru_cache(maxsize=64)
def _parsed_scopes(value: str) -> tuple[str, ...]:
    """``parse_scopes`` of a stored value, parsed once per process (checked on every request)."""
    return parse_scopes(value)


class APIKey(AbstractAPIKey):
    scopes = models.CharField(
        max_length=32,
        default="read",
        validators=[validate_scopes],
        help_text=f"Comma-separated: {', '.join(SCOPES)}. admin may do everything; write does not imply read.",
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    @property
    def scope_list(self) -> tuple[str, ...]:
        return _parsed_scopes(self.scopes)

    def allows(self, scope: str) -> bool:
        """Whether this key may call a view that needs ``scope``."""
        return scopes_allow(self.scope_list, scope)
