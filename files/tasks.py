"""Celery beat job of the files app: the sweep of expired files, stale pending uploads and orphans.

cleanup_files.delay()
"""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def cleanup_files() -> dict[str, int]:
    """files.services.files_cleanup; safe to run twice at once or to kill half-way."""
    from files.services import files_cleanup

    return files_cleanup()
