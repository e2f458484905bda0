"""The service's own exceptions: what went wrong, in domain terms, with the data an answer needs.

Plain Python exceptions, raised by the storage plugins and the services; nothing here knows HTTP.
``core.errors.api_exception_handler`` is the one place that maps each class (by its nearest
ancestor in ``core.errors.DOMAIN_ERRORS``) to the contract's status, ``error_code`` and
``Retry-After`` (docs/api.md §0).

    raise BufferFull("The write buffer holds 100000 records; retry later.")
    raise RecordsBeingDeleted({"s-1"}, noun="session")
"""

from __future__ import annotations

from typing import Any


class ServiceException(Exception):
    """Base of the domain exceptions: a message, per-field ``errors``, ``extra`` body fields and a
    ``retry_after`` hint in seconds (None: no hint)."""

    default_detail = "The service could not complete the request."
    default_retry_after: int | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.detail: str = detail or self.default_detail
        super().__init__(self.detail)
        self.errors: list[dict[str, str]] = errors or []
        self.extra: dict[str, Any] = extra or {}
        self.retry_after: int | None = self.default_retry_after if retry_after is None else retry_after


class StorageUnavailable(ServiceException):
    """A storage dependency (database, buffer store, cache, object store) cannot be reached; the
    caller may retry. Nothing of the operation was done."""

    default_detail = "A storage dependency is unavailable; retry later."
    default_retry_after = 5


class BufferFull(StorageUnavailable):
    """The write buffer is at its capacity (records or bytes); nothing was buffered."""

    default_detail = "The write buffer is full; retry later."


class InvalidRecords(ServiceException):
    """Records that their collection's schema refuses (``errors``: which, and why); none of the
    operation's records were taken."""

    default_detail = "Some records are invalid; nothing was taken."


class FlushFailed(StorageUnavailable):
    """A flush did not complete (storage down, a lock held too long); the data stays buffered."""

    default_detail = "Flushing the buffer to the database failed; the data stays buffered."

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("extra", {"status": "error"})
        super().__init__(detail, **kwargs)


class RecordsBeingDeleted(StorageUnavailable):
    """Writes of records that are being deleted right now (a session and its tasks): refused (retry
    shortly) rather than accepted and then removed by the delete. Nothing was buffered. ``noun``:
    what the records are, in the message (the collection's declared ``item_type``)."""

    def __init__(self, ids: set[str], *, noun: str = "record") -> None:
        super().__init__(
            f"{noun.capitalize()}(s) {', '.join(sorted(ids)[:10])} are being deleted; nothing from this request "
            f"was accepted. Retry in a few seconds (the write then creates the {noun} anew).",
            retry_after=2,
        )
        self.ids = ids
