"""The embedded-mode store of user sessions: a database table, same behaviour as the Redis plugin.

Used when there is no ``REDIS_URL``. Expiry is checked on every read (an expired row is never
answered). Expired rows are deleted on each create for that user, by a sweep of the whole table at
most every ``SWEEP_INTERVAL`` seconds while sessions are being created (the embedded mode runs no
Celery beat), and by ``manage.py sweep_user_sessions`` (cron).

    STORAGE_BACKENDS["user_sessions"] = "storage_backends.db_sessions.DatabaseUserSessions"
    record, token = user_session_store().create(user_id="u1", ttl_seconds=3600, max_per_user=100)
"""

from __future__ import annotations

import datetime as dt
import hmac
import time
from typing import Any

from django.apps import apps
from django.db import DatabaseError, transaction
from django.db.models import Model
from django.utils import timezone

from storage_backends.user_sessions import (
    Session,
    UserSessionStore,
    new_session_id,
    new_token,
    token_hash,
)

#: Rows deleted per statement by the sweep, so it never holds long locks.
SWEEP_CHUNK = 1000
#: Seconds between two sweeps of the table triggered by creates: expired rows are never answered
#: anyway, so the sweep only bounds the table's size.
SWEEP_INTERVAL = 600.0

_FIELDS = (
    "session_id",
    "user_id",
    "created_at",
    "last_seen_at",
    "expires_at",
    "ttl_seconds",
    "ip",
    "user_agent",
    "data",
)


def _model() -> type[Model]:
    # By name: the users app owns the table and depends on this package, not the other way round.
    model: type[Model] = apps.get_model("users", "UserSessionRow")
    return model


def _record(row: Any) -> Session:
    return {name: getattr(row, name) for name in _FIELDS}


class DatabaseUserSessions(UserSessionStore):
    name = "database"

    def __init__(self) -> None:
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL

    def create(
        self,
        *,
        user_id: str,
        ttl_seconds: int,
        max_per_user: int,
        ip: str | None = None,
        user_agent: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> tuple[Session, str]:
        Row = _model()
        token, now = new_token(), timezone.now()
        with transaction.atomic():
            live = Row.objects.select_for_update().filter(user_id=user_id)
            live.filter(expires_at__lte=now).delete()
            ids = list(
                live.filter(expires_at__gt=now)
                .order_by("expires_at", "session_id")
                .values_list("session_id", flat=True)
            )
            if len(ids) >= max_per_user:
                Row.objects.filter(session_id__in=ids[: len(ids) - max_per_user + 1]).delete()
            row = Row.objects.create(
                session_id=new_session_id(),
                token_hash=token_hash(token),
                user_id=user_id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(seconds=ttl_seconds),
                ttl_seconds=ttl_seconds,
                ip=ip,
                user_agent=user_agent,
                data=data or {},
            )
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL
            sweep_expired()
        return _record(row), token

    def _slide(self, row: Any) -> Any:
        now = timezone.now()
        row.last_seen_at, row.expires_at = now, now + dt.timedelta(seconds=row.ttl_seconds)
        # Only while still live: a concurrent end or expiry wins.
        updated = (
            _model()
            .objects.filter(session_id=row.session_id, expires_at__gt=now)
            .update(last_seen_at=row.last_seen_at, expires_at=row.expires_at)
        )
        return row if updated else None

    def by_token(self, token: str, *, touch: bool = False) -> Session | None:
        wanted = token_hash(token)
        row = _model().objects.filter(token_hash=wanted, expires_at__gt=timezone.now()).first()
        if row is None or not hmac.compare_digest(row.token_hash, wanted):
            return None
        if touch:
            row = self._slide(row)
        return _record(row) if row is not None else None

    def get(self, session_id: str) -> Session | None:
        row = _model().objects.filter(session_id=session_id, expires_at__gt=timezone.now()).first()
        return _record(row) if row is not None else None

    def refresh(self, session_id: str) -> Session | None:
        row = _model().objects.filter(session_id=session_id, expires_at__gt=timezone.now()).first()
        row = self._slide(row) if row is not None else None
        return _record(row) if row is not None else None

    def list_for_user(self, user_id: str) -> list[Session]:
        rows = (
            _model()
            .objects.filter(user_id=user_id, expires_at__gt=timezone.now())
            .order_by("expires_at", "session_id")
        )
        return [_record(row) for row in rows]

    def end(self, session_id: str) -> bool:
        deleted, _ = _model().objects.filter(session_id=session_id, expires_at__gt=timezone.now()).delete()
        return bool(deleted)

    def end_all(self, user_id: str) -> int:
        now = timezone.now()
        Row = _model()
        live: int = Row.objects.filter(user_id=user_id, expires_at__gt=now).count()
        Row.objects.filter(user_id=user_id).delete()
        return live

    def health_check(self) -> bool:
        try:
            _model().objects.exists()
        except DatabaseError:
            return False
        return True


def sweep_expired() -> int:
    """Delete expired rows in chunks of ``SWEEP_CHUNK``; how many. Cost: one indexed range scan
    on expires_at per chunk."""
    Row, total = _model(), 0
    while True:
        ids = list(
            Row.objects.filter(expires_at__lte=timezone.now()).values_list("session_id", flat=True)[
                :SWEEP_CHUNK
            ]
        )
        if not ids:
            return total
        total += Row.objects.filter(session_id__in=ids).delete()[0]
