"""Fixtures for tests that run with API keys on (the test settings turn them off by default).

Imported by the conftest of each test package that needs them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from api_keys.services import api_key_create

HEADER = "X-API-Key"


@pytest.fixture
def auth_enabled(settings):
    """API keys on, and rate limits off so that a long parametrized run is never throttled."""
    settings.API_AUTH_ENABLED = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "off", "client_ip": "off", "auth_failure": "off"},
    }
    return settings


@pytest.fixture
def make_api_key(db) -> Callable[..., str]:
    """``make_api_key("read,write")`` -> the secret of a new key with those scopes."""

    def make(scopes: str = "read", name: str = "test") -> str:
        _, secret = api_key_create(name=name, scopes=scopes)
        return secret

    return make
