"""State behind one ``Store``: in memory (default) or on Redis (shared by workers and hosts, restart-safe).

``store_from_url("memory://")`` or ``store_from_url("redis://HOST:PORT/DB")`` builds the right one; a third
backend only needs the protocol in ``base.py`` and a scheme here.
"""

from __future__ import annotations

from mock_server.model.store.base import DELETE, PERSISTENT_KINDS, SERVER_TTL, Deleted, Kept, Limits, Record, Store
from mock_server.model.store.memory import MemoryStore

__all__ = [
    "DELETE",
    "PERSISTENT_KINDS",
    "SERVER_TTL",
    "Deleted",
    "Kept",
    "Limits",
    "MemoryStore",
    "Record",
    "Store",
    "store_from_url",
]


def store_from_url(url: str | None, limits: Limits | None = None) -> Store:
    """The store a URL names: ``memory://`` (or nothing), ``redis://`` / ``rediss://`` / ``unix://``."""
    if not url or url.startswith("memory:"):
        return MemoryStore(limits)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mock_server.model.store.redis import RedisStore  # redis-py only when asked for

        return RedisStore(url, limits)
    raise ValueError(f"unknown store URL {url!r}: use memory:// or redis://HOST:PORT/DB")
