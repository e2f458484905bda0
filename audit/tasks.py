"""Celery tasks of the audit app (thin: they call a service).

CELERY_BEAT_SCHEDULE["cleanup-audit-logs"] = {"task": "audit.tasks.cleanup_audit_logs", ...}
"""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="audit.tasks.cleanup_audit_logs", ignore_result=True)
def cleanup_audit_logs() -> dict[str, Any]:
    """Drop the months of audit events past AUDIT_RETENTION_DAYS (audit.services)."""
    from audit.services import audit_retention_apply

    return audit_retention_apply()
