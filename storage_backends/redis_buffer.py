"""The production write buffer, in Redis: shared by every web process and Celery worker.

Layout (every key carries the ``{buffer}`` hash tag, so the scripts also run on Redis Cluster):

- ``<prefix>:<collection>``: hash id -> ``"<seq>|<created_us>|<updated_us>|<n>|<session id><json>"``
  where ``<n>`` is the byte length of the session id that follows (0 for sessions); a session id
  may contain any character, so it is length-prefixed rather than delimited.
- ``<prefix>:by_session:<sid>``: set of the session's buffered task ids (restore and purge read a
  session's tasks without scanning the hash)
- ``<prefix>:seq``: the write counter; ``<prefix>:last_flush``; ``<prefix>:lock:<collection>``

Each change is one Lua script, so a batch is buffered entirely or not at all, and acceptance times
come from the Redis server's clock (one clock for all web instances). Scripts block Redis while they
run, so the flusher removes records in slices of ``REMOVE_SLICE``.

    buffer = RedisWriteBuffer("redis://127.0.0.1:6379/0")
    buffer.add("translation_sessions", [{"session_id": "s-1", ...}])
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from django.conf import settings

from core import tracing
from core.exceptions import BufferFull, SessionsDeleting, StorageUnavailable
from storage_backends import catalog
from storage_backends.buffer import (
    SESSIONS,
    TASKS,
    SessionsDeleted,
    SessionsNotBuffered,
    WriteBuffer,
)
from storage_backends.records import BufferedRecord, decode, encode

logger = logging.getLogger(__name__)

# A size trigger enqueues at most one flush per window however many batches cross the threshold.
FLUSH_DEBOUNCE_SECONDS = 2

# The header of a stored value: returns created_us, session id, and the byte length of the JSON.
_PARSE = """
local function parse(v)
  local a = string.find(v, '|', 1, true)
  local b = string.find(v, '|', a + 1, true)
  local c = string.find(v, '|', b + 1, true)
  local d = string.find(v, '|', c + 1, true)
  local n = tonumber(string.sub(v, c + 1, d - 1))
  return string.sub(v, a + 1, b - 1), string.sub(v, d + 1, d + n), #v - d - n
end
local function sub_bytes(key, n)
  if redis.call('DECRBY', key, n) < 0 then redis.call('SET', key, 0) end
end
"""

# KEYS: collection hash, sessions hash, tasks hash, seq, flush_requested, bytes, last acceptance
# time, failures hash of the collection, then every collection's hash (the capacity counts them all).
# ARGV: capacity, flags ('t': tasks, 's': sessions, 'k': keep the first write of an id), set prefix, flush size, debounce seconds, capacity in bytes, tombstone
# prefix, count of required sessions, the required session ids, then (id, json, session id) per record.
# Returns {-1, size} when full, {-4, bytes} when full by bytes, {-2, missing session ids...} when a
# required session is not buffered, {-3, deleted session ids...} when a task names a session with a
# tombstone, {-5, session ids...} when a session is being deleted right now (tombstone '2'; nothing
# written in those cases), else {now_us, size, 1 if this call should enqueue a flush}.
_ADD = (
    _PARSE
    + """
local cap = tonumber(ARGV[1])
local is_tasks = string.find(ARGV[2], 't', 1, true) ~= nil
local is_sessions = string.find(ARGV[2], 's', 1, true) ~= nil
local keep_first = string.find(ARGV[2], 'k', 1, true) ~= nil
local set_prefix = ARGV[3]
local tomb_prefix = ARGV[7]
local nreq = tonumber(ARGV[8])
local first = 9 + nreq
local n = (#ARGV - first + 1) / 3
if is_tasks then
  local deleted, seen = {-3}, {}
  for i = 0, n - 1 do
    local sid = ARGV[first + 2 + i * 3]
    if not seen[sid] then
      seen[sid] = true
      if redis.call('EXISTS', tomb_prefix .. sid) == 1 then table.insert(deleted, sid) end
    end
  end
  if #deleted > 1 then return deleted end
elseif is_sessions then
  local deleting = {-5}
  for i = 0, n - 1 do
    local id = ARGV[first + i * 3]
    if redis.call('GET', tomb_prefix .. id) == '2' then table.insert(deleting, id) end
  end
  if #deleting > 1 then return deleting end
end
local missing = {-2}
for i = 9, 8 + nreq do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then table.insert(missing, ARGV[i]) end
end
if #missing > 1 then return missing end
local size = 0
for i = 9, #KEYS do size = size + redis.call('HLEN', KEYS[i]) end
if size + n > cap then return {-1, size} end
local bytes = tonumber(redis.call('GET', KEYS[6]) or '0')
local lens, olds, added, taken = {}, {}, 0, {}
for i = 0, n - 1 do
  local id = ARGV[first + i * 3]
  if lens[id] == nil then
    local old = redis.call('HGET', KEYS[1], id)
    olds[id] = old or false
    if old then
      local _, _, len = parse(old)
      lens[id] = len
    else
      lens[id] = 0
    end
  end
  -- keep_first: only the first write of an id counts (the buffered one, or the first in the batch)
  if not (keep_first and (olds[id] or taken[id])) then
    local len = #ARGV[first + 1 + i * 3]
    added = added + len - lens[id]
    lens[id] = len
    taken[id] = true
  end
end
if added > 0 and bytes + added > tonumber(ARGV[6]) then return {-4, bytes} end
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local last = redis.call('GET', KEYS[7])
if last and tonumber(last) > tonumber(now) then now = last end
redis.call('SET', KEYS[7], now)
local seq = redis.call('INCRBY', KEYS[4], n) - n
local failures = redis.call('EXISTS', KEYS[8]) == 1
for i = 0, n - 1 do
  local id = ARGV[first + i * 3]
  local sid = ARGV[first + 2 + i * 3]
  seq = seq + 1
  local created = now
  local old = olds[id]
  if keep_first and old then
    -- an append-only collection keeps its first accepted write: this one is a resend
  else
  if old then
    local old_sid
    created, old_sid = parse(old)
    if is_tasks and old_sid ~= sid then redis.call('SREM', set_prefix .. old_sid, id) end
  end
  local value = string.format('%d', seq) .. '|' .. created .. '|' .. now .. '|' .. #sid .. '|' .. sid .. ARGV[first + 1 + i * 3]
  redis.call('HSET', KEYS[1], id, value)
  olds[id] = value
  if is_tasks then
    redis.call('SADD', set_prefix .. sid, id)
  elseif is_sessions then
    redis.call('DEL', tomb_prefix .. id)
  end
  if failures then redis.call('HDEL', KEYS[8], id) end
  end
end
redis.call('INCRBY', KEYS[6], added)
local enqueue = 0
if size + n >= tonumber(ARGV[4]) and redis.call('SET', KEYS[5], 1, 'NX', 'EX', ARGV[5]) then enqueue = 1 end
return {now, size + n, enqueue}
"""
)

# KEYS: collection hash, bytes, failures hash. ARGV: is_tasks, set prefix, then (id, seq) pairs.
# Deletes each id only if its value is still that seq (a newer write stays). Returns how many.
_REMOVE_FLUSHED = (
    _PARSE
    + """
local is_tasks = ARGV[1] == '1'
local removed, freed = 0, 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local want = ARGV[i + 1] .. '|'
  local v = redis.call('HGET', KEYS[1], id)
  if v and string.sub(v, 1, #want) == want then
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[3], id)
    removed = removed + 1
    local _, sid, len = parse(v)
    freed = freed + len
    if is_tasks then redis.call('SREM', ARGV[2] .. sid, id) end
  end
end
sub_bytes(KEYS[2], freed)
return removed
"""
)

# KEYS: sessions hash, tasks hash, bytes, sessions' failures, tasks' failures.
# ARGV: tombstone prefix, set prefix, tombstone seconds, keep_active ('1': skip a session with a
# buffered write of its own or of its tasks), then the session ids. For each session not skipped:
# drop its buffered writes and leave a "deleting" tombstone ('2'). Returns (id, tasks dropped) pairs.
_BEGIN_DELETE = (
    _PARSE
    + """
local keep_active = ARGV[4] == '1'
local out = {}
for i = 5, #ARGV do
  local sid = ARGV[i]
  local set = ARGV[2] .. sid
  if not (keep_active and (redis.call('HEXISTS', KEYS[1], sid) == 1 or redis.call('EXISTS', set) == 1)) then
    local freed = 0
    local v = redis.call('HGET', KEYS[1], sid)
    if v then
      local _, _, len = parse(v)
      freed = len
      redis.call('HDEL', KEYS[1], sid)
      redis.call('HDEL', KEYS[4], sid)
    end
    local ids = redis.call('SMEMBERS', set)
    for _, id in ipairs(ids) do
      local t = redis.call('HGET', KEYS[2], id)
      if t then
        local _, _, len = parse(t)
        freed = freed + len
        redis.call('HDEL', KEYS[2], id)
        redis.call('HDEL', KEYS[5], id)
      end
    end
    redis.call('DEL', set)
    sub_bytes(KEYS[3], freed)
    redis.call('SET', ARGV[1] .. sid, 2, 'EX', ARGV[3])
    table.insert(out, sid)
    table.insert(out, #ids)
  end
end
return out
"""
)

# KEYS: collection hash, failures hash. ARGV: (id, seq) pairs. Returns the attempts so far of each,
# in order; 0 (and nothing counted) for an entry no longer buffered as that write.
_RECORD_FAILURES = """
local counts = {}
for i = 1, #ARGV, 2 do
  local id, seq = ARGV[i], ARGV[i + 1]
  local current = redis.call('HGET', KEYS[1], id)
  local n = 0
  if current and string.sub(current, 1, #seq + 1) == seq .. '|' then
    n = 1
    local v = redis.call('HGET', KEYS[2], id)
    if v then
      local bar = string.find(v, '|', 1, true)
      if string.sub(v, 1, bar - 1) == seq then n = tonumber(string.sub(v, bar + 1)) + 1 end
    end
    redis.call('HSET', KEYS[2], id, seq .. '|' .. n)
  end
  table.insert(counts, n)
end
return counts
"""

# Entries per compare-and-delete script: one round trip per 1,000 flushed records, each call
# blocking Redis for well under a millisecond, so batch writes arriving meanwhile barely wait.
REMOVE_SLICE = 1000


def _parse(record_id: bytes | str, value: bytes) -> BufferedRecord:
    seq, created, updated, sid_length, rest = value.split(b"|", 4)
    return BufferedRecord(
        record_id=record_id.decode() if isinstance(record_id, bytes) else record_id,
        seq=int(seq),
        created_us=int(created),
        updated_us=int(updated),
        data=rest[int(sid_length) :],
    )


def _publish_flush() -> None:
    try:
        from storage_backends.tasks import flush_buffer

        flush_buffer.delay()
    except Exception:  # the records are safe in Redis; the periodic flush will take them
        logger.warning("could not enqueue a size-triggered flush", exc_info=True)


_ENQUEUER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flush-enqueue")


class _RedisFlushLock:
    def __init__(self, lock: redis.lock.Lock, unreleased: list[redis.lock.Lock]) -> None:
        self._lock = lock
        self._unreleased = unreleased

    def release(self) -> None:
        try:
            self._lock.release()
        except redis.exceptions.LockError:
            logger.warning("flush lock expired before release", extra={"lock": self._lock.name})
        except redis.RedisError:
            # Redis went away mid-flush (a restart from its AOF keeps the lock): without this, every
            # flush would wait for the lock to expire (BUFFER_LOCK_TTL). Released at the next try.
            logger.warning("flush lock not released: Redis unreachable", extra={"lock": self._lock.name})
            self._unreleased.append(self._lock)

    def extend_lease(self) -> bool:
        try:
            return bool(self._lock.reacquire())
        except redis.exceptions.LockError:
            return False


class RedisWriteBuffer(WriteBuffer):
    def __init__(self, url: str, prefix: str | None = None) -> None:
        self.redis = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
        )
        self.prefix = prefix or settings.BUFFER_KEY_PREFIX
        self._add = self.redis.register_script(_ADD)
        self._remove_flushed = self.redis.register_script(_REMOVE_FLUSHED)
        self._begin_delete = self.redis.register_script(_BEGIN_DELETE)
        self._record_failures = self.redis.register_script(_RECORD_FAILURES)
        #: Flush locks this process holds but could not release (Redis was unreachable).
        self._unreleased_locks: list[redis.lock.Lock] = []

    # --- keys ----------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    @property
    def _set_prefix(self) -> str:
        return self._key("by_session:")

    @property
    def _tombstone_prefix(self) -> str:
        return self._key("deleted:")

    def _failures_key(self, collection: str) -> str:
        return self._key(f"failures:{collection}")

    # --- writes --------------------------------------------------------------------------
    def add(
        self, collection: str, records: list[dict[str, Any]], *, require_sessions: Collection[str] = ()
    ) -> None:
        id_field = catalog.id_field(collection)
        is_tasks = collection == TASKS
        flags = ("t" if is_tasks else "") + ("s" if collection == SESSIONS else "")
        flags += "k" if catalog.spec(collection).keep_first else ""
        args: list[Any] = [
            settings.BUFFER_CAPACITY,
            flags or "-",
            self._set_prefix,
            settings.BUFFER_FLUSH_SIZE,
            FLUSH_DEBOUNCE_SECONDS,
            settings.BUFFER_CAPACITY_BYTES,
            self._tombstone_prefix,
            len(require_sessions),
            *require_sessions,
        ]
        for record in records:
            args += [record[id_field], encode(record), record["session_id"] if is_tasks else ""]
        keys = [
            self._key(collection),
            self._key(SESSIONS),
            self._key(TASKS),
            self._key("seq"),
            self._key("flush_requested"),
            self._key("bytes"),
            self._key("last_accepted"),
            self._failures_key(collection),
            *(self._key(name) for name in catalog.buffered_collections()),
        ]
        try:
            with tracing.span("buffer.add", collection=collection, record_count=len(records), store="redis"):
                reply = self._add(keys=keys, args=args)
        except redis.RedisError as exc:
            logger.error(
                "buffer store unreachable on add", extra={"collection": collection, "error": str(exc)}
            )
            raise StorageUnavailable(
                "The buffer store (Redis) is unreachable; nothing from this request was accepted. Retry later."
            ) from exc
        status = int(reply[0])
        if status == -2:
            raise SessionsNotBuffered({sid.decode() for sid in reply[1:]})
        if status == -3:
            raise SessionsDeleted({sid.decode() for sid in reply[1:]})
        if status == -5:
            raise SessionsDeleting({sid.decode() for sid in reply[1:]})
        if status == -1:
            raise BufferFull(
                f"The write buffer holds {int(reply[1])} records (capacity {settings.BUFFER_CAPACITY}); "
                "retry after it drains."
            )
        if status == -4:
            raise BufferFull(
                f"The write buffer holds {int(reply[1])} bytes of records (capacity "
                f"{settings.BUFFER_CAPACITY_BYTES}); retry after it drains."
            )
        if int(reply[2]):
            self._enqueue_flush()

    def begin_delete(self, session_ids: Collection[str], *, keep_active: bool) -> dict[str, int]:
        keys = [
            self._key(SESSIONS),
            self._key(TASKS),
            self._key("bytes"),
            self._failures_key(SESSIONS),
            self._failures_key(TASKS),
        ]
        args = [
            self._tombstone_prefix,
            self._set_prefix,
            settings.BUFFER_TOMBSTONE_TTL,
            "1" if keep_active else "0",
            *session_ids,
        ]
        reply = self._call(self._begin_delete, keys, args)
        return {reply[i].decode(): int(reply[i + 1]) for i in range(0, len(reply), 2)}

    def end_delete(self, session_ids: Collection[str], *, deleted: bool) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for session_id in session_ids:
            key = self._tombstone_prefix + session_id
            if deleted:
                pipe.set(key, 1, ex=settings.BUFFER_TOMBSTONE_TTL)
            else:
                pipe.delete(key)
        self._call(pipe.execute)

    # --- reads ---------------------------------------------------------------------------
    def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        return self.get_many(collection, [record_id]).get(record_id)

    def get_many(self, collection: str, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(record_ids))
        if not ids:
            return {}
        values = self._call(self.redis.hmget, self._key(collection), ids)
        return {
            i: decode(collection, _parse(i, v)) for i, v in zip(ids, values, strict=True) if v is not None
        }

    def records(self, collection: str) -> Iterator[dict[str, Any]]:
        for chunk in self.scan(collection, 1000):
            for entry in chunk:
                yield decode(collection, entry)

    def session_tasks(self, session_id: str) -> list[dict[str, Any]]:
        ids = [i.decode() for i in self._call(self.redis.smembers, self._set_prefix + session_id)]
        return list(self.get_many(TASKS, ids).values())

    # --- the flusher's side ----------------------------------------------------------------
    def scan(self, collection: str, chunk_size: int) -> Iterator[list[BufferedRecord]]:
        chunk: list[BufferedRecord] = []
        try:
            for record_id, value in self.redis.hscan_iter(self._key(collection), count=chunk_size):
                chunk.append(_parse(record_id, value))
                if len(chunk) >= chunk_size:
                    yield chunk
                    chunk = []
        except redis.RedisError as exc:
            raise StorageUnavailable("The buffer store (Redis) is unreachable.") from exc
        if chunk:
            yield chunk

    def remove_flushed(self, collection: str, entries: list[BufferedRecord]) -> int:
        prefix_args = ["1" if collection == TASKS else "0", self._set_prefix]
        removed = 0
        for start in range(0, len(entries), REMOVE_SLICE):
            args: list[Any] = list(prefix_args)
            for entry in entries[start : start + REMOVE_SLICE]:
                args += [entry.record_id, entry.seq]
            keys = [self._key(collection), self._key("bytes"), self._failures_key(collection)]
            removed += int(self._call(self._remove_flushed, keys, args))
        return removed

    def record_failures(self, collection: str, entries: list[BufferedRecord]) -> dict[str, int]:
        args: list[Any] = []
        for entry in entries:
            args += [entry.record_id, entry.seq]
        keys = [self._key(collection), self._failures_key(collection)]
        counts = self._call(self._record_failures, keys, args)
        return {entry.record_id: int(n) for entry, n in zip(entries, counts, strict=True)}

    def retrying_count(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for collection in catalog.buffered_collections():
            pipe.hlen(self._failures_key(collection))
        return sum(int(n) for n in self._call(pipe.execute))

    def flush_lock(self, collection: str, wait: float) -> _RedisFlushLock | None:
        self._release_unreleased_locks()
        lock = self.redis.lock(
            self._key(f"lock:{collection}"),
            timeout=settings.BUFFER_LOCK_TTL,
            blocking_timeout=wait,
            thread_local=False,
        )
        acquired = self._call(lock.acquire, wait > 0)
        return _RedisFlushLock(lock, self._unreleased_locks) if acquired else None

    def _release_unreleased_locks(self) -> None:
        """Release the locks a flush of this process could not (each only if still its own token)."""
        for lock in list(self._unreleased_locks):
            try:
                lock.release()
            except redis.exceptions.LockError:
                pass  # expired meanwhile, or another flusher has it now: not ours any more
            except redis.RedisError:
                return  # still unreachable: keep them for the next try
            self._unreleased_locks.remove(lock)

    def mark_flushed(self) -> None:
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        self._call(self.redis.set, self._key("last_flush"), now)

    def request_flush(self) -> None:
        try:
            if self.redis.set(self._key("flush_requested"), 1, nx=True, ex=FLUSH_DEBOUNCE_SECONDS):
                self._enqueue_flush()
        except redis.RedisError:
            logger.warning("could not request a flush", exc_info=True)

    @staticmethod
    def _enqueue_flush() -> None:
        # Off the request's path: publishing to the broker costs a millisecond or more (tens when
        # its connection is new), which would show in the p99 of the batch endpoints.
        # The publish runs in the caller's trace context, so the flush task continues the request's trace.
        _ENQUEUER.submit(tracing.in_current_context(_publish_flush))

    # --- state ---------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def counts(self) -> dict[str, int]:
        collections = catalog.buffered_collections()
        pipe = self.redis.pipeline(transaction=False)
        for collection in collections:
            pipe.hlen(self._key(collection))
        return {c: int(n) for c, n in zip(collections, self._call(pipe.execute), strict=True)}

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.prefix

    can_lose_state = True
    reads_off_thread = True

    def last_sequence(self) -> tuple[int, bool]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self._key("seq"))
        pipe.getdel(self._key("cleared"))
        sequence, cleared = self._call(pipe.execute)
        return int(sequence or 0), cleared is not None

    def size_bytes(self) -> int:
        return int(self._call(self.redis.get, self._key("bytes")) or 0)

    def last_flush(self) -> str | None:
        value = self._call(self.redis.get, self._key("last_flush"))
        return value.decode() if value else None

    def clear(self) -> None:
        """Delete every key of this buffer (tests and the bench use it; never the service)."""
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:*", count=1000))
        if keys:
            self.redis.delete(*keys)
        # Tells the next flush that the sequence starts again on purpose, not by a loss.
        self.redis.set(self._key("cleared"), 1)

    @staticmethod
    def _call(func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except redis.RedisError as exc:
            raise StorageUnavailable("The buffer store (Redis) is unreachable.") from exc
