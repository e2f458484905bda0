"""``manage.py wait_for_storage``: wait until the database and the buffer store answer.

For start-up ordering where the orchestrator cannot wait on health (Kubernetes init containers,
compose implementations that ignore ``service_healthy``): ``wait_for_storage && migrate``.
Exit status 0 once both answer, 1 when ``--timeout`` seconds passed first.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from storage_backends.buffer import get_write_buffer
from system.health import database_healthy


class Command(BaseCommand):
    help = "Wait until the database and the buffer store answer."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait at most")

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        deadline = time.monotonic() + timeout
        while True:
            db_ok = database_healthy()
            if not db_ok:
                connection.close()  # a half-made connection must not be reused by the next try
            buffer_ok = get_write_buffer().ping()
            if db_ok and buffer_ok:
                self.stdout.write("storage: database and buffer store answer")
                return
            if time.monotonic() >= deadline:
                missing = [name for name, ok in (("database", db_ok), ("buffer store", buffer_ok)) if not ok]
                raise CommandError(f"storage: {' and '.join(missing)} did not answer within {timeout:.0f} s")
            time.sleep(1)
