"""``manage.py pause_flushing``: no flush writes to the database while this command runs.

For restoring the database (docs/backup-restore.md): stopping beat and the workers is not enough,
because web processes flush too (``POST /flush``). This command holds every collection's flush
lock, the same lock each flusher takes before it writes, and renews it until it is stopped
(Ctrl-C, SIGTERM) or ``--seconds`` have passed. Meanwhile writes are still accepted into the
buffer; Celery flushes skip, ``POST /flush`` and ``flush_buffer`` fail after their wait (nothing is
lost: the records stay buffered). If the command dies, the locks expire after BUFFER_LOCK_TTL and
flushing resumes by itself, so a pause can never be forgotten.

While paused, the Redis key ``<BUFFER_KEY_PREFIX>:paused`` holds when the pause began (it
expires with the locks), so that flushers and probes can say why nothing is flushed.

Exit status 0 after a pause ended normally, 1 when a running flush kept its lock past ``--wait``
or a lock was lost during the pause.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from storage_backends.buffer import get_write_buffer
from storage_backends.catalog import buffered_collections
from storage_backends.flush import lock_order


class Command(BaseCommand):
    help = "Pause flushing (hold the flush locks) until stopped or for --seconds."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--seconds", type=float, default=None, help="pause this long (default: until stopped)"
        )
        parser.add_argument(
            "--wait", type=float, default=60.0, help="seconds to wait for a running flush to end"
        )

    def handle(self, *args: Any, seconds: float | None, wait: float, **options: Any) -> None:
        if not getattr(settings, "REDIS_URL", None):
            raise CommandError(
                "pause_flushing needs the shared Redis buffer (REDIS_URL); embedded mode has none."
            )
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
        buffer = get_write_buffer()
        held = []
        # every shard's lock of every collection, in the one order of holders of several locks
        wanted = lock_order(buffer, buffered_collections())
        try:
            for shard, collection in wanted:
                lock = buffer.flush_lock(collection, wait, shard)
                if lock is None:
                    raise CommandError(
                        f"a flush of {collection} held its lock for more than {wait:.0f} s; retry"
                    )
                held.append(lock)
            paused_key = f"{buffer.prefix}:paused"
            buffer.redis.set(paused_key, dt.datetime.now(dt.UTC).isoformat(), ex=settings.BUFFER_LOCK_TTL)
            until = None if seconds is None else time.monotonic() + seconds
            self.stdout.write("flushing paused; stop this command (Ctrl-C) to resume", ending="\n")
            self.stdout.flush()
            renew_every = max(1.0, settings.BUFFER_LOCK_TTL / 3)
            while not stop.is_set():
                timeout = renew_every if until is None else min(renew_every, until - time.monotonic())
                if timeout <= 0 or stop.wait(timeout):
                    break
                for lock in held:
                    if not lock.extend_lease():
                        raise CommandError("a flush lock expired during the pause; flushing may have resumed")
                buffer.redis.expire(paused_key, settings.BUFFER_LOCK_TTL)
        finally:
            if len(held) == len(wanted):
                buffer.redis.delete(f"{buffer.prefix}:paused")
            for lock in reversed(held):
                lock.release()
        self.stdout.write("flushing resumed")
