"""Rebuild the SQL backend's full-text index of audit messages.

    manage.py rebuild_audit_index

Needed on SQLite after ``VACUUM`` or a migration that rebuilds ``audit_events`` (both renumber the
rowids the FTS5 index points at), and on MySQL/MariaDB after a change of the search tokens.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection

from storage_backends.search_sql import fulltext_rebuild


class Command(BaseCommand):
    help = "Rebuild the full-text index of audit messages (SQL audit backend)."

    def handle(self, *args: Any, **options: Any) -> None:
        fulltext_rebuild(connection)
        self.stdout.write("audit full-text index rebuilt")
