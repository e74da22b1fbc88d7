"""The fake's clock: real time plus an offset tests can advance, or a frozen time that moves only on demand."""

from __future__ import annotations

import asyncio
import threading
import time


class Clock:
    """``now()`` in epoch seconds. ``advance()`` moves it forward; in frozen mode nothing else does."""

    def __init__(self, *, frozen: bool = False, start: float | None = None) -> None:
        self.frozen = frozen
        self._lock = threading.Lock()
        self._base = start if start is not None else time.time()
        self._offset = 0.0

    def now(self) -> float:
        with self._lock:
            return (self._base if self.frozen else time.time()) + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time: real waiting, or an instant jump when frozen."""
        if seconds <= 0:
            return
        if self.frozen:
            self.advance(seconds)
        else:
            await asyncio.sleep(seconds)
