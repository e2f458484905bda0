"""The start-up warning of an evicting maxmemory-policy on the user-session Redis (real Redis)."""

from __future__ import annotations

import logging

import redis
from django.conf import settings

from storage_backends.redis_sessions import user_sessions_eviction_check, warn_if_evicting


def test_an_evicting_policy_is_warned_and_noeviction_is_not(caplog):
    client = redis.Redis.from_url(settings.USER_SESSIONS_REDIS_URL, decode_responses=True)
    before = client.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        client.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.WARNING):
            assert warn_if_evicting() == "allkeys-lru"
        assert "allkeys-lru" in caplog.text
        assert [w.id for w in user_sessions_eviction_check()] == ["storage_backends.W002"]
        client.config_set("maxmemory-policy", "noeviction")
        assert warn_if_evicting() is None and user_sessions_eviction_check() == []
    finally:
        client.config_set("maxmemory-policy", before)
