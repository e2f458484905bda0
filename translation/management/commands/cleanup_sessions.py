"""``manage.py cleanup_sessions``: delete expired sessions with their tasks (the API's cleanup).

Prints each session it deletes (or, with ``--dry-run``, would delete) and the totals.
Exit status 0 on success, 1 when storage failed part-way (what was deleted stays deleted; run
again to finish).

    python manage.py cleanup_sessions --completed-days 90 --failed-days 30 --dry-run
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from core.exceptions import StorageUnavailable
from translation.services.lifecycle import sessions_cleanup


class Command(BaseCommand):
    help = "Delete completed sessions older than --completed-days and failed/cancelled ones older than --failed-days."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--completed-days",
            type=int,
            default=settings.RETENTION_COMPLETED_DAYS,
            help="completed sessions not updated for this many days (default RETENTION_COMPLETED_DAYS: %(default)s)",
        )
        parser.add_argument(
            "--failed-days",
            type=int,
            default=settings.RETENTION_FAILED_DAYS,
            help="failed or cancelled sessions not updated for this many days "
            "(default RETENTION_FAILED_DAYS: %(default)s)",
        )
        parser.add_argument("--dry-run", action="store_true", help="count and list, delete nothing")
        parser.add_argument("--quiet", action="store_true", help="print only the totals")

    def handle(
        self, *args: Any, completed_days: int, failed_days: int, dry_run: bool, quiet: bool, **options: Any
    ) -> None:
        if completed_days < 0 or failed_days < 0:
            raise CommandError("--completed-days and --failed-days must be 0 or more")
        verb = "would delete" if dry_run else "deleted"

        def show(session_id: str, status: str, updated_at: dt.datetime, tasks: int) -> None:
            if not quiet:
                self.stdout.write(
                    f"{verb} {session_id}  {status}  updated {updated_at.isoformat()}  {tasks} stored tasks"
                )

        try:
            result = sessions_cleanup(
                completed_days=completed_days, failed_days=failed_days, dry_run=dry_run, on_session=show
            )
        except (DatabaseError, StorageUnavailable) as exc:
            raise CommandError(f"cleanup stopped: {exc}; what was deleted stays deleted, run again") from exc
        self.stdout.write(
            f"{'dry run: ' if dry_run else ''}{verb} {result.deleted_sessions} sessions and "
            f"{result.deleted_tasks} tasks (completed > {completed_days} days, failed/cancelled > {failed_days} days)"
        )
