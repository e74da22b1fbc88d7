"""The shared store: every worker (and host) of a fake pointing at one Redis sees the same state.

Keys, under a prefix (``wsm:`` unless told; two fakes can share one Redis database with different prefixes):

- ``r:{kind}:{key}``: a record, ``tenant + "\\x00" + json``, with a PX TTL;
- ``k:{kind}`` / ``t:{kind}:{tenant}``: sorted sets listing a kind's records (all / one tenant's) by a sequence
  number from ``seq:{kind}`` (INCR), so ``records()`` reads oldest first; ``kinds``: the set of kinds;
- ``l:{log}``: a list of ``tenant + "\\x00" + json`` entries; ``lm:{log}``: its ``seq``, ``size`` and ``dropped``;
  ``logs``: the set of logs;
- ``c:{tenant}``: a hash of the tenant's counters (so forgetting a tenant's counters is one DEL);
- ``claim:{name}``: SET NX PX; ``b:{key}``: a blob, a hash of ``mime`` and ``data``;
- ``version``: the server-wide state's version (``version()``); ``expiring``: a sorted set of the server-wide
  records by when they expire.

Every key carries a TTL unless a record was written with ``ttl=0`` (or the limits say 0): indexes live as long
as the longest-lived record written into them, and are pruned lazily (a member whose record is gone is dropped
the next time the index is listed). ``version`` and ``expiring`` have none: a counter that expired would start
again at a number some worker may still hold, and each is one small key per prefix.

Multi-key steps run as Lua scripts (atomic, one round trip); ``update`` reads, changes and writes back with a
compare-and-set script, and changes again what it finds when another writer (or the record's expiry) got there
first: two round trips, where WATCH/GET/MULTI-EXEC takes three, and one when it starts from the value this process
last wrote and nobody wrote since. Scripts derive some key names themselves (a
record's old tenant index, an evicted record), so this store targets a standalone Redis 7+ (or one primary), not
Redis Cluster. Kind names must not contain ``:``; tenant names and keys must not contain NUL.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, cast

import redis
from redis.commands.core import Script

from mock_server.model.store.base import (
    DAY,
    DELETE,
    PERSISTENT_KINDS,
    SERVER_KINDS,
    Change,
    Limits,
    Record,
    current_pin,
    dumps,
    loads,
)

# Shared by the scripts below: a record's owner is everything before the first NUL of its stored value.
_OWNER = """
local function owner(v)
  return string.sub(v, 1, string.find(v, '\\0', 1, true) - 1)
end
"""

# An index that outlives its records costs a little memory until it expires (listing prunes dead members), but
# one that expires first hides live records. So an index's TTL only grows, to the longest TTL written into it
# (PEXPIRE GT, Redis 7), and a record written without TTL makes it permanent. GT counts "no TTL" as infinite: right
# for a key made permanent on purpose, wrong for one this write just created, hence `fresh`.
_STRETCH = """
local function stretch(key, ms, fresh)
  if ms == 0 then
    redis.call('PERSIST', key)
  elseif fresh then
    redis.call('PEXPIRE', key, ms)
  else
    redis.call('PEXPIRE', key, ms, 'GT')
  end
end
"""

# The version of the server-wide state (``version()``): a counter every write of a SERVER_KINDS record moves in the
# same script. A counter that went missing (a flushed database) restarts at the time in microseconds, beyond any
# number a worker may still hold from before. TIME gives strings; the concatenation keeps every digit.
_BUMP = """
local function bump(key)
  if redis.call('EXISTS', key) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return redis.call('INCR', key)
end
"""

# A server-wide record's expiry is a change too, which nothing in Redis announces: each such record is listed by
# when it expires (ms, the same clock Redis expires keys by), and ``version()`` moves the counter once one of them
# is past. A record deleted before its time keeps its entry, which moves the counter once more then: harmless.
# KEYS: the counter, that list. Returns the counter.
_VERSION = (
    _BUMP
    + """
local counter, expiring = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local first = redis.call('ZRANGE', expiring, 0, 0, 'WITHSCORES')
-- Strictly past, as Redis has it (a key expires once the time is beyond its deadline): moved any earlier, the
-- counter could be read again before the record is gone, and what is read then kept after it went.
if first[2] and tonumber(first[2]) < now then
  redis.call('ZREMRANGEBYSCORE', expiring, '-inf', '(' .. now)
  return bump(counter)
end
local n = redis.call('GET', counter)
if not n then return bump(counter) end
return tonumber(n)
"""
)

# put and add. KEYS: record, kind index, tenant index, kind sequence, kinds set, version counter, expiry list.
# ARGV: stored value, ttl ms (0: none), "1" for add (only when free), max records, kind, key, record key base,
# tenant index base, "1" for a server-wide kind. Returns 1 when written, 0 when add found the key taken.
_PUT = (
    _OWNER
    + _STRETCH
    + _BUMP
    + """
local rec, all, mine, seqkey, kinds = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local value, ms, only_new, max = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1', tonumber(ARGV[4])
local kind, member, rbase, tbase = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local old = redis.call('GET', rec)
if old then
  if only_new then return 0 end
  -- A replaced record may change hands: its old owner's index must not keep listing it.
  local was = tbase .. owner(old)
  if was ~= mine then redis.call('ZREM', was, member) end
end
if ms > 0 then
  redis.call('SET', rec, value, 'PX', ms)
else
  redis.call('SET', rec, value)
end

-- Scores must keep rising for "oldest first" to hold. The sequence key lives as long as the kind index, but if it
-- ever went missing while the index survived, restarting at 1 would list new records before old ones.
local fresh_all, fresh_mine = redis.call('EXISTS', all) == 0, redis.call('EXISTS', mine) == 0
local fresh_kinds = redis.call('EXISTS', kinds) == 0
local seq = redis.call('INCR', seqkey)
local fresh_seq = seq == 1
local top = redis.call('ZRANGE', all, -1, -1, 'WITHSCORES')
if top[2] and seq <= tonumber(top[2]) then
  seq = tonumber(top[2]) + 1
  redis.call('SET', seqkey, seq, 'KEEPTTL')
end
redis.call('ZADD', all, seq, member)
redis.call('ZADD', mine, seq, member)
redis.call('SADD', kinds, kind)
stretch(all, ms, fresh_all)
stretch(mine, ms, fresh_mine)
stretch(seqkey, ms, fresh_seq)
stretch(kinds, ms, fresh_kinds)

-- Cap the kind: the lowest scores are the oldest writes. A member whose record already expired still counts
-- until popped here, which only makes the cap evict dead records first.
while redis.call('ZCARD', all) > max do
  local gone = redis.call('ZPOPMIN', all)[1]
  local v = redis.call('GET', rbase .. gone)
  if v then
    redis.call('DEL', rbase .. gone)
    redis.call('ZREM', tbase .. owner(v), gone)
  end
end
if ARGV[9] == '1' then
  bump(KEYS[6])
  if ms > 0 then
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[7], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ms, rec)
  else
    redis.call('ZREM', KEYS[7], rec)
  end
end
return 1
"""
)

# update's write: compare-and-set. KEYS: record, kind index, tenant index, version counter. ARGV: the stored value
# the change was computed from, the new value ("" with ARGV[3] == "1": delete), the delete flag, key, "1" for a
# server-wide kind. Returns {1} when written, else {0, current value} (nil: gone), which the caller changes again
# without another read.
_SWAP = (
    _BUMP
    + """
local rec, all, mine = KEYS[1], KEYS[2], KEYS[3]
local current = redis.call('GET', rec)
if current ~= ARGV[1] then return {0, current} end
if ARGV[3] == '1' then
  redis.call('DEL', rec)
  redis.call('ZREM', all, ARGV[4])
  redis.call('ZREM', mine, ARGV[4])
else
  redis.call('SET', rec, ARGV[2], 'KEEPTTL')
end
if ARGV[5] == '1' then bump(KEYS[4]) end
return {1}
"""
)

# KEYS: the index to list, the kind index. ARGV: record key base, "1" when KEYS[1] is a tenant's index, tenant.
# Listing and pruning happen in one script so a record re-created between the read and the ZREM cannot lose its
# fresh index entry. Returns the stored values, oldest first.
_RECORDS = """
local index, all = KEYS[1], KEYS[2]
local rbase, of_tenant, mark = ARGV[1], ARGV[2] == '1', ARGV[3] .. '\\0'
local members = redis.call('ZRANGE', index, 0, -1)
local out = {}
-- MGET in slices: unpack() of a whole large kind could exceed Lua's C stack.
for i = 1, #members, 500 do
  local keys = {}
  for j = i, math.min(i + 499, #members) do keys[#keys + 1] = rbase .. members[j] end
  local values = redis.call('MGET', unpack(keys))
  for j = 1, #keys do
    local member, v = members[i + j - 1], values[j]
    if not v then
      redis.call('ZREM', index, member)
      if of_tenant then redis.call('ZREM', all, member) end
    elseif of_tenant and string.sub(v, 1, #mark) ~= mark then
      -- The key expired and was re-created by another tenant: only this tenant's index entry is stale.
      redis.call('ZREM', index, member)
    else
      out[#out + 1] = v
    end
  end
end
return out
"""

# KEYS: record, kind index, version counter. ARGV: tenant index base, key, "1" for a server-wide kind. Needs the
# stored owner to find the tenant index, hence a script rather than a pipeline. Returns 1 when a record was removed.
_DELETE = (
    _OWNER
    + _BUMP
    + """
local v = redis.call('GET', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if not v then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. owner(v), ARGV[2])
if ARGV[3] == '1' then bump(KEYS[3]) end
return 1
"""
)

# KEYS: log list, log meta hash, logs set. ARGV: tenant, entry JSON without "seq", max entries, max bytes,
# ttl ms (0: none), log name. Returns the entry's seq.
_APPEND = (
    _STRETCH
    + """
local list, meta, logs = KEYS[1], KEYS[2], KEYS[3]
local tenant, json, max_entries, max_bytes = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ms, name = tonumber(ARGV[5]), ARGV[6]

local seq = redis.call('HINCRBY', meta, 'seq', 1)
-- The number is only known here, so it is spliced into the caller's JSON object (which never holds "seq")
-- instead of decoding and re-encoding the entry with cjson.
local body
if json == '{}' then
  body = '{"seq":' .. seq .. '}'
else
  body = string.sub(json, 1, -2) .. ',"seq":' .. seq .. '}'
end
redis.call('RPUSH', list, tenant .. '\\0' .. body)

-- Bytes count the JSON only (not the tenant mark), as the memory store does, so caps cut at the same entry.
local size = tonumber(redis.call('HGET', meta, 'size') or '0') + #body
local n = redis.call('LLEN', list)
local dropped = 0
while n > 0 and (n > max_entries or size > max_bytes) do
  local gone = redis.call('LPOP', list)
  size = size - (#gone - string.find(gone, '\\0', 1, true))
  n = n - 1
  dropped = dropped + 1
end
redis.call('HSET', meta, 'size', size)
if dropped > 0 then redis.call('HINCRBY', meta, 'dropped', dropped) end

-- A log lives while it is written to; every entry shares that lifetime, so its TTL is simply renewed.
local fresh_logs = redis.call('EXISTS', logs) == 0
redis.call('SADD', logs, name)
stretch(logs, ms, fresh_logs)
for _, key in ipairs({list, meta}) do
  if ms > 0 then redis.call('PEXPIRE', key, ms) else redis.call('PERSIST', key) end
end
return seq
"""
)

# Lists have no "remove where": a log loses a tenant's entries by being rewritten (linear, and the log is capped);
# seq and dropped stay as they were. Shared by the tenant reset and the one-log reset below.
_DROP_TENANT = """
local function drop_tenant(list, meta, mark)
  local entries = redis.call('LRANGE', list, 0, -1)
  local kept, size = {}, 0
  for _, e in ipairs(entries) do
    if string.sub(e, 1, #mark) ~= mark then
      kept[#kept + 1] = e
      size = size + #e - string.find(e, '\\0', 1, true)
    end
  end
  if #kept < #entries then
    local ttl = redis.call('PTTL', list)
    redis.call('DEL', list)
    for i = 1, #kept, 500 do
      redis.call('RPUSH', list, unpack(kept, i, math.min(i + 499, #kept)))
    end
    if #kept > 0 and ttl > 0 then redis.call('PEXPIRE', list, ttl) end
    redis.call('HSET', meta, 'size', size)
  end
  return #entries - #kept
end
"""

_RESET_TENANT = (
    _OWNER
    + _DROP_TENANT
    + _BUMP
    + """
local prefix, tenant = ARGV[1], ARGV[2]
local mark = tenant .. '\\0'
local removed = 0
for _, kind in ipairs(redis.call('SMEMBERS', prefix .. 'kinds')) do
  local all, mine = prefix .. 'k:' .. kind, prefix .. 't:' .. kind .. ':' .. tenant
  for _, member in ipairs(redis.call('ZRANGE', mine, 0, -1)) do
    local rec = prefix .. 'r:' .. kind .. ':' .. member
    local v = redis.call('GET', rec)
    if not v then
      redis.call('ZREM', all, member)
    elseif owner(v) == tenant then
      -- Stale members (the key now belongs to another tenant) are skipped: that record is not ours to remove.
      redis.call('DEL', rec)
      redis.call('ZREM', all, member)
      removed = removed + 1
    end
  end
  redis.call('DEL', mine)
end

for _, name in ipairs(redis.call('SMEMBERS', prefix .. 'logs')) do
  drop_tenant(prefix .. 'l:' .. name, prefix .. 'lm:' .. name, mark)
end

redis.call('DEL', prefix .. 'c:' .. tenant)
bump(prefix .. 'version')  -- the tenant's faults and rules may be among what went
return removed
"""
)

# KEYS: the log's list and meta hash. ARGV: tenant ("" with ARGV[2] == "all": every entry). Seq and dropped stay.
_RESET_LOG = (
    _DROP_TENANT
    + """
local list, meta, tenant, all = KEYS[1], KEYS[2], ARGV[1], ARGV[2] == 'all'
if all then
  redis.call('DEL', list)
  redis.call('HSET', meta, 'size', 0)
  return 0
end
return drop_tenant(list, meta, tenant .. '\\0')
"""
)


# Records whose last written value a process remembers for ``update`` (a few KB each at most: a poll log is capped).
_REMEMBERED = 1024


def _ms(seconds: float) -> int:
    """Milliseconds for a PX/PEXPIRE; 0 means "no expiry" (a negative TTL becomes the shortest, as memory has it)."""
    return 0 if seconds == 0 else max(1, int(seconds * 1000))


def _split(stored: bytes) -> tuple[bytes, bytes]:
    tenant, _, raw = stored.partition(b"\x00")
    return tenant, raw


def _unpin() -> None:
    """After this process wrote server-wide state: the request's next reader asks Redis for the version again, and
    so reads what was just written."""
    pin = current_pin()
    if pin is not None:
        pin.version = None


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisStore:
    scheme: ClassVar[str] = "redis"
    shared: ClassVar[bool] = True

    def __init__(self, url: str, limits: Limits | None = None, *, prefix: str = "wsm:") -> None:
        self.limits = limits or Limits()
        self.prefix = prefix
        # One client, one thread-safe connection pool: every call borrows a connection for its round trip, so the
        # event loop thread and test threads can share the store. hiredis parses replies when installed. RESP2 is
        # pinned so reply shapes (and the scripts' view of them) do not depend on the client's default.
        self._redis: redis.Redis = redis.Redis.from_url(url, protocol=2)
        self._put = self._script(_PUT)
        self._records = self._script(_RECORDS)
        self._delete = self._script(_DELETE)
        self._swap = self._script(_SWAP)
        self._append = self._script(_APPEND)
        self._reset_tenant = self._script(_RESET_TENANT)
        self._reset_log = self._script(_RESET_LOG)
        self._version = self._script(_VERSION)
        self._bump = self._script(_BUMP + "return bump(KEYS[1])")
        self._counter, self._expiring = f"{prefix}version", f"{prefix}expiring"
        # What this process last wrote of a record (or found when its compare-and-set lost), as stored: ``update``
        # computes its change from that and lets the compare-and-set check it, one round trip where reading first
        # makes two, as long as no other worker wrote the record since. A poll is such an update.
        self._last: dict[str, bytes] = {}
        self._last_lock = threading.Lock()

    def _script(self, source: str) -> Script:
        return self._redis.register_script(source)

    # --- keys ---------------------------------------------------------------------------------------------

    def _rec(self, kind: str, key: str) -> str:
        return f"{self.prefix}r:{kind}:{key}"

    def _all(self, kind: str) -> str:
        return f"{self.prefix}k:{kind}"

    def _mine(self, kind: str, tenant: str) -> str:
        return f"{self.prefix}t:{kind}:{tenant}"

    # --- records ------------------------------------------------------------------------------------------

    def _write(self, kind: str, key: str, record: Record, tenant: str, ttl: float | None, only_new: bool) -> bool:
        ms = _ms(self.limits.record_ttl if ttl is None else ttl)
        p = self.prefix
        server = kind in SERVER_KINDS
        rec, value = self._rec(kind, key), tenant.encode() + b"\x00" + dumps(record)
        written = self._put(
            keys=[
                rec,
                self._all(kind),
                self._mine(kind, tenant),
                f"{p}seq:{kind}",
                f"{p}kinds",
                self._counter,
                self._expiring,
            ],
            args=[
                value,
                ms,
                int(only_new),
                self.limits.max_records,
                kind,
                key,
                f"{p}r:{kind}:",
                f"{p}t:{kind}:",
                int(server),
            ],
        )
        if written:
            self._remember(rec, value)
            if server:
                _unpin()
        return bool(written)

    def put(self, kind: str, key: str, record: Record, *, tenant: str = "", ttl: float | None = None) -> None:
        self._write(kind, key, record, tenant, ttl, only_new=False)

    def add(self, kind: str, key: str, record: Record, *, tenant: str = "", ttl: float | None = None) -> bool:
        return self._write(kind, key, record, tenant, ttl, only_new=True)

    def _stored(self, kind: str, key: str) -> tuple[bytes, bytes] | None:
        stored = cast("bytes | None", self._redis.get(self._rec(kind, key)))
        return None if stored is None else _split(stored)

    def get(self, kind: str, key: str) -> Record | None:
        found = self._stored(kind, key)
        return None if found is None else cast(Record, loads(found[1]))

    def get_many(self, kind: str, keys: list[str]) -> list[Record | None]:
        if not keys:
            return []
        stored = cast("list[bytes | None]", self._redis.mget([self._rec(kind, key) for key in keys]))
        return [None if raw is None else cast(Record, loads(_split(raw)[1])) for raw in stored]

    def owner(self, kind: str, key: str) -> str | None:
        found = self._stored(kind, key)
        return None if found is None else found[0].decode()

    def update(self, kind: str, key: str, change: Change, *, tenant: str | None = None) -> Record | None:
        rec = self._rec(kind, key)
        stored = self._recall(rec)
        # Only an answer the compare-and-set checked may rest on what this process remembers: when there is none to
        # check (not the owner, left unchanged), Redis is read first.
        known = stored is None
        if known:
            stored = cast("bytes | None", self._redis.get(rec))
        while stored is not None:
            owner, raw = _split(stored)
            if tenant is not None and owner != tenant.encode():
                if not known:
                    stored, known = cast("bytes | None", self._redis.get(rec)), True
                    continue
                return None
            result = change(loads(raw))
            if result is None:
                if not known:
                    stored, known = cast("bytes | None", self._redis.get(rec)), True
                    continue
                return cast(Record, loads(raw))
            if result is DELETE:
                new, deleting = b"", True
            else:
                assert isinstance(result, dict)
                raw = dumps(result)
                new, deleting = owner + b"\x00" + raw, False
            server = kind in SERVER_KINDS
            written = cast(
                "list[Any]",
                self._swap(
                    keys=[rec, self._all(kind), self._mine(kind, owner.decode()), self._counter],
                    args=[stored, new, int(deleting), key, int(server)],
                ),
            )
            if written[0] == 1:
                if not deleting:
                    self._remember(rec, new)
                if server:
                    _unpin()
                return None if deleting else cast(Record, result)
            stored = written[1] if len(written) > 1 else None  # another writer's value: change that instead
            known = True
        return None

    def _remember(self, rec: str, stored: bytes) -> None:
        with self._last_lock:
            last = self._last
            last.pop(rec, None)
            last[rec] = stored
            if len(last) > _REMEMBERED:
                del last[next(iter(last))]

    def _recall(self, rec: str) -> bytes | None:
        """What this process last wrote of ``rec``, forgotten as it is handed out: whoever uses it writes anew."""
        with self._last_lock:
            return self._last.pop(rec, None)

    def delete(self, kind: str, key: str) -> bool:
        self._recall(self._rec(kind, key))  # forgotten: nothing is left to remember
        server = kind in SERVER_KINDS
        removed = bool(
            self._delete(
                keys=[self._rec(kind, key), self._all(kind), self._counter],
                args=[f"{self.prefix}t:{kind}:", key, int(server)],
            )
        )
        if server and removed:
            _unpin()
        return removed

    def records(self, kind: str, tenant: str | None = None) -> list[Record]:
        index = self._all(kind) if tenant is None else self._mine(kind, tenant)
        stored = cast(
            "list[bytes]",
            self._records(
                keys=[index, self._all(kind)],
                args=[f"{self.prefix}r:{kind}:", "0" if tenant is None else "1", tenant or ""],
            ),
        )
        return [cast(Record, loads(_split(s)[1])) for s in stored]

    # --- logs ---------------------------------------------------------------------------------------------

    def append(self, log: str, entry: Record, *, tenant: str = "") -> int:
        body = {k: v for k, v in entry.items() if k != "seq"} if "seq" in entry else entry
        p = self.prefix
        seq = self._append(
            keys=[f"{p}l:{log}", f"{p}lm:{log}", f"{p}logs"],
            args=[
                tenant,
                dumps(body),
                self.limits.log_entries,
                self.limits.log_bytes,
                _ms(self.limits.record_ttl),
                log,
            ],
        )
        return int(seq)

    def entries(self, log: str, tenant: str | None = None) -> list[Record]:
        stored = cast("list[bytes]", self._redis.lrange(f"{self.prefix}l:{log}", 0, -1))
        if tenant is None:
            return [cast(Record, loads(_split(s)[1])) for s in stored]
        mark = tenant.encode() + b"\x00"
        return [cast(Record, loads(s[len(mark) :])) for s in stored if s.startswith(mark)]

    def dropped(self, log: str) -> int:
        return int(cast("bytes | None", self._redis.hget(f"{self.prefix}lm:{log}", "dropped")) or 0)

    def reset_log(self, log: str, tenant: str | None = None) -> None:
        self._reset_log(
            keys=[f"{self.prefix}l:{log}", f"{self.prefix}lm:{log}"],
            args=[tenant or "", "all" if tenant is None else "one"],
        )

    # --- counters and claims ------------------------------------------------------------------------------

    def incr(self, name: str, amount: float = 1.0, *, tenant: str = "") -> float:
        counters = f"{self.prefix}c:{tenant}"
        ms = _ms(self.limits.record_ttl)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrbyfloat(counters, name, amount)
            if ms:
                pipe.pexpire(counters, ms)
            value = pipe.execute()[0]
        return float(value)

    def counter(self, name: str, *, tenant: str = "") -> float:
        value = cast("bytes | None", self._redis.hget(f"{self.prefix}c:{tenant}", name))
        return 0.0 if value is None else float(value)

    def claim(self, name: str, ttl: float = DAY) -> bool:
        return bool(self._redis.set(f"{self.prefix}claim:{name}", 1, nx=True, px=max(1, int(ttl * 1000))))

    # --- blobs --------------------------------------------------------------------------------------------

    def put_blob(self, key: str, mime: str, data: bytes) -> None:
        blob = f"{self.prefix}b:{key}"
        ms = _ms(self.limits.blob_ttl)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(blob, mapping={"mime": mime, "data": data})
            if ms:
                pipe.pexpire(blob, ms)
            else:
                pipe.persist(blob)
            pipe.execute()

    def get_blob(self, key: str) -> tuple[str, bytes] | None:
        mime, data = cast("list[bytes | None]", self._redis.hmget(f"{self.prefix}b:{key}", ["mime", "data"]))
        if mime is None or data is None:
            return None
        return mime.decode(), data

    # --- housekeeping -------------------------------------------------------------------------------------

    def version(self) -> int:
        # Other workers and hosts write this store, so the number lives in Redis: one round trip, where the readers
        # it spares make one each. A request pins it (``pin_version``): its several readers ask Redis once.
        pin = current_pin()
        if pin is None:
            return self._read_version()
        if pin.version is None:
            pin.version = self._read_version()
        return pin.version

    def _read_version(self) -> int:
        return int(self._version(keys=[self._counter, self._expiring]))

    def reset(self, tenant: str | None = None) -> int:
        _unpin()
        if tenant is not None:
            return int(self._reset_tenant(args=[self.prefix, tenant]))
        # Everything under the prefix, in batches: not atomic against concurrent writers (a key written during the
        # scan may survive), which is what "reset everything" needs from a test or an operator.
        records = f"{self.prefix}r:".encode()
        p = self.prefix
        kept = tuple(f"{p}{part}{kind}".encode() for kind in PERSISTENT_KINDS for part in ("r:", "k:", "t:", "seq:"))
        # The counter must only grow; the expiry list still lists the kept records (and a gone one only moves the
        # counter once more, later).
        kept += (self._counter.encode(), self._expiring.encode())
        removed = 0
        batch: list[bytes] = []
        for key in cast("Any", self._redis.scan_iter(match=_glob_escape(self.prefix) + "*", count=1000)):
            if key.startswith(kept) or key == f"{p}kinds".encode():
                continue
            batch.append(key)
            removed += key.startswith(records)
            if len(batch) >= 1000:
                self._redis.unlink(*batch)
                batch.clear()
        if batch:
            self._redis.unlink(*batch)
        self._bump(keys=[self._counter])
        return removed

    def stats(self) -> dict[str, Any]:
        """Index sizes (a record that expired counts until the next listing of its kind prunes it)."""
        p = self.prefix
        kinds = sorted(k.decode() for k in cast("set[bytes]", self._redis.smembers(f"{p}kinds")))
        logs = sorted(k.decode() for k in cast("set[bytes]", self._redis.smembers(f"{p}logs")))
        with self._redis.pipeline(transaction=False) as pipe:
            for kind in kinds:
                pipe.zcard(self._all(kind))
            for log in logs:
                pipe.llen(f"{p}l:{log}")
                pipe.hget(f"{p}lm:{log}", "size")
            replies = pipe.execute()
        counts, sizes = replies[: len(kinds)], replies[len(kinds) :]
        memory = self._redis.info("memory")
        return {
            "records": dict(zip(kinds, (int(n) for n in counts), strict=True)),
            "log_entries": {log: int(sizes[2 * i]) for i, log in enumerate(logs)},
            "log_bytes": {log: int(sizes[2 * i + 1] or 0) for i, log in enumerate(logs)},
            "used_memory": int(memory["used_memory"]),
            "db_keys": int(self._redis.dbsize()),
        }  # the whole database, whatever the prefix

    def close(self) -> None:
        self._redis.close()
