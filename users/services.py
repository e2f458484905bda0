"""Writes of users and user sessions (docs/api.md §8).

Every user write replaces the read cache's versions before and after its transaction
(storage_backends.read_cache), so no instance answers the old state once the write is answered,
and sends ``users.signals.user_audit_event`` once committed; each change (and each failed attempt)
is an audit event too (audit.services.audited).

    user = user_create(username="ada", email="ada@example.com", actor="backend")
    session, token = user_session_create(user_id=user["user_id"])
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audited
from core.errors import Conflict, NotFound
from storage_backends.read_cache import invalidate_on_commit
from storage_backends.user_sessions import user_session_store
from users.models import User, UserStatus
from users.representation import session_out, user_out
from users.selectors import LIST_VERSION, user_find, user_get, user_not_found, user_version
from users.signals import user_audit_event

#: Fields a PATCH may change.
UPDATABLE = ("username", "email", "display_name", "status", "preferences")


def _audit(action: str, *, resource_type: str, resource_id: str, actor: str | None) -> None:
    """Send the audit hook (users.signals) once the current transaction commits."""
    transaction.on_commit(
        lambda: user_audit_event.send(
            sender=User, action=action, resource_type=resource_type, resource_id=resource_id, actor=actor
        )
    )


def _conflict(*, user_id: str, username: str | None, email_key: str | None, creating: bool) -> Conflict:
    """The 409 naming each field whose value another user holds (read after the refusal)."""
    taken = []
    if creating and User.objects.filter(user_id=user_id).exists():
        taken.append("user_id")
    others = User.objects.exclude(user_id=user_id)
    if username is not None and others.filter(username=username).exists():
        taken.append("username")
    if email_key is not None and others.filter(email_key=email_key).exists():
        taken.append("email")
    fields = taken or ["username"]
    return Conflict(
        f"Already taken: {', '.join(fields)}.",
        errors=[{"field": field, "message": "is already taken"} for field in fields],
    )


def user_create(
    *,
    user_id: str | None = None,
    username: str,
    email: str | None = None,
    display_name: str = "",
    status: str = UserStatus.ACTIVE,
    preferences: dict[str, Any] | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Create a user; 409 CONFLICT naming ``user_id``, ``username`` or ``email`` when taken.

    The unique indexes decide: two concurrent creates of one username cannot both succeed.
    """
    with audited("user.create", resource_type="user", resource_id=None) as event:
        user_id = user_id or str(uuid.uuid4())
        event.resource_id = user_id
        email_key = email.lower() if email is not None else None
        now = timezone.now()
        try:
            with transaction.atomic():
                # Inside the transaction: the second invalidation must run after the commit.
                invalidate_on_commit(user_version(user_id), LIST_VERSION)
                user = User.objects.create(
                    user_id=user_id,
                    username=username,
                    email=email,
                    email_key=email_key,
                    display_name=display_name,
                    status=status,
                    preferences=preferences or {},
                    created_at=now,
                    updated_at=now,
                )
                _audit("user.create", resource_type="user", resource_id=user_id, actor=actor)
        except IntegrityError:
            raise _conflict(user_id=user_id, username=username, email_key=email_key, creating=True) from None
        return user_out(user)


def user_update(*, user_id: str, changes: dict[str, Any], actor: str | None = None) -> dict[str, Any]:
    """Change some of ``UPDATABLE`` (``preferences`` replaced whole); 404, or 409 as for create."""
    with audited("user.update", resource_type="user", resource_id=user_id):
        unknown = set(changes) - set(UPDATABLE)
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        try:
            with transaction.atomic():
                invalidate_on_commit(user_version(user_id), LIST_VERSION)
                user = User.objects.select_for_update().filter(user_id=user_id).first()
                if user is None:
                    raise user_not_found(user_id)
                for field, value in changes.items():
                    setattr(user, field, value)
                if "email" in changes:
                    user.email_key = user.email.lower() if user.email is not None else None
                user.updated_at = timezone.now()
                user.save()
                _audit("user.update", resource_type="user", resource_id=user_id, actor=actor)
        except IntegrityError:
            raise _conflict(
                user_id=user_id,
                username=changes.get("username"),
                email_key=changes["email"].lower() if changes.get("email") else None,
                creating=False,
            ) from None
        return user_out(user)


def user_delete(*, user_id: str, actor: str | None = None) -> dict[str, Any]:
    """Delete the user after ending all of its sessions (so no token outlives the user)."""
    with audited("user.delete", resource_type="user", resource_id=user_id):
        if user_find(user_id=user_id) is None:
            raise user_not_found(user_id)
        ended = user_session_store().end_all(user_id)
        with transaction.atomic():
            invalidate_on_commit(user_version(user_id), LIST_VERSION)
            deleted, _ = User.objects.filter(user_id=user_id).delete()
            if not deleted:
                raise user_not_found(user_id)
            _audit("user.delete", resource_type="user", resource_id=user_id, actor=actor)
        return {"status": "deleted", "user_id": user_id, "ended_sessions": ended}


def user_session_create(
    *,
    user_id: str,
    ttl_seconds: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new session of an active user with its token (the only time it is shown); 404 for an
    unknown user, 409 CONFLICT for a disabled one."""
    user = user_get(user_id=user_id)
    if user["status"] != UserStatus.ACTIVE:
        raise Conflict("The user is disabled.", errors=[{"field": "status", "message": "user is disabled"}])
    record, token = user_session_store().create(
        user_id=user_id,
        ttl_seconds=ttl_seconds or settings.USER_SESSION_TTL,
        max_per_user=settings.USER_SESSIONS_PER_USER,
        ip=ip,
        user_agent=user_agent,
        data=data,
    )
    return {**session_out(record), "token": token}


def user_session_validate(*, token: str, touch: bool = False) -> dict[str, Any]:
    """``{"session", "user"}`` for a live token of an active user; 404 otherwise. The user comes
    from the never-stale read cache, so disabling a user refuses its tokens at once."""
    record = user_session_store().by_token(token, touch=touch)
    if record is None:
        raise NotFound("Unknown, expired or ended token.")
    user = user_find(user_id=record["user_id"])
    if user is None or user["status"] != UserStatus.ACTIVE:
        raise NotFound("Unknown, expired or ended token.")
    return {"session": session_out(record), "user": user}


def user_session_refresh(*, session_id: str) -> dict[str, Any]:
    record = user_session_store().refresh(session_id)
    if record is None:
        raise NotFound("User session not found", extra={"session_id": session_id})
    return session_out(record)


def user_session_end(*, session_id: str, actor: str | None = None) -> dict[str, Any]:
    with audited("user_session.end", resource_type="user_session", resource_id=session_id):
        if not user_session_store().end(session_id):
            raise NotFound("User session not found", extra={"session_id": session_id})
        _audit("user_session.end", resource_type="user_session", resource_id=session_id, actor=actor)
        return {"status": "deleted", "session_id": session_id}


def user_sessions_end_all(*, user_id: str, actor: str | None = None) -> dict[str, Any]:
    with audited("user_session.end_all", resource_type="user", resource_id=user_id):
        user_get(user_id=user_id)
        deleted = user_session_store().end_all(user_id)
        _audit("user_session.end_all", resource_type="user", resource_id=user_id, actor=actor)
        return {"deleted": deleted}
