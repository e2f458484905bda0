"""Celery tasks of the write buffer: the flush (size trigger and beat schedule).

flush_buffer.delay()                 # beat, and the size trigger with one shard
flush_buffer.delay(start_shard=2)    # the size trigger enqueues one per shard
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

# Back-off for a flush that failed on a transient error (database down): 2, 4, 8 ... capped at
# 60 s. The retries stop after MAX_RETRIES because beat starts a new flush every interval anyway;
# unbounded retry chains would pile up during a long outage. The records stay buffered meanwhile.
RETRY_BACKOFF_MAX_SECONDS = 60
MAX_RETRIES = 6


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES, ignore_result=True)
def flush_buffer(self: Any, start_shard: int = 0) -> dict[str, Any]:
    """Flush every shard of every collection, beginning at ``start_shard`` (the size trigger
    enqueues one task per shard, each starting at its own, so that Celery's worker processes flush
    different shards at once); skip a shard whose lock another flusher holds."""
    from core.exceptions import StorageUnavailable
    from storage_backends.buffer import get_write_buffer
    from storage_backends.flush import flush_all

    buffer = get_write_buffer()
    try:
        return flush_all(buffer, wait=0, start_shard=start_shard % buffer.shards).as_dict()
    except StorageUnavailable as exc:
        if self.request.retries >= MAX_RETRIES:
            return {"status": "failed", "detail": str(exc)}
        countdown = min(2 ** (self.request.retries + 1), RETRY_BACKOFF_MAX_SECONDS)
        raise self.retry(exc=exc, countdown=countdown) from exc
