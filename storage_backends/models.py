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


# --- The embedded write buffer (storage_backends.sqlite_buffer) ---------------------------------
# Tables of the SQLite buffer, which lives in the service's own SQLite file when REDIS_URL is unset.
# They are created on every database by ``migrate`` (empty and unused with Redis); the buffer reads
# and writes them with raw SQL on the same connection, because its compare-and-set steps (upsert
# keeping created_us, compare-and-delete by seq, lock take-over) are single SQLite statements.


class BufferedWrite(models.Model):
    """One accepted, not yet flushed write: the latest of its (collection, record id)."""

    collection = models.CharField(max_length=64)
    record_id = models.CharField(max_length=255)
    session_id = models.CharField(max_length=255, blank=True, help_text="A task's session; '' for sessions.")
    seq = models.BigIntegerField(help_text="Names this exact write; flushes delete only if it is unchanged.")
    created_us = models.BigIntegerField(help_text="Acceptance time of the first buffered write (µs).")
    updated_us = models.BigIntegerField(help_text="Acceptance time of this write (µs).")
    size = models.IntegerField(help_text="Bytes of data (what BUFFER_CAPACITY_BYTES bounds).")
    failures = models.IntegerField(default=0, help_text="Failed flush attempts of this write (seq).")
    data = models.BinaryField(help_text="The validated record as JSON.")

    class Meta:
        db_table = "persistence_buffer"
        constraints = [
            models.UniqueConstraint(fields=["collection", "record_id"], name="buffer_coll_record_uniq"),
        ]
        indexes = [
            # scan() pages through a collection in id order; counts and capacity read (collection, size)
            models.Index(fields=["collection", "id", "size"], name="buffer_coll_id_idx"),
            models.Index(fields=["session_id"], name="buffer_session_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.collection}:{self.record_id}@{self.seq}"


class BufferTombstone(models.Model):
    """A session being deleted (``deleting``: its own writes are refused too) or deleted moments
    ago: tasks naming it are refused until ``expires_us``."""

    session_id = models.CharField(max_length=255, primary_key=True)
    expires_us = models.BigIntegerField()
    deleting = models.BooleanField(default=False)

    class Meta:
        db_table = "persistence_buffer_tombstones"

    def __str__(self) -> str:
        return str(self.session_id)


class BufferLock(models.Model):
    """A collection's flush lock: held by ``owner`` (host:pid:token) until ``expires_us``."""

    name = models.CharField(max_length=64, primary_key=True)
    owner = models.CharField(max_length=255)
    expires_us = models.BigIntegerField()

    class Meta:
        db_table = "persistence_buffer_locks"

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"


class BufferState(models.Model):
    """The buffer's counters, one row (id 1): the write counter, the last acceptance time, the last
    successful flush."""

    id = models.SmallIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    last_accepted_us = models.BigIntegerField(default=0)
    last_flush = models.CharField(max_length=40, blank=True)

    class Meta:
        db_table = "persistence_buffer_state"

    def __str__(self) -> str:
        return f"seq {self.seq}"


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
