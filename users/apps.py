"""The users app: the translation platform's users (docs/api.md §8) and the routes of their sessions."""

from __future__ import annotations

import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class UsersConfig(AppConfig):
    name = "users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from storage_backends.catalog import Collection, declare

        # Served by a plugin of its own (Redis, or a table in the embedded mode), never buffered.
        declare(
            Collection(
                "user_sessions", model=None, id_field="session_id", item_type="user_session", buffered=False
            )
        )
        # The read cache's hit/miss series exist from start-up (at zero), in every process.
        from storage_backends import read_cache  # noqa: F401
        from storage_backends.redis_sessions import warn_if_evicting

        warn_if_evicting()
