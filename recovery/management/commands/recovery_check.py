"""``manage.py recovery_check``: report stuck, lost or inconsistent recovery state.

Exit status: 0 when nothing is wrong, 1 when problems were found (stalled sessions, counter
mismatches, dead letters, a stopped flusher), 2 when the database or the buffer store is
unreachable. Suited to cron and to a probe; ``--json`` prints the whole report as one JSON object.

    python manage.py recovery_check --stalled-minutes 30 --json
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from django.core.management.base import BaseCommand

from core import json_codec
from recovery.checks import CheckThresholds, recovery_check_run

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNREACHABLE = 2


class Command(BaseCommand):
    help = "Check recovery state: incomplete and stalled sessions, counter mismatches, buffer, dead letters."

    def add_arguments(self, parser: Any) -> None:
        defaults = CheckThresholds()
        parser.add_argument(
            "--stalled-minutes",
            type=int,
            default=int(defaults.stalled.total_seconds() // 60),
            help="a processing session with no write for this long is stalled (default %(default)s)",
        )
        parser.add_argument(
            "--settle-minutes",
            type=int,
            default=int(defaults.settle.total_seconds() // 60),
            help="compare counters only for sessions quiet for this long (default %(default)s)",
        )
        parser.add_argument(
            "--window-days",
            type=int,
            default=defaults.window.days,
            help="compare counters only for sessions written within this many days (default %(default)s)",
        )
        parser.add_argument(
            "--flush-overdue-seconds",
            type=int,
            default=int(defaults.flush_overdue.total_seconds()),
            help="a buffered record waiting this long means flushing stopped (default %(default)s)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        thresholds = CheckThresholds(
            stalled=dt.timedelta(minutes=options["stalled_minutes"]),
            settle=dt.timedelta(minutes=options["settle_minutes"]),
            window=dt.timedelta(days=options["window_days"]),
            flush_overdue=dt.timedelta(seconds=options["flush_overdue_seconds"]),
        )
        report = recovery_check_run(thresholds=thresholds)
        if options["json"]:
            self.stdout.write(json_codec.dumps(report).decode())
        else:
            self._print(report)
        if report["database"] != "healthy" or not report["buffer"]["reachable"]:
            sys.exit(EXIT_UNREACHABLE)
        if not report["ok"]:
            sys.exit(EXIT_PROBLEMS)

    def _print(self, report: dict[str, Any]) -> None:
        buffer = report["buffer"]
        self.stdout.write(f"database: {report['database']}")
        if buffer["reachable"]:
            self.stdout.write(
                f"buffer: {buffer['sessions']} sessions, {buffer['tasks']} tasks buffered; "
                f"last flush {buffer['last_flush'] or 'never'}; longest wait {buffer['longest_wait_seconds']} s"
            )
        else:
            self.stdout.write("buffer: unreachable")
        self.stdout.write(f"incomplete sessions: {_shown(report['incomplete_sessions'])}")
        self.stdout.write(f"stalled sessions: {_shown(report['stalled_sessions_count'])}")
        for item in report["stalled_sessions"]:
            self.stdout.write(
                f"  {item['session_id']}  no write since {item['updated_at']} ({item['idle_minutes']} min)"
            )
        self.stdout.write(f"counter mismatches: {_shown(report['counter_mismatches_count'])}")
        for item in report["counter_mismatches"]:
            self.stdout.write(
                f"  {item['session_id']} ({item['status']})  counters {item['counters']}  "
                f"stored rows {item['stored_rows']}"
            )
        self.stdout.write(f"dead letters: {_shown(report['dead_letters'])}")
        if report["ok"]:
            self.stdout.write(self.style.SUCCESS("OK: no problems found"))
        for problem in report["problems"]:
            self.stdout.write(self.style.ERROR(f"PROBLEM: {problem}"))


def _shown(value: int | None) -> str:
    return "unknown" if value is None else str(value)
