"""Celery tasks of the session lifecycle: the daily retention cleanup (Celery beat).

cleanup_expired_sessions.delay()
"""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(ignore_result=True)
def cleanup_expired_sessions() -> dict[str, Any]:
    """Delete sessions past RETENTION_COMPLETED_DAYS / RETENTION_FAILED_DAYS (see sessions_cleanup).

    Safe to run twice at once or to kill half-way: each chunk is its own statement, and the next
    run deletes whatever is left.
    """
    from translation.services.lifecycle import sessions_cleanup

    return sessions_cleanup().as_dict()
