"""Audit events (docs/api.md §9), as the SQL search backend stores them (storage_backends.search_sql).

Append-only: rows are inserted once (a second write of an ``event_id`` is ignored) and leave only
by retention, whole months at a time. ``timestamp`` is when it happened (the client's, or the
acceptance time); ``accepted_at`` when the service accepted it (the buffer's clock).

Strings that are filtered on compare exactly (a binary collation on MySQL/MariaDB, as ids do), so
``action=session.*`` is a case-sensitive prefix and ``actor_id`` matches as sent. ``search_terms``
is the MySQL/MariaDB full-text column (words and CJK n-grams of ``message``; empty on SQLite, which
indexes ``message`` itself with FTS5): see storage_backends.search_sql.
"""

from __future__ import annotations

from django.db import models

from core.db_fields import ExactCharField


class ActorType(models.TextChoices):
    USER = "user"
    API_KEY = "api_key"
    SERVICE = "service"
    SYSTEM = "system"


class Outcome(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"


class AuditEvent(models.Model):
    event_id = ExactCharField(max_length=64, primary_key=True)
    timestamp = models.DateTimeField()
    actor_id = ExactCharField(max_length=128)
    actor_type = ExactCharField(max_length=16, choices=ActorType.choices)
    action = ExactCharField(max_length=100)
    resource_type = ExactCharField(max_length=64, null=True, blank=True)
    resource_id = ExactCharField(max_length=128, null=True, blank=True)
    outcome = ExactCharField(max_length=16, choices=Outcome.choices)
    message = models.TextField(blank=True, default="")
    ip = models.CharField(max_length=64, null=True, blank=True)
    user_agent = models.CharField(max_length=1024, null=True, blank=True)
    request_id = models.CharField(max_length=128, null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    accepted_at = models.DateTimeField()
    search_terms = models.TextField(blank=True, default="", editable=False)

    class Meta:
        db_table = "audit_events"
        ordering = ("-timestamp", "-event_id")
        # Each filter with the time order behind it, so a filtered page is an index range read in
        # order; (timestamp, event_id) serves the unfiltered pages and the keyset cursor.
        indexes = [
            models.Index(fields=["timestamp", "event_id"], name="audit_ts_id"),
            models.Index(fields=["actor_id", "timestamp"], name="audit_actor_ts"),
            models.Index(fields=["action", "timestamp"], name="audit_action_ts"),
            models.Index(fields=["resource_type", "resource_id", "timestamp"], name="audit_resource_ts"),
            models.Index(fields=["outcome", "timestamp"], name="audit_outcome_ts"),
            models.Index(fields=["actor_type", "timestamp"], name="audit_actor_type_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor_id} {self.action} ({self.outcome})"
