"""The storage backend interface: where a collection's records live for good.

A backend stores whole records of one or more collections, keyed by the collection's id field.
The registry (storage_backends.registry) picks the backend of each collection from settings.

    class MyBackend(StorageBackend):
        def write(self, collection, records, *, sizes=None): ...
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class PermanentWriteError(Exception):
    """The backend rejected these records for good (constraint or data error): retrying the same
    records cannot succeed. The flusher isolates the offending records into the dead-letter store."""


class TransientWriteError(Exception):
    """The backend could not be reached or gave up for now (connection lost, deadlock, timeout):
    the same records may succeed later. The flusher keeps them buffered and retries."""


class UnknownWriteError(Exception):
    """The backend failed with an error it cannot classify. The flusher isolates the records that
    fail with it and retries each a bounded number of flushes (``FLUSH_MAX_ATTEMPTS``) before
    dead-lettering it, so the error neither loses a record at once nor blocks the others."""


class StorageBackend:
    """Base class; each method raises ``NotImplementedError`` until a backend implements it."""

    #: Short name used in metrics labels and /api/v1/system/config.
    name = "base"

    def write(
        self, collection: str, records: Sequence[dict[str, Any]], *, sizes: Sequence[int] | None = None
    ) -> int:
        """Upsert whole records (model-ready dicts) atomically; return how many were written.

        ``sizes`` (bytes per record, optional) lets the backend bound its statements. The latest
        record of an id in ``records`` wins; the stored ``created_at`` of an existing record is kept.
        Raises ``PermanentWriteError``, ``TransientWriteError`` or ``UnknownWriteError``; nothing
        is written then.
        """
        raise NotImplementedError

    def read(self, collection: str, record_id: str) -> dict[str, Any] | None:
        """One record by id, or None."""
        raise NotImplementedError

    def query(
        self,
        collection: str,
        *,
        filters: dict[str, Any] | None = None,
        order_by: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Records matching equality ``filters``, ordered and sliced."""
        raise NotImplementedError

    def existing_ids(self, collection: str, record_ids: Iterable[str]) -> set[str]:
        """Which of ``record_ids`` are stored."""
        raise NotImplementedError

    def delete(self, collection: str, record_ids: Iterable[str]) -> int:
        """Delete records by id; return how many were deleted."""
        raise NotImplementedError

    def health_check(self) -> bool:
        """True when the backend answers."""
        raise NotImplementedError
