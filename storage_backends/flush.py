"""Flushing the write buffer to the storage backends, safely under crashes and races.

    result = flush_all(get_write_buffer(), wait=10, budget=10)   # the flush endpoint
    result = flush_all(get_write_buffer(), wait=0)                # Celery: skip if another flusher runs

Guarantees and how:
- One flusher per collection shard at a time: the shard's flush lock (a Redis key, or a lock row in
  the embedded SQLite file; token-owned, renewed before every write; a flusher that lost it stops
  before writing again). With ``BUFFER_SHARDS`` > 1 (Redis buffer) each collection's buffer is split
  by a hash of the session id, and flushers (Celery worker processes) take different shards at once:
  ``start_shard`` says where one starts, and with ``wait=0`` it skips a shard another flusher holds.
- Records leave the buffer only after the database committed them, and only if they are still the
  write that was flushed (compare-and-delete by sequence number); a newer write of the same id that
  arrived meanwhile stays for the next flush, so a flush never overwrites newer data with older.
  A flusher killed half-way leaves its records buffered; the next flush simply redoes them.
- Whatever the interleaving of flushers (a lock that expired under a stalled flusher included),
  the database keeps the newest accepted write: the SQL upsert replaces a row only with a write
  accepted no earlier (its ``updated_at``).
- Sessions are flushed before tasks (and audit events last: they depend on nothing), shard by shard
  (a session and its tasks share a shard), and a task whose session is not stored yet waits in the buffer
  (its session is still buffered) or, if its session no longer exists anywhere, is dead-lettered.
  The buffer is asked before the database: a session flushed in between is then seen in one place
  or the other, never in neither.
- Transient database errors (connection lost, deadlock, timeouts) stop the flush with
  ``FlushFailed``; everything stays buffered for the retry. Permanent errors (and any exception
  while preparing a record) are narrowed down by splitting the chunk until each bad record is
  alone; bad records go to the dead-letter store and the others are written. A record that fails
  alone with an unknown error stays buffered and is retried at the next flushes, then dead-lettered
  after ``FLUSH_MAX_ATTEMPTS`` (shown meanwhile by /recovery/status and ``persistence_buffer_retrying``).
  No record can stop the others, and a flush never fails with anything but ``FlushFailed``.
- A backend that writes in bulk (the audit search plugins) may store some records of a call and
  not others: it raises ``PartialWriteError`` naming the refused ones. Those refused for good are
  dead-lettered, those refused for now stay buffered (their failures counted, shown by
  /recovery/status) for the next flush, and every other record of the call leaves the buffer.

Speed: the next records are read from the buffer and decoded by a thread while the database writes
the current chunk (Redis buffer; the SQLite one reads in the flusher's own transaction), and the
chunk size adapts between ``MIN_CHUNK`` and ``MAX_CHUNK`` records so that one chunk takes about
``TARGET_CHUNK_SECONDS`` (``persistence_flush_chunk_size`` shows it).

Cost: at most two chunks (``MAX_CHUNK`` records) in memory at a time; one upsert transaction per
chunk plus one per split when a chunk holds bad records (about 2*log2(chunk) for one bad record).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from django.db import Error as DjangoDatabaseError
from django.utils import timezone

from core import metrics, tracing
from core.exceptions import FlushFailed, StorageUnavailable
from storage_backends import catalog, registry
from storage_backends.base import PermanentWriteError, TransientWriteError, UnknownWriteError
from storage_backends.buffer import WriteBuffer, get_write_buffer
from storage_backends.dead_letters import dead_letters_store
from storage_backends.models import BufferCheckpoint
from storage_backends.records import BufferedRecord, decode
from storage_backends.search import PartialWriteError

logger = logging.getLogger(__name__)

# Records per database transaction, adapted between these bounds: 500 keeps a slow database's
# transactions (and the flush lock's renewals) short; 5,000 (about 5 MB of typical tasks) bounds
# the flusher's memory and the rows one transaction locks.
MIN_CHUNK, MAX_CHUNK = 500, 5000
# A chunk should take about this long to write: long enough that per-chunk round trips (lock
# renewal, session check, compare-and-delete) are noise, short enough to stop soon after a budget.
TARGET_CHUNK_SECONDS = 0.25
# Records read from the buffer at a time by the prefetching thread.
READ_UNIT = 500

#: The current chunk size per collection (this process's flushers learn it across flushes).
_chunk_sizes: dict[str, int] = {}


@dataclass
class FlushResult:
    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(catalog.buffered_collections(), 0))
    dead_lettered: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(catalog.buffered_collections(), 0)
    )
    deferred: int = 0
    retrying: int = 0
    skipped: list[str] = field(default_factory=list)
    complete: bool = True
    duration_ms: int = 0

    def written_by_name(self) -> dict[str, int]:
        """Records written per buffered collection, named by what they are (``sessions_written``,
        ``tasks_written``, ``audit_logs_written``), in flush order."""
        return {f"{catalog.plural(name)}_written": self.written.get(name, 0) for name in self.written}

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.written_by_name(),
            "dead_lettered": sum(self.dead_lettered.values()),
            "deferred": self.deferred,
            "retrying": self.retrying,
            "skipped": self.skipped,
            "complete": self.complete,
            "duration_ms": self.duration_ms,
        }


def flush_all(
    buffer: WriteBuffer | None = None,
    *,
    wait: float = 0,
    budget: float | None = None,
    start_shard: int = 0,
) -> FlushResult:
    """Flush every shard of the buffer, starting at ``start_shard``; in each, sessions, then tasks,
    then audit events.

    ``wait``: seconds to wait for a shard's lock held by another flusher (0: skip that shard of
    that collection, which the other flusher is taking care of). ``budget``: seconds after which no
    new chunk is started (the result is then not ``complete``). Raises ``FlushFailed`` on a transient
    storage error or when the lock could not be had within ``wait``; nothing is lost either way.
    With several shards, a (collection, shard) empty when the flush starts is not visited.
    """
    buffer = buffer or get_write_buffer()
    with tracing.span("buffer.flush", wait=wait, budget=budget, start_shard=start_shard):
        result = _flush_all(buffer, wait, budget, start_shard)
        tracing.set_attributes(
            attributes={f"persistence.{key}": n for key, n in result.written_by_name().items()},
            dead_lettered=sum(result.dead_lettered.values()),
            complete=result.complete,
            skipped=result.skipped,
        )
    return result


def _flush_all(buffer: WriteBuffer, wait: float, budget: float | None, start_shard: int) -> FlushResult:
    started = time.monotonic()
    deadline = started + budget if budget is not None else None
    result = FlushResult()
    close_old_connections()
    _check_buffer_continuity(buffer)
    shards = buffer.shards
    # One shard: every collection is visited (as before sharding). Several: one read of every
    # shard's sizes, so that a flusher does not take (and renew, and release) the locks of empty
    # shards, which with N flush tasks per size trigger would cost N * shards round trips for nothing.
    occupied = buffer.counts_by_shard() if shards > 1 else None
    for offset in range(shards):
        shard = (start_shard + offset) % shards
        for collection in catalog.buffered_collections():
            if occupied is not None and not occupied[shard].get(collection):
                continue
            remaining = wait if deadline is None else max(0.0, min(wait, deadline - time.monotonic()))
            lock = buffer.flush_lock(collection, remaining, shard)
            if lock is None:
                if wait > 0:
                    raise FlushFailed(
                        f"Another flush of {collection} held its lock for more than {wait:.0f} s."
                    )
                if collection not in result.skipped:
                    result.skipped.append(collection)
                continue
            try:
                _flush_collection(buffer, collection, shard, lock, deadline, result)
            finally:
                lock.release()
    result.duration_ms = int((time.monotonic() - started) * 1000)
    if result.complete and not result.skipped:
        buffer.mark_flushed()
    return result


def _check_buffer_continuity(buffer: WriteBuffer) -> None:
    """Count a loss if the buffer store's sequence went backwards since the last flush.

    Redis restarted without its AOF (or with keys evicted) starts its counter again: whatever it
    held is gone, and nothing else would ever say so. The number of records lost is unknown, so
    the event counts once in ``persistence_data_loss_total``, with a critical log line.
    """
    if not buffer.can_lose_state:
        return
    try:
        # The checkpoint first, then the store: every checkpoint was read from the store before it
        # was written, so a counter that keeps growing is never below it (no false alarm when
        # two flushers check at once).
        checkpoint = (
            BufferCheckpoint.objects.filter(pk=buffer.name).values_list("sequence", flat=True).first()
        )
        sequence, cleared = buffer.last_sequence()
        if checkpoint is not None and sequence < checkpoint and not cleared:
            metrics.DATA_LOSS.inc()
            logger.critical(
                "the buffer store lost its state: accepted records not yet flushed may be lost",
                extra={"buffer": buffer.name, "sequence": sequence, "checkpoint": checkpoint},
            )
        if checkpoint != sequence:
            # One UPDATE by primary key (a row lock): parallel flushers (one per shard) do this at
            # once, and update_or_create's locking read + insert deadlocked them on MariaDB.
            fields = {"sequence": sequence, "checked_at": timezone.now()}
            if not BufferCheckpoint.objects.filter(pk=buffer.name).update(**fields):
                try:
                    with transaction.atomic():
                        BufferCheckpoint.objects.create(pk=buffer.name, **fields)
                except IntegrityError:
                    pass  # another flusher created it a moment ago, from a sequence as recent
    except DjangoDatabaseError as exc:
        connection.close()
        raise FlushFailed(f"Storage unavailable: {exc}") from exc


def lock_order(
    buffer: WriteBuffer, collections: tuple[str, ...], shards: Iterable[int] | None = None
) -> list[tuple[int, str]]:
    """(shard, collection) pairs in the one order every holder of several flush locks takes them:
    by shard, then in flush order. (A flusher holds one lock at a time, so only holders of several,
    ``flush_paused`` and ``pause_flushing``, could deadlock each other; one order rules it out.)"""
    order = catalog.buffered_collections()
    chosen = sorted(set(range(buffer.shards) if shards is None else shards))
    return [(shard, c) for shard in chosen for c in sorted(collections, key=order.index)]


@contextlib.contextmanager
def flush_paused(
    collections: tuple[str, ...],
    buffer: WriteBuffer | None = None,
    *,
    wait: float = 10,
    shard_keys: Iterable[str] | None = None,
) -> Iterator[WriteBuffer]:
    """Hold the flush locks of ``collections`` (e.g. a session and its tasks: audit events are
    independent of a session delete, so their flushes go on): of the shards of ``shard_keys``
    when given (parent ids: a parent's records and its children's are all in its shard), else of
    every shard, taken in ``lock_order``.

    For operations that must not interleave with a flush, such as deleting a session: a flush that
    had already read the session's records could otherwise write them back after the delete.
    Raises ``FlushFailed`` if a running flush keeps a lock for more than ``wait`` seconds.
    """
    buffer = buffer or get_write_buffer()
    shards = None if shard_keys is None else {buffer.shard_of(key) for key in shard_keys}
    held = []
    try:
        for shard, collection in lock_order(buffer, collections, shards):
            lock = buffer.flush_lock(collection, wait, shard)
            if lock is None:
                raise FlushFailed(f"A flush of {collection} held its lock for more than {wait:.0f} s; retry.")
            held.append(lock)
        yield buffer
    finally:
        for lock in reversed(held):
            lock.release()


def _flush_collection(
    buffer: WriteBuffer,
    collection: str,
    shard: int,
    lock: Any,
    deadline: float | None,
    result: FlushResult,
) -> None:
    item_type = catalog.item_type(collection)
    started = time.perf_counter()
    written_before = result.written[collection]
    try:
        units = _decoded(buffer, collection, shard)
        if buffer.reads_off_thread:
            units = _prefetched(units)
        for chunk in _chunks(units, collection):
            if deadline is not None and time.monotonic() > deadline:
                result.complete = False
                break
            chunk_started = time.perf_counter()
            with tracing.span("buffer.flush_chunk", collection=collection, record_count=len(chunk)):
                _flush_chunk(buffer, collection, chunk, lock, result)
            _adapt_chunk_size(collection, len(chunk), time.perf_counter() - chunk_started)
    except (FlushFailed, StorageUnavailable):
        metrics.FLUSH_ERRORS.labels(type=item_type).inc()
        raise
    except (TransientWriteError, DjangoDatabaseError) as exc:
        metrics.FLUSH_ERRORS.labels(type=item_type).inc()
        # A broken connection must not be reused by the next attempt: the collection's backend may
        # use any database alias (STORAGE_BACKENDS OPTIONS), so every one of this thread is closed.
        connections.close_all()
        logger.warning(
            "flush failed; records stay buffered", extra={"collection": collection, "error": str(exc)}
        )
        raise FlushFailed(f"Storage unavailable while flushing {collection}: {exc}") from exc
    except Exception as exc:  # a bug: the records stay buffered, and the caller gets FlushFailed
        metrics.FLUSH_ERRORS.labels(type=item_type).inc()
        logger.exception("flush failed unexpectedly; records stay buffered", extra={"collection": collection})
        raise FlushFailed(f"Flushing {collection} failed unexpectedly; the records stay buffered.") from exc
    finally:
        if result.written[collection] > written_before:
            metrics.FLUSH_TOTAL.labels(type=item_type).inc()
            metrics.FLUSH_DURATION.labels(type=item_type).observe(time.perf_counter() - started)


Decoded = tuple[BufferedRecord, "dict[str, Any] | Exception"]


def _decoded(buffer: WriteBuffer, collection: str, shard: int) -> Iterator[list[Decoded]]:
    """The buffered records of one shard in units of ``READ_UNIT``, each with its decoded record (or
    the error that decoding raised: stored bytes that cannot become a record)."""
    for unit in buffer.scan(collection, READ_UNIT, shard):
        decoded: list[Decoded] = []
        for entry in unit:
            try:
                decoded.append((entry, decode(collection, entry)))
            except Exception as exc:
                decoded.append((entry, exc))
        yield decoded


_END = object()


def _prefetched(units: Iterator[list[Decoded]]) -> Iterator[list[Decoded]]:
    """``units`` produced by a thread running one step ahead, so reading and decoding the next
    records overlaps the database writing the current ones. An error of the thread is raised here;
    leaving early stops the thread."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for unit in units:
                put(unit)
                if stop.is_set():
                    return
            put(_END)
        except BaseException as exc:  # handed to the flusher, which decides
            put(exc)

    thread = threading.Thread(target=produce, name="flush-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _chunks(units: Iterator[list[Decoded]], collection: str) -> Iterator[list[Decoded]]:
    """Units gathered into chunks of the collection's current size (read before each chunk)."""
    pending: list[Decoded] = []
    for unit in units:
        pending.extend(unit)
        if len(pending) >= max(_chunk_sizes.get(collection, 1000), _chunk_bounds(collection)[0]):
            yield pending
            pending = []
    if pending:
        yield pending


def _chunk_bounds(collection: str) -> tuple[int, int]:
    """The collection's backend's ``flush_chunk_bounds``, else (MIN_CHUNK, MAX_CHUNK)."""
    return getattr(registry.backend(collection), "flush_chunk_bounds", (MIN_CHUNK, MAX_CHUNK))


def _adapt_chunk_size(collection: str, rows: int, seconds: float) -> None:
    """Grow the chunk after quick writes, shrink it after slow ones, within the bounds (the
    backend's ``flush_chunk_bounds`` when it has some: a search cluster indexes a bulk request of
    thousands of events much faster per event than several small ones, however long it takes)."""
    low, high = _chunk_bounds(collection)
    size = max(_chunk_sizes.get(collection, 1000), low)
    if rows >= size and seconds < TARGET_CHUNK_SECONDS / 2:
        size = min(int(size * 1.5), high)
    elif seconds > TARGET_CHUNK_SECONDS * 2:
        size = max(int(size / 1.5), low)
    _chunk_sizes[collection] = size
    metrics.FLUSH_CHUNK_SIZE.labels(type=catalog.item_type(collection)).set(size)


def _flush_chunk(
    buffer: WriteBuffer, collection: str, chunk: list[Decoded], lock: Any, result: FlushResult
) -> None:
    entries: list[BufferedRecord] = []
    records: list[dict[str, Any]] = []
    for entry, record in chunk:
        if isinstance(record, Exception):  # no retry can help
            _dead_letter(
                buffer, collection, [entry], f"cannot decode the buffered record: {record!r}", result
            )
        else:
            entries.append(entry)
            records.append(record)
    declared = catalog.spec(collection)
    if declared.parent is not None and entries:
        entries, records, orphans = _without_unstored_parents(buffer, collection, entries, records, result)
        if orphans:
            parent = catalog.spec(declared.parent)
            _dead_letter(
                buffer,
                collection,
                orphans,
                f"The {declared.item_type}'s {parent.item_type} does not exist (deleted or never stored).",
                result,
            )
    if entries:
        _write_isolating(buffer, collection, entries, records, lock, result)


def _without_unstored_parents(
    buffer: WriteBuffer,
    collection: str,
    entries: list[BufferedRecord],
    records: list[dict[str, Any]],
    result: FlushResult,
) -> tuple[list[BufferedRecord], list[dict[str, Any]], list[BufferedRecord]]:
    """Split off records (tasks) whose parent (session; the collection's declared ``parent``) is
    not stored: deferred if it is still buffered, else orphans.

    The buffer is read first: a parent flush commits before it removes the parent from the
    buffer, so a parent missing from the buffer now and from storage afterwards exists nowhere.
    (Read the other way round, a parent flushed between the two reads would be in neither, and
    its valid children would be dead-lettered.)
    """
    declared = catalog.spec(collection)
    parent, parent_field = declared.parent, declared.parent_field
    assert parent is not None and parent_field is not None  # catalog.declare checks both
    parent_ids = {record[parent_field] for record in records}
    buffered = set(buffer.get_many(parent, parent_ids))
    stored = registry.backend(parent).existing_ids(parent, parent_ids)
    if stored >= parent_ids:
        return entries, records, []
    keep_entries, keep_records, orphans = [], [], []
    for entry, record in zip(entries, records, strict=True):
        sid = record[parent_field]
        if sid in stored:
            keep_entries.append(entry)
            keep_records.append(record)
        elif sid in buffered:
            result.deferred += 1  # its parent arrived after the parent's flush began
        else:
            orphans.append(entry)
    return keep_entries, keep_records, orphans


def _write_isolating(
    buffer: WriteBuffer,
    collection: str,
    entries: list[BufferedRecord],
    records: list[dict[str, Any]],
    lock: Any,
    result: FlushResult,
) -> None:
    """Write; on a permanent or unknown error split in halves until each bad record is alone.

    The lease is renewed before every write, the retries of a split included, so a flusher
    narrowing down bad records keeps its lock (and stops if it lost it).
    """
    if not lock.extend_lease():
        raise FlushFailed(f"Lost the flush lock of {collection}; another flusher took over.")
    backend = registry.backend(collection)
    try:
        backend.write(collection, records, sizes=[len(e.data) for e in entries])
    except PartialWriteError as exc:
        _partially_written(buffer, collection, entries, exc, result)
        return
    except (PermanentWriteError, UnknownWriteError) as exc:
        if len(entries) == 1:
            _set_aside(buffer, collection, entries[0], exc, result)
            return
        middle = len(entries) // 2
        _write_isolating(buffer, collection, entries[:middle], records[:middle], lock, result)
        _write_isolating(buffer, collection, entries[middle:], records[middle:], lock, result)
        return
    result.written[collection] += len(entries)
    metrics.FLUSHED_ITEMS.labels(type=catalog.item_type(collection)).inc(len(entries))
    buffer.remove_flushed(collection, entries)


def _partially_written(
    buffer: WriteBuffer,
    collection: str,
    entries: list[BufferedRecord],
    exc: PartialWriteError,
    result: FlushResult,
) -> None:
    """A bulk write stored some records and refused others: dead-letter the permanent refusals,
    keep the transient ones buffered (counting one more failed attempt each), remove the rest."""
    permanent = [e for e in entries if e.record_id in exc.permanent]
    transient = [e for e in entries if e.record_id in exc.transient and e.record_id not in exc.permanent]
    refused = {e.record_id for e in permanent} | {e.record_id for e in transient}
    stored = [e for e in entries if e.record_id not in refused]
    if stored:
        result.written[collection] += len(stored)
        metrics.FLUSHED_ITEMS.labels(type=catalog.item_type(collection)).inc(len(stored))
        buffer.remove_flushed(collection, stored)
    for entry in permanent:
        _dead_letter(buffer, collection, [entry], exc.permanent[entry.record_id], result)
    if transient:
        buffer.record_failures(collection, transient)
        result.retrying += len(transient)
        metrics.FLUSH_RECORD_FAILURES.labels(type=catalog.item_type(collection)).inc(len(transient))
        logger.warning(
            "records refused for now by the backend; they stay buffered for the next flush",
            extra={
                "collection": collection,
                "count": len(transient),
                "ids": [e.record_id for e in transient[:20]],
                "error": next(iter(exc.transient.values())),
            },
        )


def _set_aside(
    buffer: WriteBuffer, collection: str, entry: BufferedRecord, exc: Exception, result: FlushResult
) -> None:
    """One record failed alone: dead-letter it now (permanent) or after its last allowed attempt."""
    if isinstance(exc, UnknownWriteError):
        attempts = buffer.record_failures(collection, [entry])[entry.record_id]
        if attempts < settings.FLUSH_MAX_ATTEMPTS:
            result.retrying += 1
            metrics.FLUSH_RECORD_FAILURES.labels(type=catalog.item_type(collection)).inc()
            logger.warning(
                "record failed with an unknown error; it stays buffered for the next flush",
                extra={
                    "collection": collection,
                    "id": entry.record_id,
                    "attempts": attempts,
                    "error": str(exc),
                },
            )
            return
        error = f"{exc} (failed {attempts} flushes with an error not known to be permanent)"
    else:
        error = str(exc)
    _dead_letter(buffer, collection, [entry], error, result)


def _dead_letter(
    buffer: WriteBuffer, collection: str, entries: list[BufferedRecord], error: str, result: FlushResult
) -> None:
    try:
        dead_letters_store(collection=collection, entries=entries, error=error)
    except DatabaseError as exc:  # the records stay buffered until the store can take them
        raise TransientWriteError(f"cannot write the dead-letter store: {exc}") from exc
    result.dead_lettered[collection] += len(entries)
    logger.error(
        "records moved to the dead-letter store",
        extra={
            "collection": collection,
            "count": len(entries),
            "ids": [e.record_id for e in entries[:20]],
            "error": error,
        },
    )
    buffer.remove_flushed(collection, entries)
