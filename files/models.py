"""File metadata (docs/api.md §7). The bytes are in the object store under ``object_key``.

A row is written only after its bytes are stored (``available``), or before a direct upload as
``pending``; a crash between storing bytes and writing the row leaves an orphan object, which the
sweep (files.services.files_cleanup) removes, never a row pointing at nothing.
"""

from __future__ import annotations

from django.db import models

from translation.models import IdField


class FileStatus(models.TextChoices):
    PENDING = "pending"
    AVAILABLE = "available"


class FileKind(models.TextChoices):
    SOURCE = "source"
    RESULT = "result"
    OTHER = "other"


class File(models.Model):
    file_id = models.CharField(max_length=36, primary_key=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=FileStatus.choices, default=FileStatus.AVAILABLE)
    kind = models.CharField(max_length=16, choices=FileKind.choices, default=FileKind.OTHER)
    # No foreign key: a session may exist only in the write buffer when its file is uploaded.
    session_id = IdField(max_length=36, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    #: Which store holds the bytes ("local", "s3") and under which key (never client-chosen).
    backend = models.CharField(max_length=32)
    object_key = models.CharField(max_length=255)
    #: What a direct upload declared, checked by ``complete``.
    declared_size = models.BigIntegerField(null=True, blank=True)
    declared_sha256 = models.CharField(max_length=64, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "file_id"]
        indexes = [
            models.Index(fields=["-created_at", "file_id"], name="file_created_idx"),
            models.Index(fields=["session_id", "-created_at"], name="file_session_idx"),
            models.Index(fields=["status", "created_at"], name="file_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.file_id} ({self.filename})"
