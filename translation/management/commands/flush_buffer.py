"""``manage.py flush_buffer``: write everything buffered to the database now (sessions first).

Exit status 0 when the buffer was flushed, 1 when storage failed (the data stays buffered).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import StorageUnavailable
from storage_backends.buffer import get_write_buffer
from storage_backends.flush import flush_all


class Command(BaseCommand):
    help = "Flush the write buffer to the database now."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a running flush")

    def handle(self, *args: Any, wait: float, **options: Any) -> None:
        buffer = get_write_buffer()
        try:
            before = buffer.counts()
            result = flush_all(buffer, wait=wait)
        except StorageUnavailable as exc:
            raise CommandError(f"flush failed, the data stays buffered: {exc.detail}") from exc
        summary = result.as_dict()
        self.stdout.write(
            f"buffered before: {before['translation_sessions']} sessions, {before['translation_tasks']} tasks; "
            f"written: {summary['sessions_written']} sessions, {summary['tasks_written']} tasks; "
            f"dead-lettered: {summary['dead_lettered']}; deferred: {summary['deferred']}; "
            f"{summary['duration_ms']} ms"
        )
