"""Test settings: real MariaDB and Redis by default (override with DATABASE_URL / REDIS_URL)."""

import os

os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/persistence")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("API_AUTH_ENABLED", "false")
# Statistics computed on every request: a cached figure from an earlier test (the cache is Redis,
# shared with the servers the tests start) would make a test depend on which tests ran before it.
# The cache's own tests turn it on explicitly.
os.environ.setdefault("STATS_CACHE_SECONDS", "0")
# User sessions in a Redis database of their own; TTLs of 1-2 s so expiry tests sleep briefly.
os.environ.setdefault("USER_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("USER_SESSION_MIN_TTL", "1")
# Keys looked up on every request, so a test that revokes a key sees it refused at once.
os.environ.setdefault("API_KEY_CACHE_SECONDS", "0")

from persistence_site.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files straight from the apps (no collectstatic before the tests).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None

# A second database, used only by the tests that route a collection to it through the SQL plugin's
# OPTIONS (tests/storage_backends/test_routing.py); its test database is created for those alone.
if DATABASES["default"]["ENGINE"].endswith("mysql"):
    import copy

    DATABASES["tasks"] = copy.deepcopy(DATABASES["default"])
    DATABASES["tasks"]["NAME"] = f"{DATABASES['default']['NAME']}_tasks"
