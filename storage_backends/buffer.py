"""The write buffer between an accepted batch (202) and the database.

A record is buffered under its collection and id; a newer write of the same id replaces the older
one (coalescing), keeping the acceptance time of the first buffered write as ``created_at`` and of
the latest as ``updated_at``. Records leave the buffer only after the database has committed them.

    buffer = get_write_buffer()
    buffer.add("translation_tasks", [{"task_id": "t-1", "session_id": "s-1", ...}])
    buffer.get("translation_tasks", "t-1")   # -> model-ready dict, or None once flushed

Records going in are validated dicts of model field names with JSON-compatible values (the
session of a task under ``session_id``). Records coming out are *model-ready*: datetimes are aware
``datetime`` objects and ``confidence`` a ``Decimal``, so ``Task(**record)`` builds an instance.

Two implementations, chosen by ``REDIS_URL``: ``redis_buffer.RedisWriteBuffer`` (production, shared
by every process, flushed by Celery) and ``sqlite_buffer.SQLiteWriteBuffer`` (the embedded mode: a
table in the service's SQLite file, flushed by a thread). Both are durable: 202 means on disk.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from storage_backends import catalog
from storage_backends.records import BufferedRecord

# The buffered collections, their flush order (a parent before its children), metric labels, id
# fields, parents and append-only flags (``keep_first``: the first accepted write of an id is kept,
# a later one ignored, and the backends insert-ignore, so a resend is idempotent end to end) are
# what the apps declare: storage_backends.catalog. The buffers keep one parent-child level (a
# translation session and its tasks): a child's records are indexed by their parent's id, which is
# also their shard key, so a parent and its children are flushed, read and deleted together.


class ParentsNotBuffered(Exception):
    """Some parent records that ``add(require_parents=...)`` needed are not in the buffer."""

    def __init__(self, ids: set[str]) -> None:
        super().__init__(f"parents not buffered: {sorted(ids)}")
        self.ids = ids


class ParentsDeleted(Exception):
    """Records named parents deleted moments ago (the buffer's tombstones); nothing was buffered."""

    def __init__(self, ids: set[str]) -> None:
        super().__init__(f"parents deleted: {sorted(ids)}")
        self.ids = ids


def child_of(collection: str) -> str:
    """The buffered child collection of ``collection``; ValueError when it has none (deletes and
    child reads are of parents)."""
    child = catalog.child(collection)
    if child is None:
        raise ValueError(f"The collection {collection!r} has no buffered child collection")
    return child


class WriteBuffer:
    """Interface of a write buffer; ``RedisWriteBuffer`` and ``SQLiteWriteBuffer`` implement it."""

    # --- writes ----------------------------------------------------------------------
    def add(
        self, collection: str, records: list[dict[str, Any]], *, require_parents: Collection[str] = ()
    ) -> None:
        """Buffer ``records`` atomically (all or none), stamping their acceptance time.

        ``require_parents``: ids in the collection's parent collection that must be buffered for the
        records to be taken, checked in the same atomic step (raises ``ParentsNotBuffered`` naming
        the others; the caller then looks in the database). Records naming a parent with a live
        tombstone (deleted in the last ``BUFFER_TOMBSTONE_TTL`` seconds) raise ``ParentsDeleted``,
        in the same atomic step; records of a parent collection clear their ids' tombstones (the
        parent is written anew), and raise ``RecordsBeingDeleted`` while a delete of them is under
        way. Raises
        ``BufferFull`` above ``BUFFER_CAPACITY`` records or ``BUFFER_CAPACITY_BYTES`` bytes of record
        data, and ``StorageUnavailable`` when the buffer store cannot be reached. Nothing is
        buffered then. Acceptance times never go backwards (a clock step back reuses the last one;
        the Redis buffer's even strictly increase, one microsecond past the last one), so the
        database's guard on ``updated_at`` orders writes as the buffer accepted them.
        """
        raise NotImplementedError

    def begin_delete(self, collection: str, ids: Collection[str], *, keep_active: bool) -> dict[str, int]:
        """Start deleting records of ``collection`` (a parent collection): atomically, for each id,
        drop its buffered writes (its own and its children's) and leave a "deleting" tombstone, so
        that until ``end_delete`` writes of that id raise ``RecordsBeingDeleted`` and writes of its
        children ``ParentsDeleted``: nothing is accepted that the delete would then remove.

        ``keep_active``: skip an id that has a buffered write of its own or of one of its children
        (retention cleanup keeps a session someone is writing to). Returns id -> buffered children
        dropped, for the ids marked.
        """
        raise NotImplementedError

    def end_delete(self, collection: str, ids: Collection[str], *, deleted: bool) -> None:
        """Finish a delete: ``deleted`` turns the tombstones into "deleted" ones (writes of children
        are refused for ``BUFFER_TOMBSTONE_TTL`` seconds, a write of the id clears them); otherwise
        (the delete was abandoned) they are removed."""
        raise NotImplementedError

    def purge(self, collection: str, record_id: str) -> int:
        """Drop the buffered record and its buffered children, leaving a "deleted" tombstone;
        returns how many children were dropped."""
        dropped = self.begin_delete(collection, [record_id], keep_active=False)
        self.end_delete(collection, [record_id], deleted=True)
        return dropped.get(record_id, 0)

    # --- reads (read-your-writes overlays) -------------------------------------------------
    def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        """The latest accepted, not yet flushed record with this id (model-ready), or None."""
        raise NotImplementedError

    def get_many(self, collection: str, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``get`` for several ids at once: id -> record for those that are buffered."""
        raise NotImplementedError

    def records(self, collection: str) -> Iterator[dict[str, Any]]:
        """Every buffered record of a collection (model-ready); bounded by ``BUFFER_CAPACITY``."""
        raise NotImplementedError

    def children(self, collection: str, parent_id: str) -> list[dict[str, Any]]:
        """The buffered records (model-ready) of ``collection``'s child collection that name
        ``parent_id`` (the buffered tasks of one session)."""
        raise NotImplementedError

    # --- the flusher's side ------------------------------------------------------------------
    #: Shards of each collection's buffer (``BUFFER_SHARDS``), each with its own flush lock, so as
    #: many flushers can write one collection at once. A record's shard is a stable hash of its
    #: parent's id (a session and its tasks share a shard), or of its own id for a collection
    #: without parent (audit events). The embedded buffer has one (single process).
    shards = 1

    def shard_of(self, key: str) -> int:
        """The shard of the records whose shard key (parent's id, or own id) is ``key``."""
        return 0

    def scan(
        self, collection: str, chunk_size: int, shard: int | None = None
    ) -> Iterator[list[BufferedRecord]]:
        """The buffered records (of one ``shard``; None: of every shard) in chunks of about
        ``chunk_size``, read without removing them; each entry names its ``shard``.

        A record written during the scan may or may not be seen, and one may be seen twice; both are
        harmless because every entry carries its sequence number and only newer writes replace it.
        """
        raise NotImplementedError

    def remove_flushed(self, collection: str, entries: list[BufferedRecord]) -> int:
        """Delete each entry only if it is still the buffered write (same seq): a newer write of the
        same id that arrived during the flush stays for the next one. Returns how many were removed."""
        raise NotImplementedError

    def record_failures(self, collection: str, entries: list[BufferedRecord]) -> dict[str, int]:
        """Count one more failed flush attempt of each entry (by id and seq: a newer write of the id
        starts from zero); returns id -> attempts so far. The counts go when the record leaves. An
        entry no longer buffered as that write (flushed, purged or rewritten meanwhile) counts
        nothing and maps to 0."""
        raise NotImplementedError

    def retrying_count(self) -> int:
        """Buffered records that failed at least one flush attempt and wait for the next one."""
        raise NotImplementedError

    def flush_lock(self, collection: str, wait: float, shard: int = 0) -> FlushLock | None:
        """The flush lock of one shard of the collection, acquired within ``wait`` seconds, or None."""
        raise NotImplementedError

    def mark_flushed(self) -> None:
        """Record the time of a successful flush (shown by /health and recovery status)."""
        raise NotImplementedError

    def request_flush(self) -> None:
        """Ask for a flush soon (the size trigger); repeated calls within a short window coalesce."""
        raise NotImplementedError

    def start_background(self) -> None:
        """Start the work a buffer does on its own in a server process: the embedded buffer's
        flusher thread (it also flushes at once what a killed process left buffered). Nothing for
        the Redis buffer, which Celery flushes. Called by gunicorn when a worker is ready."""

    # --- state ------------------------------------------------------------------------
    def ping(self) -> bool:
        """True when the buffer store answers."""
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        """Buffered records per collection."""
        raise NotImplementedError

    def counts_by_shard(self) -> list[dict[str, int]]:
        """Buffered records per collection, for each shard (index: shard), in one read."""
        return [self.counts()]

    def size_bytes(self) -> int:
        """Bytes of buffered record data (what ``BUFFER_CAPACITY_BYTES`` bounds)."""
        raise NotImplementedError

    def last_flush(self) -> str | None:
        """ISO 8601 time of the last successful flush, if any."""
        raise NotImplementedError

    #: Names this buffer's state in the database's checkpoint (``BufferCheckpoint``).
    name = "buffer"

    #: True when ``scan`` may run in another thread than the flusher's (with its own connection):
    #: the flusher then reads ahead while the database writes.
    reads_off_thread = False

    #: True for a store that can lose its state independently of the database (Redis restarted
    #: without persistence); the flusher then compares ``last_sequence`` with its checkpoint.
    can_lose_state = False

    def last_sequence(self) -> tuple[int, bool]:
        """The last sequence number issued, and whether the store was emptied on purpose
        (``clear``, tests and benchmarks) since the last call. Only for ``can_lose_state``."""
        raise NotImplementedError

    def empty_stats(self) -> dict[str, Any]:
        return self._stats_from(dict.fromkeys(catalog.buffered_collections(), 0), None)

    def stats(self) -> dict[str, Any]:
        """The ``buffer`` object of /health."""
        return self._stats_from(self.counts(), self.last_flush())

    def _stats_from(self, counts: dict[str, int], last_flush: str | None) -> dict[str, Any]:
        # capacity is the back-pressure limit (BUFFER_CAPACITY): usage near 100 % means writes are
        # about to get 503 BUFFER_FULL. The size that triggers a flush is reported beside it. The
        # capacity bounds the records of every collection together, so the total counts them all.
        capacity = settings.BUFFER_CAPACITY
        total = sum(counts.values())
        # One count per buffered collection, named by what it holds (sessions_count, tasks_count,
        # audit_logs_count), in flush order.
        return {
            **{
                f"{catalog.plural(name)}_count": counts.get(name, 0)
                for name in catalog.buffered_collections()
            },
            "total_count": total,
            "capacity": capacity,
            "usage_percent": round(100.0 * total / capacity, 1) if capacity else 0.0,
            "flush_size": settings.BUFFER_FLUSH_SIZE,
            "last_flush": last_flush,
        }


class FlushLock(Protocol):
    """One flusher per collection at a time; only the owner's token releases it."""

    def release(self) -> None: ...

    def extend_lease(self) -> bool:
        """Renew the expiry during a long flush; False when the lock was lost (stop writing)."""
        ...


#: The two implementations, by dotted path: this interface module imports neither (they import it).
REDIS_BUFFER = "storage_backends.redis_buffer.RedisWriteBuffer"
EMBEDDED_BUFFER = "storage_backends.sqlite_buffer.SQLiteWriteBuffer"


@functools.cache
def _buffer_for(url: str | None) -> WriteBuffer:
    if url:
        buffer: WriteBuffer = import_string(REDIS_BUFFER)(url)
        return buffer
    # Refuses (ImproperlyConfigured, naming REDIS_URL) when the database is not SQLite.
    embedded: WriteBuffer = import_string(EMBEDDED_BUFFER)(background=True)
    return embedded


def get_write_buffer() -> WriteBuffer:
    """The process's buffer, chosen by ``REDIS_URL`` (none: the embedded buffer in the SQLite file)."""
    return _buffer_for(settings.REDIS_URL)
