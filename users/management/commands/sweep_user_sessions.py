"""Delete expired user sessions of the embedded store (a table); Redis expires its own.

python manage.py sweep_user_sessions
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from storage_backends.db_sessions import DatabaseUserSessions, sweep_expired
from storage_backends.user_sessions import user_session_store


class Command(BaseCommand):
    help = "Delete expired user sessions from the database table (embedded mode)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not isinstance(user_session_store(), DatabaseUserSessions):
            self.stdout.write("User sessions live in Redis, which expires them itself: nothing to sweep.")
            return
        self.stdout.write(f"Deleted {sweep_expired()} expired user sessions.")
