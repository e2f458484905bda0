"""The users app: the translation platform's users (API.md §8) and the routes of their sessions."""

from __future__ import annotations

import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class UsersConfig(AppConfig):
    name = "users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The read cache's hit/miss series exist from start-up (at zero), in every process.
        from storage_backends import read_cache  # noqa: F401
        from storage_backends.redis_sessions import warn_if_evicting

        warn_if_evicting()
