"""The fake's clock: real time plus an offset tests can advance, or a frozen time that moves only on demand.

The offset (and a frozen clock's starting point) live in the store, so every worker sharing it, and a restarted
server, agree on the time.
"""

from __future__ import annotations

import asyncio
import time

from mock_server.model.store import SERVER_TTL, Kept, MemoryStore, Record, Store


class Clock:
    """``now()`` in epoch seconds. ``advance()`` moves it forward; in frozen mode nothing else does."""

    def __init__(self, *, frozen: bool = False, start: float | None = None, store: Store | None = None) -> None:
        self.frozen = frozen
        self.store: Store = store if store is not None else MemoryStore()
        self._start = start
        self._kept = Kept(self.store, self._read)  # read on every request

    def _state(self) -> Record:
        return self._kept.get()

    def _read(self) -> Record:
        found = self.store.get("clock", "clock")
        if found is None:
            # The first worker to look fixes a frozen clock's start; the others read the same record.
            start = self._start if self._start is not None else time.time()
            self.store.add("clock", "clock", {"start": start, "offset": 0.0}, ttl=SERVER_TTL)
            found = self.store.get("clock", "clock") or {"start": start, "offset": 0.0}
        return found

    def now(self) -> float:
        state = self._state()
        return (float(state["start"]) if self.frozen else time.time()) + float(state["offset"])

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._state()
        self.store.update("clock", "clock", lambda state: {**state, "offset": state["offset"] + seconds})
        return self.now()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time: real waiting, or an instant jump when frozen."""
        if seconds <= 0:
            return
        if self.frozen:
            self.advance(seconds)
        else:
            await asyncio.sleep(seconds)
