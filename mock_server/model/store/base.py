"""The one place the fake keeps mutable state: the ``Store`` protocol every backend implements.

State is a handful of shapes, each owned by a tenant (the API key; ``""`` for server-wide state):

- records: JSON objects in named kinds (``prediction``, ``rule``, ``fault``, ``slot``, ...), one key each, with a TTL,
  and at most ``Limits.max_records`` per kind (the oldest are evicted first);
- logs: append-only, numbered entries (``journal``, ``deliveries``), capped in entries AND bytes;
- counters: floats that only change by atomic increments (balances, sequence numbers, the clock offset);
- claims: "this happens once" markers with a TTL (a webhook delivery, a rule's use);
- blobs: content-addressed bytes (uploads, resolved input images), with a TTL.

Callers never hold a live object: every read returns a fresh copy, and every change goes through ``put``,
``update`` (an atomic read-modify-write of one record), ``delete``, ``append`` or ``incr``. That is what lets the
same model code run on one process's memory or on Redis shared by many workers and hosts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

import orjson

Record = dict[str, Any]


class Deleted:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = Deleted()
"""Returned by an ``update`` change function: remove the record instead of rewriting it."""

Change = Callable[[Record], "Record | None | Deleted"]
"""Gets a private copy of the record; returns the new record, None to leave it unchanged, or DELETE. On Redis it
may run more than once (optimistic retry), so it must not have side effects beyond its own return value."""

DAY = 24 * 3600.0
SERVER_TTL = 30 * DAY  # the server's identity (webhook secret, id sequence) and clock: rewritten on every change

SERVER_KINDS = frozenset({"fault", "rule", "behaviour", "server", "clock"})
"""Record kinds every request reads (faults, outcome rules, model behaviour, the id sequence, the clock) and only
the control plane (or a rule's or fault's use) writes: ``Store.version`` tells their readers when to read again."""

PERSISTENT_KINDS = ("server", "clock")
"""Record kinds a reset of everything keeps: forgetting them would change the webhook secret clients hold, or
move the clock backwards."""


@dataclass(frozen=True)
class Limits:
    """What keeps a long-running or shared fake from growing without bound."""

    record_ttl: float = DAY  # predictions, upload slots and records, resolved inputs
    max_records: int = 10_000  # per kind; the oldest go first
    blob_ttl: float = DAY
    blob_bytes: int = 256 * 1024 * 1024  # memory store only; Redis relies on TTLs (and its own maxmemory)
    log_entries: int = 1000  # per log
    log_bytes: int = 8 * 1024 * 1024  # per log, serialized


class Store(Protocol):
    """All mutable state of one fake server (or of many workers sharing it)."""

    scheme: ClassVar[str]
    shared: ClassVar[bool]  # other processes write it too: a request pins its version (``pin_version``)
    limits: Limits

    # --- records ------------------------------------------------------------------------------------------

    def put(self, kind: str, key: str, record: Record, *, tenant: str = "", ttl: float | None = None) -> None:
        """Create or replace a record (TTL: ``limits.record_ttl`` unless given; 0 = no expiry)."""

    def add(self, kind: str, key: str, record: Record, *, tenant: str = "", ttl: float | None = None) -> bool:
        """Create a record only if the key is free; False when it exists."""

    def get(self, kind: str, key: str) -> Record | None:
        """A copy of the record, or None when absent or expired."""

    def get_many(self, kind: str, keys: list[str]) -> list[Record | None]:
        """``get`` of each key, in one round trip (None where absent or expired)."""

    def owner(self, kind: str, key: str) -> str | None:
        """The tenant a record belongs to, or None when absent."""

    def update(self, kind: str, key: str, change: Change, *, tenant: str | None = None) -> Record | None:
        """Apply ``change`` atomically; returns the record as stored afterwards (None: absent or deleted): the
        very value ``change`` returned, not decoded again, so it must hold JSON's types only (lists, not tuples).
        With ``tenant``, a record another tenant owns is treated as absent: left unchanged, ``change`` not called."""

    def delete(self, kind: str, key: str) -> bool: ...

    def records(self, kind: str, tenant: str | None = None) -> list[Record]:
        """Every live record of a kind (of one tenant), oldest first."""

    # --- logs ---------------------------------------------------------------------------------------------

    def append(self, log: str, entry: Record, *, tenant: str = "") -> int:
        """Add an entry, numbering it (the number is returned and stored as ``entry["seq"]``)."""

    def entries(self, log: str, tenant: str | None = None) -> list[Record]:
        """Entries oldest first; when the log was capped, the oldest are gone (see ``dropped``)."""

    def dropped(self, log: str) -> int:
        """How many entries the caps removed from a log."""

    def reset_log(self, log: str, tenant: str | None = None) -> None:
        """Empty a log, or remove one tenant's entries from it."""

    # --- counters and claims ------------------------------------------------------------------------------

    def incr(self, name: str, amount: float = 1.0, *, tenant: str = "") -> float: ...

    def counter(self, name: str, *, tenant: str = "") -> float: ...

    def claim(self, name: str, ttl: float = DAY) -> bool:
        """True exactly once per name (until the TTL ends): for "do this once, whichever worker gets here"."""

    # --- blobs --------------------------------------------------------------------------------------------

    def put_blob(self, key: str, mime: str, data: bytes) -> None: ...

    def get_blob(self, key: str) -> tuple[str, bytes] | None: ...

    # --- the server-wide state's version --------------------------------------------------------------------

    def version(self) -> int | None:
        """A number that changes whenever a record of ``SERVER_KINDS`` is written, deleted or expires, so a reader
        may keep what it read under the number it saw before reading. None: this store cannot tell, and every read
        must go to it. A shared store answers the number a request pinned (``pin_version``), if one did."""

    # --- housekeeping -------------------------------------------------------------------------------------

    def reset(self, tenant: str | None = None) -> int:
        """Forget one tenant's records, log entries and counters, or (None) everything but ``PERSISTENT_KINDS``;
        returns how many records were removed."""

    def stats(self) -> dict[str, Any]:
        """Sizes, for the benchmark and the soak test."""

    def close(self) -> None: ...


T = TypeVar("T")


class VersionPin:
    """One request's reading of a shared store's version (``RedisStore.version``): asked of the store at most once
    while nothing in the request writes server-wide state, so the request's several readers (faults, clock, rules,
    behaviour, ids) cost one round trip between them instead of one each. What they read then is the state as of
    that reading, as a request handled in one step would see it. ``close()`` ends it: a task the request started
    inherits the pin with its context, and must not keep using it once the request is over."""

    __slots__ = ("version", "open")

    def __init__(self) -> None:
        self.version: int | None = None
        self.open = True

    def close(self) -> None:
        self.open = False


_PIN: ContextVar[VersionPin | None] = ContextVar("wavespeed_mock.version_pin", default=None)


def pin_version() -> Callable[[], None]:
    """Start pinning the version for the current context (a request); returns what ends it."""
    pin = VersionPin()
    token = _PIN.set(pin)

    def end() -> None:
        pin.close()
        _PIN.reset(token)

    return end


def current_pin() -> VersionPin | None:
    """The open pin of the current context, if any."""
    pin = _PIN.get()
    return pin if pin is not None and pin.open else None


class Kept(Generic[T]):
    """What ``read`` returns, read again only when ``store.version()`` has moved (or is None): for server-wide
    state, which every request reads and the control plane seldom writes. The value is shared by every caller, so
    none may change it in place."""

    def __init__(self, store: Store, read: Callable[[], T]) -> None:
        self.store = store
        self.read = read
        self._kept: tuple[int, T] | None = None

    def get(self) -> T:
        # The version is taken before the read: a change during the read leaves a newer value under an older
        # version, which the next call reads again.
        version, kept = self.store.version(), self._kept
        if version is not None and kept is not None and kept[0] == version:
            return kept[1]
        value = self.read()
        self._kept = None if version is None else (version, value)
        return value


_EXACT = b"J"  # marks a record orjson could not write (an integer beyond 64 bits): read it back with json, exactly


def dumps(value: Any) -> bytes:
    try:
        # Copied to fit: orjson's bytes keep the buffer it grew while writing (8 KiB for a 600-byte record, measured
        # with tracemalloc), and the memory store keeps what it is handed, so 100,000 predictions held 1 GiB.
        return memoryview(orjson.dumps(value)).tobytes()
    except TypeError:
        # Clients may send any JSON integer; the fake echoes inputs as sent, so none may be rounded.
        return _EXACT + json.dumps(value, separators=(",", ":")).encode()


def loads(raw: bytes | str) -> Any:
    if isinstance(raw, str):
        raw = raw.encode()
    if raw[:1] == _EXACT:
        return json.loads(raw[1:])
    return orjson.loads(raw)
