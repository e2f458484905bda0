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

from persistence_site.errors import BufferFull, ServiceUnavailable
from storage_backends.buffer import SESSIONS, TASKS, SessionsNotBuffered, WriteBuffer
from storage_backends.records import ID_FIELDS, BufferedRecord, decode, encode

logger = logging.getLogger(__name__)

# A size trigger enqueues at most one flush per window however many batches cross the threshold.
FLUSH_DEBOUNCE_SECONDS = 2

# The header of a stored value: returns created_us, session id, and the index where the JSON starts.
_PARSE = """
local function parse(v)
  local a = string.find(v, '|', 1, true)
  local b = string.find(v, '|', a + 1, true)
  local c = string.find(v, '|', b + 1, true)
  local d = string.find(v, '|', c + 1, true)
  local n = tonumber(string.sub(v, c + 1, d - 1))
  return string.sub(v, a + 1, b - 1), string.sub(v, d + 1, d + n)
end
"""

# ARGV: capacity, is_tasks, set prefix, flush size, debounce seconds, count of required sessions,
# the required session ids, then (id, json, session id) per record.
# Returns {-1, size} when full, {-2, missing session ids...} when a required session is not
# buffered (nothing written), else {now_us, size, 1 if this call should enqueue a flush}.
_ADD = (
    _PARSE
    + """
local cap = tonumber(ARGV[1])
local is_tasks = ARGV[2] == '1'
local set_prefix = ARGV[3]
local nreq = tonumber(ARGV[6])
local missing = {-2}
for i = 7, 6 + nreq do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then table.insert(missing, ARGV[i]) end
end
if #missing > 1 then return missing end
local first = 7 + nreq
local n = (#ARGV - first + 1) / 3
local size = redis.call('HLEN', KEYS[2]) + redis.call('HLEN', KEYS[3])
if size + n > cap then return {-1, size} end
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local seq = redis.call('INCRBY', KEYS[4], n) - n
for i = 0, n - 1 do
  local id = ARGV[first + i * 3]
  local sid = ARGV[first + 2 + i * 3]
  seq = seq + 1
  local created = now
  local old = redis.call('HGET', KEYS[1], id)
  if old then
    local old_sid
    created, old_sid = parse(old)
    if is_tasks and old_sid ~= sid then redis.call('SREM', set_prefix .. old_sid, id) end
  end
  redis.call('HSET', KEYS[1], id,
    string.format('%d', seq) .. '|' .. created .. '|' .. now .. '|' .. #sid .. '|' .. sid .. ARGV[first + 1 + i * 3])
  if is_tasks then redis.call('SADD', set_prefix .. sid, id) end
end
local enqueue = 0
if size + n >= tonumber(ARGV[4]) and redis.call('SET', KEYS[5], 1, 'NX', 'EX', ARGV[5]) then enqueue = 1 end
return {now, size + n, enqueue}
"""
)

# ARGV: is_tasks, set prefix, then (id, seq) pairs. Deletes each id only if its value is still
# that seq (a newer write stays). Returns how many were deleted.
_REMOVE_FLUSHED = (
    _PARSE
    + """
local is_tasks = ARGV[1] == '1'
local removed = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local want = ARGV[i + 1] .. '|'
  local v = redis.call('HGET', KEYS[1], id)
  if v and string.sub(v, 1, #want) == want then
    redis.call('HDEL', KEYS[1], id)
    removed = removed + 1
    if is_tasks then
      local _, sid = parse(v)
      redis.call('SREM', ARGV[2] .. sid, id)
    end
  end
end
return removed
"""
)

_PURGE_SESSION = """
redis.call('HDEL', KEYS[1], ARGV[1])
local ids = redis.call('SMEMBERS', KEYS[3])
for _, id in ipairs(ids) do redis.call('HDEL', KEYS[2], id) end
redis.call('DEL', KEYS[3])
return #ids
"""

# Entries per compare-and-delete script: each call blocks Redis for well under a millisecond, so
# batch writes arriving during a flush do not queue behind it.
REMOVE_SLICE = 200


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
        self._purge_session = self.redis.register_script(_PURGE_SESSION)
        #: Flush locks this process holds but could not release (Redis was unreachable).
        self._unreleased_locks: list[redis.lock.Lock] = []

    # --- keys ----------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    @property
    def _set_prefix(self) -> str:
        return self._key("by_session:")

    # --- writes --------------------------------------------------------------------------
    def add(
        self, collection: str, records: list[dict[str, Any]], *, require_sessions: Collection[str] = ()
    ) -> None:
        id_field = ID_FIELDS[collection]
        is_tasks = collection == TASKS
        args: list[Any] = [
            settings.BUFFER_CAPACITY,
            "1" if is_tasks else "0",
            self._set_prefix,
            settings.BUFFER_FLUSH_SIZE,
            FLUSH_DEBOUNCE_SECONDS,
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
        ]
        try:
            reply = self._add(keys=keys, args=args)
        except redis.RedisError as exc:
            logger.error(
                "buffer store unreachable on add", extra={"collection": collection, "error": str(exc)}
            )
            raise ServiceUnavailable(
                "The buffer store (Redis) is unreachable; nothing from this request was accepted. Retry later."
            ) from exc
        status = int(reply[0])
        if status == -2:
            raise SessionsNotBuffered({sid.decode() for sid in reply[1:]})
        if status == -1:
            raise BufferFull(
                f"The write buffer holds {int(reply[1])} records (capacity {settings.BUFFER_CAPACITY}); "
                "retry after it drains."
            )
        if int(reply[2]):
            self._enqueue_flush()

    def purge_session(self, session_id: str) -> int:
        keys = [
            self._key(SESSIONS),
            self._key(TASKS),
            self._set_prefix + session_id,
        ]
        try:
            return int(self._purge_session(keys=keys, args=[session_id]))
        except redis.RedisError as exc:
            raise ServiceUnavailable("The buffer store (Redis) is unreachable.") from exc

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
            raise ServiceUnavailable("The buffer store (Redis) is unreachable.") from exc
        if chunk:
            yield chunk

    def remove_flushed(self, collection: str, entries: list[BufferedRecord]) -> int:
        prefix_args = ["1" if collection == TASKS else "0", self._set_prefix]
        removed = 0
        for start in range(0, len(entries), REMOVE_SLICE):
            args: list[Any] = list(prefix_args)
            for entry in entries[start : start + REMOVE_SLICE]:
                args += [entry.record_id, entry.seq]
            removed += int(self._call(self._remove_flushed, [self._key(collection)], args))
        return removed

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
        _ENQUEUER.submit(_publish_flush)

    # --- state ---------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def counts(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(self._key(SESSIONS))
        pipe.hlen(self._key(TASKS))
        sessions, tasks = self._call(pipe.execute)
        return {SESSIONS: int(sessions), TASKS: int(tasks)}

    def last_flush(self) -> str | None:
        value = self._call(self.redis.get, self._key("last_flush"))
        return value.decode() if value else None

    def clear(self) -> None:
        """Delete every key of this buffer (tests and the bench use it; never the service)."""
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:*", count=1000))
        if keys:
            self.redis.delete(*keys)

    @staticmethod
    def _call(func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except redis.RedisError as exc:
            raise ServiceUnavailable("The buffer store (Redis) is unreachable.") from exc
