"""The default store: one process's memory, behind one lock (the server's event loop and test threads share it).

Records are kept serialized, exactly as Redis keeps them, so no caller can change stored state by editing what it
was handed, and both stores behave the same under the one behavioural test suite.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, ClassVar, Final, cast

from mock_server.model.store.base import DELETE, PERSISTENT_KINDS, SERVER_KINDS, Change, Limits, Record, dumps, loads

# One record as the store's methods read it: (tenant, expires at (0: never), serialized record, its insertion's
# stamp). A Table keeps it as one bytes value (see Table).
_Slot = tuple[str, float, bytes, int]
TENANT: Final = 0
EXPIRES: Final = 1
RAW: Final = 2
STAMP: Final = 3
SHARDS: Final = 64
CHUNK: Final = 1024  # order entries per frozen chunk
_HEAD: Final = struct.Struct("<dQI")  # expires, stamp, length of the tenant's UTF-8


def _pack(tenant: str, expires: float, stamp: int, raw: bytes) -> bytes:
    name = tenant.encode()
    return _HEAD.pack(expires, stamp, len(name)) + name + raw


def _unpack(blob: bytes) -> _Slot:
    expires, stamp, length = _HEAD.unpack_from(blob)
    start = _HEAD.size + length
    return blob[_HEAD.size : start].decode(), expires, blob[start:], stamp


class Table:
    """One kind's records, found by key in one of 64 dicts (by the key's hash) and kept in insertion order by
    (key, stamp) entries, one per insertion.

    Two stalls are kept out of it, both measured with 300,000 records:
    - One dict holding every record is copied whole when it grows, every request waiting behind the copy: an
      OrderedDict took 60 ms to double, a plain dict 21 ms. A shard grows at a 64th of the size.
    - A full garbage collection walks every container it tracks: 33-47 ms when each record was a tuple, which is
      tracked when made, so that every insert made its dict tracked again. A record is one bytes value here, so the
      dicts are never tracked; the order entries are frozen, CHUNK at a time, into tuples of strings and ints,
      which the collector stops tracking at its next pass.

    An order entry whose key has since been deleted, or inserted again, is stale: it is skipped where it is met,
    and the entries are rebuilt without the stale ones once those outnumber the records."""

    __slots__ = ("_shards", "_chunks", "_tail", "_head", "_entries", "_stamp", "size", "sweep_at")

    def __init__(self) -> None:
        self._shards: list[dict[str, bytes]] = [{} for _ in range(SHARDS)]
        self._chunks: deque[tuple[str | int, ...]] = deque()  # frozen order entries: key, stamp, key, stamp, ...
        self._tail: list[str | int] = []  # the newest entries, frozen into a chunk when CHUNK long
        self._head = 0  # where the oldest entry not yet passed starts in the first chunk
        self._entries = 0  # order entries not yet passed, stale ones included
        self._stamp = 0
        self.size = 0
        self.sweep_at = math.inf  # no record expires before this: until then an insert need not look at the oldest

    def __len__(self) -> int:
        return self.size

    def get(self, key: str) -> _Slot | None:
        blob = self._shards[hash(key) % SHARDS].get(key)
        return None if blob is None else _unpack(blob)

    def insert(self, key: str, tenant: str, expires: float, raw: bytes) -> None:
        """Add ``key``'s record, or replace it: either way it becomes the newest."""
        shard = self._shards[hash(key) % SHARDS]
        self._stamp += 1
        if shard.pop(key, None) is None:
            self.size += 1
        shard[key] = _pack(tenant, expires, self._stamp, raw)
        if expires and expires < self.sweep_at:
            self.sweep_at = expires
        self._tail += (key, self._stamp)
        if len(self._tail) >= 2 * CHUNK:
            self._chunks.append(tuple(self._tail))
            self._tail.clear()
        self._entries += 1
        if self._entries > 2 * self.size + 64:
            self._rebuild(self.items())

    def rewrite(self, key: str, raw: bytes) -> None:
        """Change the record of a present ``key`` in place: it keeps its tenant, expiry and place."""
        shard = self._shards[hash(key) % SHARDS]
        blob = shard[key]
        shard[key] = blob[: _HEAD.size + _HEAD.unpack_from(blob)[2]] + raw

    def pop(self, key: str) -> bool:
        """Remove ``key``'s record; whether there was one."""
        if self._shards[hash(key) % SHARDS].pop(key, None) is None:
            return False
        self.size -= 1
        return True

    def oldest(self) -> tuple[str, float] | None:
        """The oldest record's key and expiry, read from its header alone: an insert asks once a record may be due
        or the table is over its cap."""
        while True:
            if not self._chunks:
                if not self._tail:
                    return None
                self._chunks.append(tuple(self._tail))
                self._tail.clear()
            chunk = self._chunks[0]
            if self._head >= len(chunk):
                self._chunks.popleft()
                self._head = 0
                continue
            key = chunk[self._head]
            assert isinstance(key, str)
            head = self._head_of(key, chunk[self._head + 1])
            if head is not None:
                return key, head[0]
            self._head += 2
            self._entries -= 1

    def items(self) -> list[tuple[str, _Slot]]:
        """Every record, oldest first (a list: the caller may delete while going through it)."""
        current = []
        for index, chunk in enumerate((*self._chunks, self._tail)):
            for at in range(self._head if index == 0 and self._chunks else 0, len(chunk), 2):
                key = chunk[at]
                assert isinstance(key, str)
                if self._head_of(key, chunk[at + 1]) is not None:
                    current.append((key, _unpack(self._shards[hash(key) % SHARDS][key])))
        return current

    def values(self) -> list[_Slot]:
        return [slot for _, slot in self.items()]

    def _head_of(self, key: str, stamp: str | int) -> tuple[float, int, int] | None:
        """The header (expiry, stamp, tenant length) of ``key``'s record if the order entry ``stamp`` is its
        current one; None for a stale entry."""
        blob = self._shards[hash(key) % SHARDS].get(key)
        if blob is None:
            return None
        head: tuple[float, int, int] = _HEAD.unpack_from(blob)
        return head if head[1] == stamp else None

    def _rebuild(self, current: list[tuple[str, _Slot]]) -> None:
        entries = [part for key, slot in current for part in (key, slot[STAMP])]
        self._chunks = deque(tuple(entries[at : at + 2 * CHUNK]) for at in range(0, len(entries), 2 * CHUNK))
        self._tail, self._head, self._entries = [], 0, len(current)


@dataclass
class _Log:
    entries: deque[tuple[str, int, bytes]]  # (tenant, seq, serialized entry)
    size: int = 0
    seq: int = 0
    dropped: int = 0


class MemoryStore:
    scheme: ClassVar[str] = "memory"
    shared: ClassVar[bool] = False

    def __init__(self, limits: Limits | None = None, *, clock: Any = time.time) -> None:
        self.limits = limits or Limits()
        self._now = clock
        self._lock = threading.RLock()
        self._kinds: dict[str, Table] = {}
        self._logs: dict[str, _Log] = {}
        self._counters: dict[tuple[str, str], float] = {}
        self._claims: dict[str, float] = {}
        self._blobs: OrderedDict[str, tuple[float, str, bytes]] = OrderedDict()
        self._blob_bytes = 0
        # Bumped (under the lock) by every change to a record of SERVER_KINDS; the earliest expiry among them, so
        # that expiring is a change too.
        self._version = 0
        self._server_expiry = math.inf

    # --- records ------------------------------------------------------------------------------------------

    def _live(self, kind: str, key: str) -> _Slot | None:
        table = self._kinds.get(kind)
        slot = None if table is None else table.get(key)
        if slot is not None and slot[EXPIRES] and slot[EXPIRES] <= self._now():
            self._kinds[kind].pop(key)
            self._changed(kind)
            return None
        return slot

    def _expiry(self, ttl: float | None) -> float:
        ttl = self.limits.record_ttl if ttl is None else ttl
        return self._now() + ttl if ttl else 0.0

    def _insert(self, kind: str, key: str, tenant: str, expires: float, raw: bytes) -> None:
        table = self._kinds.get(kind)
        if table is None:
            table = self._kinds[kind] = Table()
        table.insert(key, tenant, expires, raw)
        self._changed(kind, expires)
        now = self._now()
        if table.size <= self.limits.max_records and now < table.sweep_at:
            return  # the usual insert: under the cap, and nothing due to expire yet
        # Insertion order is expiry order for one TTL, so the sweep stops at the first live record.
        while (oldest := table.oldest()) is not None:
            first, expires = oldest
            if table.size > self.limits.max_records or (expires and expires <= now):
                table.pop(first)
            else:
                table.sweep_at = expires or math.inf
                return
        table.sweep_at = math.inf

    def put(self, kind: str, key: str, record: Record, *, tenant: str = "", ttl: float | None = None) -> None:
        raw = dumps(record)
        with self._lock:
            self._insert(kind, key, tenant, self._expiry(ttl), raw)

    def add(self, kind: str, key: str, record: Record, *, tenant: str = "", ttl: float | None = None) -> bool:
        raw = dumps(record)
        with self._lock:
            if self._live(kind, key) is not None:
                return False
            self._insert(kind, key, tenant, self._expiry(ttl), raw)
            return True

    def get(self, kind: str, key: str) -> Record | None:
        with self._lock:
            slot = self._live(kind, key)
            raw = None if slot is None else slot[RAW]
        return None if raw is None else cast(Record, loads(raw))

    def get_many(self, kind: str, keys: list[str]) -> list[Record | None]:
        with self._lock:
            raws = [None if (slot := self._live(kind, key)) is None else slot[RAW] for key in keys]
        return [None if raw is None else cast(Record, loads(raw)) for raw in raws]

    def owner(self, kind: str, key: str) -> str | None:
        with self._lock:
            slot = self._live(kind, key)
            return None if slot is None else slot[TENANT]

    def update(self, kind: str, key: str, change: Change, *, tenant: str | None = None) -> Record | None:
        with self._lock:
            slot = self._live(kind, key)
            if slot is None or tenant is not None and slot[TENANT] != tenant:
                return None
            result = change(loads(slot[RAW]))
            if result is DELETE:
                self._kinds[kind].pop(key)
                self._changed(kind)
                return None
            if result is None:
                return loads(slot[RAW])  # type: ignore[no-any-return]
            assert isinstance(result, dict)
            self._kinds[kind].rewrite(key, dumps(result))  # keeps its place and expiry: Redis KEEPTTL
            self._changed(kind)
            return result

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            table = self._kinds.get(kind)
            if table is None or not table.pop(key):
                return False
            self._changed(kind)
            return True

    def records(self, kind: str, tenant: str | None = None) -> list[Record]:
        now = self._now()
        with self._lock:
            raws = [
                s[RAW]
                for s in self._values(kind)
                if (tenant is None or s[TENANT] == tenant) and not (s[EXPIRES] and s[EXPIRES] <= now)
            ]
        return [loads(raw) for raw in raws]

    # --- the server-wide state's version --------------------------------------------------------------------

    def version(self) -> int:
        if self._server_expiry <= self._now():
            with self._lock:
                now = self._now()
                if self._server_expiry <= now:  # a record of SERVER_KINDS expired: its readers read again
                    self._version += 1
                    self._server_expiry = min(
                        (slot[EXPIRES] for kind in SERVER_KINDS for slot in self._values(kind) if slot[EXPIRES] > now),
                        default=math.inf,
                    )
        return self._version

    def _values(self, kind: str) -> list[_Slot]:
        table = self._kinds.get(kind)
        return [] if table is None else table.values()

    def _changed(self, kind: str, expires: float = 0.0) -> None:
        """Call with the lock held, after changing a record of ``kind`` (``expires``: its new expiry, if any)."""
        if kind in SERVER_KINDS:
            self._version += 1
            if expires and expires < self._server_expiry:
                self._server_expiry = expires

    # --- logs ---------------------------------------------------------------------------------------------

    def append(self, log: str, entry: Record, *, tenant: str = "") -> int:
        with self._lock:
            book = self._logs.get(log)
            if book is None:  # not setdefault: that would build a _Log on every append
                book = self._logs[log] = _Log(deque())
            book.seq += 1
            raw = dumps({**entry, "seq": book.seq})
            book.entries.append((tenant, book.seq, raw))
            book.size += len(raw)
            while book.entries and (len(book.entries) > self.limits.log_entries or book.size > self.limits.log_bytes):
                _, _, gone = book.entries.popleft()
                book.size -= len(gone)
                book.dropped += 1
            return book.seq

    def entries(self, log: str, tenant: str | None = None) -> list[Record]:
        with self._lock:
            book = self._logs.get(log)
            raws = [] if book is None else [raw for t, _, raw in book.entries if tenant is None or t == tenant]
        return [loads(raw) for raw in raws]

    def dropped(self, log: str) -> int:
        with self._lock:
            book = self._logs.get(log)
            return 0 if book is None else book.dropped

    def reset_log(self, log: str, tenant: str | None = None) -> None:
        with self._lock:
            book = self._logs.get(log)
            if book is None:
                return
            book.entries = deque(e for e in book.entries if tenant is not None and e[0] != tenant)
            book.size = sum(len(e[2]) for e in book.entries)

    # --- counters and claims ------------------------------------------------------------------------------

    def incr(self, name: str, amount: float = 1.0, *, tenant: str = "") -> float:
        with self._lock:
            value = self._counters.get((tenant, name), 0.0) + amount
            self._counters[(tenant, name)] = value
            return value

    def counter(self, name: str, *, tenant: str = "") -> float:
        with self._lock:
            return self._counters.get((tenant, name), 0.0)

    def claim(self, name: str, ttl: float = 24 * 3600.0) -> bool:
        now = self._now()
        with self._lock:
            if len(self._claims) > self.limits.max_records:
                self._claims = {k: v for k, v in self._claims.items() if v > now}
            if self._claims.get(name, 0.0) > now:
                return False
            self._claims[name] = now + ttl
            return True

    # --- blobs --------------------------------------------------------------------------------------------

    def put_blob(self, key: str, mime: str, data: bytes) -> None:
        with self._lock:
            old = self._blobs.pop(key, None)
            if old is not None:
                self._blob_bytes -= len(old[2])
            self._blobs[key] = (self._now() + self.limits.blob_ttl, mime, data)
            self._blob_bytes += len(data)
            now = self._now()
            while self._blobs:
                expires, _, first = next(iter(self._blobs.values()))
                if self._blob_bytes > self.limits.blob_bytes or expires <= now:
                    self._blobs.popitem(last=False)
                    self._blob_bytes -= len(first)
                else:
                    break

    def get_blob(self, key: str) -> tuple[str, bytes] | None:
        with self._lock:
            found = self._blobs.get(key)
            if found is None or found[0] <= self._now():
                return None
            return found[1], found[2]

    # --- housekeeping -------------------------------------------------------------------------------------

    def reset(self, tenant: str | None = None) -> int:
        with self._lock:
            self._version += 1
            if tenant is None:
                removed = sum(len(t) for k, t in self._kinds.items() if k not in PERSISTENT_KINDS)
                self._kinds = {k: t for k, t in self._kinds.items() if k in PERSISTENT_KINDS}
                self._logs.clear()
                self._counters.clear()
                self._claims.clear()
                self._blobs.clear()
                self._blob_bytes = 0
                return removed
            removed = 0
            for table in self._kinds.values():
                gone = [k for k, s in table.items() if s[TENANT] == tenant]
                for key in gone:
                    table.pop(key)
                removed += len(gone)
            for log in list(self._logs):
                self.reset_log(log, tenant)
            self._counters = {k: v for k, v in self._counters.items() if k[0] != tenant}
            return removed

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "records": {k: len(t) for k, t in self._kinds.items()},
                "log_entries": {k: len(b.entries) for k, b in self._logs.items()},
                "log_bytes": {k: b.size for k, b in self._logs.items()},
                "blobs": len(self._blobs),
                "blob_bytes": self._blob_bytes,
            }

    def close(self) -> None:
        pass
