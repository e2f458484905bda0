"""``manage.py cleanup_files [--dry-run]``: delete expired files, pending uploads older than
FILES_PENDING_TTL and orphan objects (files.services.files_cleanup)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from files.services import files_cleanup


class Command(BaseCommand):
    help = "Delete expired files, stale pending uploads and orphan objects from the object store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count.")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = files_cleanup(dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(
            f"{verb}: {counts['expired']} expired, {counts['pending']} stale pending, "
            f"{counts['orphans']} orphan objects"
        )
