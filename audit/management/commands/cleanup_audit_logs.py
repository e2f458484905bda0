"""Drop the audit events of the months older than AUDIT_RETENTION_DAYS (whole months, UTC).

manage.py cleanup_audit_logs                 # the setting (365 days)
manage.py cleanup_audit_logs --days 30
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.services import audit_retention_apply


class Command(BaseCommand):
    help = (
        "Drop audit events of the months older than AUDIT_RETENTION_DAYS (or --days), whole months at a time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Override AUDIT_RETENTION_DAYS.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is not None and days < 1:
            self.stderr.write("--days must be at least 1")
            raise SystemExit(2)
        result = audit_retention_apply(days=days)
        dropped = ", ".join(result["dropped"]) or "none"
        self.stdout.write(f"audit events before {result['before']} dropped; months: {dropped}")
