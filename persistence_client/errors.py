"""Exceptions raised by the client, one per kind of answer of the service (docs/api.md §0)."""

from __future__ import annotations

from typing import Any


class PersistenceError(Exception):
    """An error answer of the service, or no answer at all.

    ``status`` is the HTTP status (None without an answer), ``error_code`` the contract's code,
    ``errors`` its list of ``{"field", "message"}``, ``body`` the whole error body.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status or 'no answer'} {error_code or ''}: {detail}".replace("  ", " "))
        self.detail = detail
        self.status = status
        self.error_code = error_code
        self.errors = errors or []
        self.body = body or {}


class ValidationFailed(PersistenceError):
    """400/413/422: the request itself is wrong; retrying cannot help. See ``errors``."""


class Conflict(ValidationFailed):
    """409: a taken user_id, username or email (``errors`` names it), or a disabled user."""


class AuthError(PersistenceError):
    """401/403: no valid API key, or the key lacks the scope."""


class NotFound(PersistenceError):
    """404: the session or task does not exist."""


class Throttled(PersistenceError):
    """429 after every retry."""


class Unavailable(PersistenceError):
    """503, a 5xx, a timeout or no connection, after every retry. After a 503 nothing was
    accepted; after a timeout the service may have accepted the request, which is why writes are
    upserts: sending the same records again is harmless."""


class BufferFull(PersistenceError):
    """The client's local buffer is at ``max_buffered`` records (overflow policy "raise", or
    "block" past ``block_timeout``): the service has not been taking writes for a while."""
