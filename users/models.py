"""Users of the translation platform and, in the embedded mode, their sessions (docs/api.md §8).

Uniqueness lives in the database: ``username`` is unique, and ``email_key`` (the lower-cased email,
NULL without one) is unique, so two concurrent creates cannot both win, whatever the collation.
"""

from __future__ import annotations

from django.db import models


class UserStatus(models.TextChoices):
    ACTIVE = "active"
    DISABLED = "disabled"


class User(models.Model):
    user_id = models.CharField(max_length=64, primary_key=True)
    # Unique: its index also serves the `q` prefix search (LIKE 'prefix%').
    username = models.CharField(max_length=150, unique=True)
    email = models.CharField(max_length=254, null=True, blank=True)
    # email.lower(): the unique index compares emails case-insensitively on every database, and
    # serves the `q` prefix search on emails.
    email_key = models.CharField(max_length=254, null=True, blank=True, unique=True, editable=False)
    display_name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=UserStatus.choices, default=UserStatus.ACTIVE)
    preferences = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "platform_users"
        indexes = [models.Index(fields=["status", "username"], name="platform_users_status_name")]

    def __str__(self) -> str:
        return self.username


class UserSessionRow(models.Model):
    """A user session of the embedded mode (storage_backends.db_sessions); Redis holds them otherwise.

    Only the token's sha256 is stored. Expiry is checked on every read and swept periodically.
    """

    session_id = models.CharField(max_length=64, primary_key=True)
    token_hash = models.CharField(max_length=64, unique=True)
    user_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    ttl_seconds = models.PositiveIntegerField()
    ip = models.CharField(max_length=64, null=True, blank=True)
    user_agent = models.CharField(max_length=512, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "platform_user_sessions"
        indexes = [models.Index(fields=["user_id", "expires_at"], name="platform_usess_user_exp")]

    def __str__(self) -> str:
        return self.session_id
