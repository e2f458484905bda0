"""Translation sessions (one per spreadsheet file) and tasks (one per cell), as in docs/api.md §1.

created_at and updated_at are set by the service, not by ``auto_now``: updated_at is the time the
latest write was *accepted*, which is earlier than the time the buffer flushes it.
"""

from __future__ import annotations

from django.db import models

from core.db_fields import ExactCharField, binary_collation  # noqa: F401 (re-exported)


class SessionStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


INCOMPLETE_STATUSES = (SessionStatus.PENDING, SessionStatus.PROCESSING)


class IdField(ExactCharField):
    """A client-chosen identifier compared byte for byte (core.db_fields)."""


class Session(models.Model):
    session_id = IdField(max_length=36, primary_key=True)
    filename = models.CharField(max_length=255)
    file_path = models.CharField(max_length=512)
    status = models.CharField(max_length=16, choices=SessionStatus.choices)
    game_info = models.JSONField(default=dict, null=True, blank=True)
    llm_provider = models.CharField(max_length=50)
    metadata = models.JSONField(default=dict, null=True, blank=True)
    total_tasks = models.PositiveIntegerField(default=0)
    completed_tasks = models.PositiveIntegerField(default=0)
    failed_tasks = models.PositiveIntegerField(default=0)
    processing_tasks = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "translation_sessions"
        ordering = ["-created_at", "session_id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="sess_status_created_idx"),
            models.Index(fields=["created_at"], name="sess_created_idx"),
            models.Index(fields=["updated_at"], name="sess_updated_idx"),
            models.Index(fields=["status", "updated_at"], name="sess_status_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} ({self.filename})"


class Task(models.Model):
    task_id = IdField(max_length=64, primary_key=True)
    # The database cascades deletes (ON DELETE CASCADE, added by migration 0002 on MySQL/MariaDB);
    # Django's Python-side cascade would load every task of a session into memory first.
    session = models.ForeignKey(
        Session,
        on_delete=models.DO_NOTHING,
        db_column="session_id",
        db_constraint=False,
        related_name="tasks",
        db_index=False,  # the (session_id, ...) composite indexes below serve session lookups
    )
    batch_id = IdField(max_length=64)
    sheet_name = models.CharField(max_length=255)
    row_index = models.PositiveIntegerField()
    column_name = models.CharField(max_length=255)
    source_text = models.TextField(blank=True)
    target_text = models.TextField(null=True, blank=True)
    context = models.TextField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices)
    confidence = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "translation_tasks"
        ordering = ["row_index", "task_id"]
        indexes = [
            models.Index(fields=["session", "status"], name="task_session_status_idx"),
            models.Index(fields=["session", "row_index", "task_id"], name="task_session_row_idx"),
            models.Index(fields=["batch_id"], name="task_batch_idx"),
            models.Index(fields=["status", "updated_at"], name="task_status_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.task_id
