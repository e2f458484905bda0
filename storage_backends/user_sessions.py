"""The interface of a user-session store (docs/api.md §8) and what every implementation shares.

A user session is a record ``{session_id, user_id, created_at, last_seen_at, expires_at, ttl_seconds,
ip, user_agent, data}`` reached by its id or by its token. The token is 256 random bits shown once;
stores keep only its sha256. The registry picks the store of the ``user_sessions`` collection:

    store = user_session_store()                         # RedisUserSessions or DatabaseUserSessions
    record, token = store.create(user_id="u1", ttl_seconds=3600, max_per_user=100)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from storage_backends.base import Query, StorageBackend
from storage_backends.registry import backend

COLLECTION = "user_sessions"
Session = dict[str, Any]


def new_token() -> str:
    """A 256-bit random token, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The only form of a token a store keeps: its sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return str(uuid.uuid4())


def utc_from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def now_ms() -> int:
    return int(dt.datetime.now(tz=dt.UTC).timestamp() * 1000)


class UserSessionStore(StorageBackend):
    """A store of user sessions. Records are answered as dicts with aware datetimes.

    Each method is atomic on its own: two concurrent creates for one user never leave more than
    ``max_per_user`` live sessions, and a session ended by one request is not validated by another.
    """

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
        """A new session and its token; the user's soonest-expiring live sessions make room when
        the user already has ``max_per_user``."""
        raise NotImplementedError

    def by_token(self, token: str, *, touch: bool = False) -> Session | None:
        """The live session of ``token`` (None when unknown, expired or ended); ``touch`` slides its
        expiry to now + its ttl and sets ``last_seen_at``."""
        raise NotImplementedError

    def get(self, session_id: str) -> Session | None:
        """The live session with this id, or None."""
        raise NotImplementedError

    def refresh(self, session_id: str) -> Session | None:
        """Slide the live session's expiry to now + its ttl; None when it is not live."""
        raise NotImplementedError

    def list_for_user(self, user_id: str) -> list[Session]:
        """The user's live sessions, soonest expiry first (expired entries are pruned as read)."""
        raise NotImplementedError

    def end(self, session_id: str) -> bool:
        """End one session; False when it was not live."""
        raise NotImplementedError

    def end_all(self, user_id: str) -> int:
        """End every session of the user; how many were live."""
        raise NotImplementedError

    # --- the generic StorageBackend interface, in terms of the above -------------------------------
    def read(self, collection: str, record_id: str) -> dict[str, Any] | None:
        return self.get(record_id)

    def query(self, collection: str, spec: Query) -> list[dict[str, Any]]:
        """Only ``Filter("user_id", "eq", ...)`` is supported: sessions are reached per user."""
        if [(f.field, f.op) for f in spec.filters] != [("user_id", "eq")]:
            raise ValueError("user sessions are queried by user_id only")
        rows = self.list_for_user(spec.filters[0].value)
        return rows[spec.offset : None if spec.limit is None else spec.offset + spec.limit]

    def existing_ids(self, collection: str, record_ids: Iterable[str]) -> set[str]:
        return {record_id for record_id in record_ids if self.get(record_id) is not None}

    def delete(self, collection: str, record_ids: Iterable[str]) -> int:
        return sum(self.end(record_id) for record_id in record_ids)


def user_session_store() -> UserSessionStore:
    """The configured store of the ``user_sessions`` collection (STORAGE_BACKENDS)."""
    store = backend(COLLECTION)
    if not isinstance(store, UserSessionStore):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS['{COLLECTION}'] must name a UserSessionStore, not {type(store).__name__}"
        )
    return store
