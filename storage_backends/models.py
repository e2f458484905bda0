"""The dead-letter store: records the database rejected for good, kept visible and re-queueable."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DeadLetter(models.Model):
    collection = models.CharField(max_length=64)
    record_id = models.CharField(max_length=64)
    payload = models.TextField(help_text="The record as accepted (JSON).")
    error = models.TextField()
    accepted_at = models.DateTimeField(help_text="When the service accepted this write (202).")
    failed_at = models.DateTimeField(default=timezone.now)
    requeued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "persistence_dead_letters"
        ordering = ["-failed_at", "id"]
        indexes = [
            models.Index(fields=["collection", "failed_at"], name="dead_letter_coll_failed_idx"),
            models.Index(fields=["requeued_at"], name="dead_letter_requeued_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.collection}:{self.record_id}"


class BufferCheckpoint(models.Model):
    """The write buffer's sequence number as last seen by a flush, kept in the database.

    The buffer store's sequence counter only grows. Found lower than the checkpoint, it means the
    store lost its state (Redis restarted without persistence, or keys were evicted): accepted
    records may be gone, and the flusher counts it in ``persistence_data_loss_total``.
    """

    name = models.CharField(max_length=191, primary_key=True, help_text="The buffer's key prefix.")
    sequence = models.BigIntegerField()
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "persistence_buffer_checkpoints"

    def __str__(self) -> str:
        return f"{self.name}: {self.sequence}"
