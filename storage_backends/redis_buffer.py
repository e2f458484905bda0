"""The production write buffer, in Redis: shared by every web process and Celery worker.

Layout (every key carries the ``{buffer}`` hash tag, so the scripts also run on Redis Cluster):

- ``<prefix>:<collection>``: hash id -> ``"<seq>|<created_us>|<updated_us>|<n>|<session id><json>"``
  where ``<n>`` is the byte length of the session id that follows (0 for sessions); a session id
  may contain any character, so it is length-prefixed rather than delimited. That is shard 0; with
  ``BUFFER_SHARDS`` = N > 1, shard k > 0 is ``<prefix>:<collection>:<k>`` (so one shard keeps the
  single-flusher key names). A record's shard is ``crc32(key) % N`` of its session id (a task: its
  ``session_id``; a session: its own id; a collection without parent, audit events: its own id).
- ``<prefix>:by_session:<sid>``: set of the session's buffered task ids (restore and purge read a
  session's tasks without scanning the hash)
- ``<prefix>:seq``: the write counter; ``<prefix>:last_flush``; ``<prefix>:lock:<collection>``
  (shard 0) and ``<prefix>:lock:<collection>:<k>``: one flush lock per shard
- ``<prefix>:bytes``, ``<prefix>:failures:<collection>``: global, not sharded (capacity and failure
  counts do not depend on the shard count)

Shards and the rare task that moves to a session of another shard: its older write stays in the
old shard until flushed (checking every shard for it would cost the accept script N lookups per
task); reads take the newest write (highest seq) across shards, and the database's guard on
``updated_at`` keeps the newer write whichever shard flushes first.

Each change is one Lua script, so a batch is buffered entirely or not at all, and acceptance times
come from the Redis server's clock (one clock for all web instances). Scripts block Redis while they
run, so the flusher removes records in slices of ``REMOVE_SLICE``.

    buffer = RedisWriteBuffer("redis://127.0.0.1:6379/0")
    buffer.add("translation_sessions", [{"session_id": "s-1", ...}])
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import zlib
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from django.conf import settings

from core import tracing
from core.exceptions import BufferFull, RecordsBeingDeleted, StorageUnavailable
from storage_backends import catalog
from storage_backends.buffer import ParentsDeleted, ParentsNotBuffered, WriteBuffer, child_of
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

# KEYS: seq, flush_requested, bytes, last acceptance time, failures hash of the collection, then
# every buffered collection's shard hashes (collection-major: KEYS[6 + c * N + shard], c 0-based in
# buffered_collections() order; the capacity counts them all).
# ARGV: capacity, flags ('t': tasks, 's': sessions, 'k': keep the first write of an id), set prefix,
# flush size, debounce seconds, capacity in bytes, tombstone prefix, N (shards), index of the
# collection, index of the sessions collection, count of required sessions, then (session id, shard)
# per required session, then (id, json, session id, shard) per record.
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
local nshards = tonumber(ARGV[8])
local coll = tonumber(ARGV[9])
local sess = tonumber(ARGV[10])
local nreq = tonumber(ARGV[11])
local first = 12 + nreq * 2
local n = (#ARGV - first + 1) / 4
local function hkey(c, shard) return KEYS[6 + c * nshards + tonumber(shard)] end
if is_tasks then
  local deleted, seen = {-3}, {}
  for i = 0, n - 1 do
    local sid = ARGV[first + 2 + i * 4]
    if not seen[sid] then
      seen[sid] = true
      if redis.call('EXISTS', tomb_prefix .. sid) == 1 then table.insert(deleted, sid) end
    end
  end
  if #deleted > 1 then return deleted end
elseif is_sessions then
  local deleting = {-5}
  for i = 0, n - 1 do
    local id = ARGV[first + i * 4]
    if redis.call('GET', tomb_prefix .. id) == '2' then table.insert(deleting, id) end
  end
  if #deleting > 1 then return deleting end
end
local missing = {-2}
for i = 12, 11 + nreq * 2, 2 do
  if redis.call('HEXISTS', hkey(sess, ARGV[i + 1]), ARGV[i]) == 0 then table.insert(missing, ARGV[i]) end
end
if #missing > 1 then return missing end
local size = 0
for i = 6, #KEYS do size = size + redis.call('HLEN', KEYS[i]) end
if size + n > cap then return {-1, size} end
local bytes = tonumber(redis.call('GET', KEYS[3]) or '0')
-- keyed by shard and id: a task moving to a session of another shard within one batch is two entries
local lens, olds, added, taken = {}, {}, 0, {}
for i = 0, n - 1 do
  local id = ARGV[first + i * 4]
  local shard = ARGV[first + 3 + i * 4]
  local k = shard .. '|' .. id
  if lens[k] == nil then
    local old = redis.call('HGET', hkey(coll, shard), id)
    olds[k] = old or false
    if old then
      local _, _, len = parse(old)
      lens[k] = len
    else
      lens[k] = 0
    end
  end
  -- keep_first: only the first write of an id counts (the buffered one, or the first in the batch)
  if not (keep_first and (olds[k] or taken[k])) then
    local len = #ARGV[first + 1 + i * 4]
    added = added + len - lens[k]
    lens[k] = len
    taken[k] = true
  end
end
if added > 0 and bytes + added > tonumber(ARGV[6]) then return {-4, bytes} end
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
-- strictly increasing: two adds never share an acceptance time, so the database's guard orders the
-- writes of an id even when they sit in two shards (a task that moved to another session's shard)
local last = redis.call('GET', KEYS[4])
if last and tonumber(last) >= tonumber(now) then now = string.format('%d', tonumber(last) + 1) end
redis.call('SET', KEYS[4], now)
local seq = redis.call('INCRBY', KEYS[1], n) - n
local failures = redis.call('EXISTS', KEYS[5]) == 1
for i = 0, n - 1 do
  local id = ARGV[first + i * 4]
  local sid = ARGV[first + 2 + i * 4]
  local shard = ARGV[first + 3 + i * 4]
  local k = shard .. '|' .. id
  seq = seq + 1
  local created = now
  local old = olds[k]
  if keep_first and old then
    -- an append-only collection keeps its first accepted write: this one is a resend
  else
  if old then
    local old_sid
    created, old_sid = parse(old)
    if is_tasks and old_sid ~= sid then redis.call('SREM', set_prefix .. old_sid, id) end
  end
  local value = string.format('%d', seq) .. '|' .. created .. '|' .. now .. '|' .. #sid .. '|' .. sid .. ARGV[first + 1 + i * 4]
  redis.call('HSET', hkey(coll, shard), id, value)
  olds[k] = value
  if is_tasks then
    redis.call('SADD', set_prefix .. sid, id)
  elseif is_sessions then
    redis.call('DEL', tomb_prefix .. id)
  end
  if failures then redis.call('HDEL', KEYS[5], id) end
  end
end
redis.call('INCRBY', KEYS[3], added)
local enqueue = 0
if size + n >= tonumber(ARGV[4]) and redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[5]) then enqueue = 1 end
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

# KEYS: bytes, sessions' failures, tasks' failures, then the N sessions shard hashes, then the N
# tasks shard hashes. ARGV: tombstone prefix, set prefix, tombstone seconds, keep_active ('1': skip
# a session with a buffered write of its own or of its tasks), N, then (session id, shard) pairs
# (a session's tasks are in its shard). For each session not skipped: drop its buffered writes and
# leave a "deleting" tombstone ('2'). Returns (id, tasks dropped) pairs.
_BEGIN_DELETE = (
    _PARSE
    + """
local keep_active = ARGV[4] == '1'
local nshards = tonumber(ARGV[5])
local out = {}
for i = 6, #ARGV, 2 do
  local sid = ARGV[i]
  local shard = tonumber(ARGV[i + 1])
  local sessions = KEYS[4 + shard]
  local tasks = KEYS[4 + nshards + shard]
  local set = ARGV[2] .. sid
  if not (keep_active and (redis.call('HEXISTS', sessions, sid) == 1 or redis.call('EXISTS', set) == 1)) then
    local freed = 0
    local v = redis.call('HGET', sessions, sid)
    if v then
      local _, _, len = parse(v)
      freed = len
      redis.call('HDEL', sessions, sid)
      redis.call('HDEL', KEYS[2], sid)
    end
    local ids = redis.call('SMEMBERS', set)
    for _, id in ipairs(ids) do
      local t = redis.call('HGET', tasks, id)
      if t then
        local _, _, len = parse(t)
        freed = freed + len
        redis.call('HDEL', tasks, id)
        redis.call('HDEL', KEYS[3], id)
      end
    end
    redis.call('DEL', set)
    sub_bytes(KEYS[1], freed)
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


def _parse(record_id: bytes | str, value: bytes, shard: int = 0) -> BufferedRecord:
    seq, created, updated, sid_length, rest = value.split(b"|", 4)
    return BufferedRecord(
        record_id=record_id.decode() if isinstance(record_id, bytes) else record_id,
        seq=int(seq),
        created_us=int(created),
        updated_us=int(updated),
        data=rest[int(sid_length) :],
        shard=shard,
    )


def _publish_flush(shards: int = 1) -> None:
    """Enqueue one flush task per shard, each starting at its own shard (``flush_all``'s
    ``start_shard``), so that as many Celery worker processes flush different shards at once; a
    task finding a shard's lock taken goes on to the next one."""
    try:
        from storage_backends.tasks import flush_buffer

        if shards == 1:
            flush_buffer.delay()
        else:
            for shard in range(shards):
                flush_buffer.delay(start_shard=shard)
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
    def __init__(self, url: str, prefix: str | None = None, shards: int | None = None) -> None:
        self.redis = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
        )
        self.prefix = prefix or settings.BUFFER_KEY_PREFIX
        self.shards = shards or settings.BUFFER_SHARDS
        self._add = self.redis.register_script(_ADD)
        self._remove_flushed = self.redis.register_script(_REMOVE_FLUSHED)
        self._begin_delete = self.redis.register_script(_BEGIN_DELETE)
        self._record_failures = self.redis.register_script(_RECORD_FAILURES)
        #: Flush locks this process holds but could not release (Redis was unreachable).
        self._unreleased_locks: list[redis.lock.Lock] = []

    # --- keys ----------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def _hash(self, collection: str, shard: int = 0) -> str:
        """The hash of one shard of a collection; shard 0 keeps the name of the unsharded layout."""
        return self._key(collection) if shard == 0 else self._key(f"{collection}:{shard}")

    def _hashes(self, collection: str) -> list[str]:
        return [self._hash(collection, shard) for shard in range(self.shards)]

    @functools.cached_property
    def _all_hashes(self) -> list[str]:
        """Every buffered collection's shard hashes, collection-major (the add script's KEYS)."""
        return [h for collection in catalog.buffered_collections() for h in self._hashes(collection)]

    @property
    def _set_prefix(self) -> str:
        return self._key("by_session:")

    @property
    def _tombstone_prefix(self) -> str:
        return self._key("deleted:")

    def _failures_key(self, collection: str) -> str:
        return self._key(f"failures:{collection}")

    def shard_of(self, key: str) -> int:
        return zlib.crc32(key.encode()) % self.shards if self.shards > 1 else 0

    def _shard_field(self, collection: str) -> str:
        """The field whose value a record's shard is the hash of: the parent's id, else its own."""
        declared = catalog.spec(collection)
        return declared.parent_field if declared.parent_field is not None else declared.id_field

    # --- writes --------------------------------------------------------------------------
    def add(
        self, collection: str, records: list[dict[str, Any]], *, require_parents: Collection[str] = ()
    ) -> None:
        declared = catalog.spec(collection)
        id_field = declared.id_field
        parent = catalog.parent(collection)
        parent_field = declared.parent_field if parent is not None else None
        # 't': a child collection (records name a parent: tombstones refuse them, a set per parent
        # indexes them); 's': a parent collection (a write clears its id's tombstone).
        flags = ("t" if parent_field else "") + ("s" if catalog.child(collection) else "")
        flags += "k" if declared.keep_first else ""
        order = catalog.buffered_collections()
        sharded = self.shards > 1
        shard_field = self._shard_field(collection)
        if sharded and shard_field != id_field and not declared.keep_first:
            # One write per id and batch, the batch's last (what coalescing in one shard keeps):
            # two writes of a task naming sessions of two shards would otherwise both be buffered
            # with the same acceptance time, and the database's guard could not order them.
            records = list({record[id_field]: record for record in records}.values())
        args: list[Any] = [
            settings.BUFFER_CAPACITY,
            flags or "-",
            self._set_prefix,
            settings.BUFFER_FLUSH_SIZE,
            FLUSH_DEBOUNCE_SECONDS,
            settings.BUFFER_CAPACITY_BYTES,
            self._tombstone_prefix,
            self.shards,
            order.index(collection),
            order.index(parent) if parent is not None else 0,
            len(require_parents),
        ]
        for parent_id in require_parents:
            args += [parent_id, self.shard_of(parent_id) if sharded else 0]
        for record in records:
            args += [
                record[id_field],
                encode(record),
                record[parent_field] if parent_field else "",
                self.shard_of(record[shard_field]) if sharded else 0,
            ]
        keys = [
            self._key("seq"),
            self._key("flush_requested"),
            self._key("bytes"),
            self._key("last_accepted"),
            self._failures_key(collection),
            *self._all_hashes,
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
            raise ParentsNotBuffered({sid.decode() for sid in reply[1:]})
        if status == -3:
            raise ParentsDeleted({sid.decode() for sid in reply[1:]})
        if status == -5:
            raise RecordsBeingDeleted({sid.decode() for sid in reply[1:]}, noun=declared.item_type)
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

    def begin_delete(self, collection: str, ids: Collection[str], *, keep_active: bool) -> dict[str, int]:
        child = child_of(collection)
        keys = [
            self._key("bytes"),
            self._failures_key(collection),
            self._failures_key(child),
            *self._hashes(collection),
            *self._hashes(child),
        ]
        args: list[Any] = [
            self._tombstone_prefix,
            self._set_prefix,
            settings.BUFFER_TOMBSTONE_TTL,
            "1" if keep_active else "0",
            self.shards,
        ]
        for record_id in ids:
            args += [record_id, self.shard_of(record_id)]
        reply = self._call(self._begin_delete, keys, args)
        return {reply[i].decode(): int(reply[i + 1]) for i in range(0, len(reply), 2)}

    def end_delete(self, collection: str, ids: Collection[str], *, deleted: bool) -> None:
        child_of(collection)
        pipe = self.redis.pipeline(transaction=False)
        for record_id in ids:
            key = self._tombstone_prefix + record_id
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
        if self.shards == 1:
            values = self._call(self.redis.hmget, self._hash(collection), ids)
            return {
                i: decode(collection, _parse(i, v)) for i, v in zip(ids, values, strict=True) if v is not None
            }
        found = self._get_entries(collection, ids)
        return {i: decode(collection, entry) for i, entry in found.items()}

    def _get_entries(self, collection: str, ids: list[str]) -> dict[str, BufferedRecord]:
        """The buffered entries of ``ids`` (sharded buffer), in one round trip. A record sharded by
        its own id is looked up in its shard; one sharded by its parent (a task: the session
        is not known from the id) in every shard, the newest write (highest seq) winning."""
        pipe = self.redis.pipeline(transaction=False)
        if catalog.spec(collection).parent_field is None:
            by_shard: dict[int, list[str]] = {}
            for record_id in ids:
                by_shard.setdefault(self.shard_of(record_id), []).append(record_id)
            plan = list(by_shard.items())
        else:
            plan = [(shard, ids) for shard in range(self.shards)]
        for shard, shard_ids in plan:
            pipe.hmget(self._hash(collection, shard), shard_ids)
        found: dict[str, BufferedRecord] = {}
        for (shard, shard_ids), values in zip(plan, self._call(pipe.execute), strict=True):
            for record_id, value in zip(shard_ids, values, strict=True):
                if value is None:
                    continue
                entry = _parse(record_id, value, shard)
                known = found.get(record_id)
                if known is None or entry.seq > known.seq:
                    found[record_id] = entry
        return found

    def records(self, collection: str) -> Iterator[dict[str, Any]]:
        if self.shards == 1 or catalog.spec(collection).parent_field is None:
            for chunk in self.scan(collection, 1000):
                for entry in chunk:
                    yield decode(collection, entry)
            return
        # A task that moved to a session of another shard may have an older write left in its old
        # shard: the newest (highest seq) of each id is the buffered record.
        newest: dict[str, BufferedRecord] = {}
        for chunk in self.scan(collection, 1000):
            for entry in chunk:
                known = newest.get(entry.record_id)
                if known is None or entry.seq > known.seq:
                    newest[entry.record_id] = entry
        for entry in newest.values():
            yield decode(collection, entry)

    def children(self, collection: str, parent_id: str) -> list[dict[str, Any]]:
        child = child_of(collection)
        parent_field = catalog.spec(child).parent_field
        assert parent_field is not None  # a child names its parent_field (catalog.declare)
        ids = [i.decode() for i in self._call(self.redis.smembers, self._set_prefix + parent_id)]
        records = self.get_many(child, ids).values()
        # (sharded) a task whose newest write moved it to another session is not this session's
        return [record for record in records if record[parent_field] == parent_id]

    # --- the flusher's side ----------------------------------------------------------------
    def scan(
        self, collection: str, chunk_size: int, shard: int | None = None
    ) -> Iterator[list[BufferedRecord]]:
        shards = range(self.shards) if shard is None else [shard]
        chunk: list[BufferedRecord] = []
        try:
            for current in shards:
                hash_key = self._hash(collection, current)
                for record_id, value in self.redis.hscan_iter(hash_key, count=chunk_size):
                    chunk.append(_parse(record_id, value, current))
                    if len(chunk) >= chunk_size:
                        yield chunk
                        chunk = []
        except redis.RedisError as exc:
            raise StorageUnavailable("The buffer store (Redis) is unreachable.") from exc
        if chunk:
            yield chunk

    @staticmethod
    def _by_shard(entries: list[BufferedRecord]) -> dict[int, list[BufferedRecord]]:
        groups: dict[int, list[BufferedRecord]] = {}
        for entry in entries:
            groups.setdefault(entry.shard, []).append(entry)
        return groups

    def remove_flushed(self, collection: str, entries: list[BufferedRecord]) -> int:
        prefix_args = ["1" if catalog.parent(collection) else "0", self._set_prefix]
        removed = 0
        for shard, group in self._by_shard(entries).items():
            keys = [self._hash(collection, shard), self._key("bytes"), self._failures_key(collection)]
            for start in range(0, len(group), REMOVE_SLICE):
                args: list[Any] = list(prefix_args)
                for entry in group[start : start + REMOVE_SLICE]:
                    args += [entry.record_id, entry.seq]
                removed += int(self._call(self._remove_flushed, keys, args))
        return removed

    def record_failures(self, collection: str, entries: list[BufferedRecord]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for shard, group in self._by_shard(entries).items():
            args: list[Any] = []
            for entry in group:
                args += [entry.record_id, entry.seq]
            keys = [self._hash(collection, shard), self._failures_key(collection)]
            replies = self._call(self._record_failures, keys, args)
            counts.update({entry.record_id: int(n) for entry, n in zip(group, replies, strict=True)})
        return {entry.record_id: counts[entry.record_id] for entry in entries}

    def retrying_count(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for collection in catalog.buffered_collections():
            pipe.hlen(self._failures_key(collection))
        return sum(int(n) for n in self._call(pipe.execute))

    def flush_lock(self, collection: str, wait: float, shard: int = 0) -> _RedisFlushLock | None:
        self._release_unreleased_locks()
        name = f"lock:{collection}" if shard == 0 else f"lock:{collection}:{shard}"
        lock = self.redis.lock(
            self._key(name),
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

    def _enqueue_flush(self) -> None:
        # Off the request's path: publishing to the broker costs a millisecond or more (tens when
        # its connection is new), which would show in the p99 of the batch endpoints.
        # The publish runs in the caller's trace context, so the flush task continues the request's trace.
        _ENQUEUER.submit(tracing.in_current_context(functools.partial(_publish_flush, self.shards)))

    # --- state ---------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def counts(self) -> dict[str, int]:
        by_shard = self.counts_by_shard()
        return {c: sum(shard[c] for shard in by_shard) for c in catalog.buffered_collections()}

    def counts_by_shard(self) -> list[dict[str, int]]:
        collections = catalog.buffered_collections()
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(self.shards):
            for collection in collections:
                pipe.hlen(self._hash(collection, shard))
        lengths = iter(self._call(pipe.execute))
        return [{c: int(next(lengths)) for c in collections} for _ in range(self.shards)]

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
