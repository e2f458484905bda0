"""The storage backend interface: where a collection's records live for good.

A backend stores whole records of one or more collections, keyed by the collection's id field.
The registry (storage_backends.registry) picks the backend of each collection from settings, and
every read goes through it too: ``read`` by id, ``query`` and ``count`` with a ``Query``.

    class MyBackend(StorageBackend):
        def write(self, collection, records, *, sizes=None): ...

    backend.query("translation_tasks", Query(
        filters=(Filter("session_id", "eq", "s-1"), Filter("status", "in", ("pending", "processing"))),
        order_by=("row_index",), fields=("task_id", "status"), limit=20, offset=40))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

#: ``eq`` and ``in`` compare exactly (code point by code point, whatever the store's collation);
#: the others compare values of the field's own type (datetimes, numbers, ids).
FilterOp = Literal["eq", "in", "gt", "gte", "lt", "lte"]


@dataclass(frozen=True, slots=True)
class Filter:
    """``field <op> value``; for ``in``, ``value`` is a sequence."""

    field: str
    op: FilterOp
    value: Any


@dataclass(frozen=True, slots=True)
class Query:
    """What ``query`` and ``count`` select, for each plugin to translate.

    ``filters`` are ANDed; ``any_of``, when set, adds alternatives: a record must also match every
    filter of at least one of its groups (``(a AND b) OR (c AND d)``). ``order_by``: field names, ``-`` first for descending; the plugin ends the
    ordering with the id field (ascending) unless it is named, so pages are stable; empty: any order. A keyset page is
    a ``gt`` filter on the last key plus ``limit``. ``fields``: the fields of each returned record,
    in this order (empty: every field). ``limit`` None: no limit. ``count`` ignores the page.
    """

    filters: tuple[Filter, ...] = ()
    any_of: tuple[tuple[Filter, ...], ...] = ()
    order_by: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0


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

    def query(self, collection: str, spec: Query) -> list[dict[str, Any]]:
        """The records ``spec`` selects, ordered and sliced, each with ``spec.fields``."""
        raise NotImplementedError

    def count(self, collection: str, spec: Query) -> int:
        """How many records match ``spec.filters``."""
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
