"""Opt-in limits of the real platform, kept in the store so they hold across workers: a per-key submit rate
(``--rate-limit``) and per-key concurrency slots (``--max-concurrency``).

Rate: a fixed window on the fake's clock (so tests advance it instead of sleeping); one record per key counts the
submits of the current window, bumped by an atomic update. Beyond the limit a submit is refused with 429 and
``Retry-After`` (seconds until the window ends).

Concurrency: N slot records per key. A prediction that finds every slot taken stays ``created`` (queued, as the
docs say the platform does, rather than refused); the backend hands free slots to a key's queued predictions first
in, first out. A slot records when it was freed, so a prediction that waited starts at the moment the one before it
ended, however late somebody looks. A slot whose holder was deleted, expired or ended without releasing it is free.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from mock_server.contract.errors import TooManyRequests
from mock_server.model.clock import Clock
from mock_server.model.store import Record, Store

RATE_KIND = "ratelimit"
SLOT_KIND = "concurrency"


class RateLimiter:
    def __init__(self, store: Store, clock: Clock, window: tuple[int, float] | None) -> None:
        self.store = store
        self.clock = clock
        self.window = window

    def check(self, tenant: str) -> None:
        """Count one submit of ``tenant``; TooManyRequests (429, Retry-After) when it is over the limit."""
        if self.window is None:
            return
        allowed, seconds = self.window
        now = self.clock.now()
        current = math.floor(now / seconds)

        def count(record: Record) -> Record:
            if record["window"] != current:
                return {"window": current, "count": 1}
            return {**record, "count": record["count"] + 1}

        ttl = 2 * seconds  # a key that stops submitting leaves nothing behind
        record = self.store.update(RATE_KIND, tenant, count)
        if record is None:
            if self.store.add(RATE_KIND, tenant, {"window": current, "count": 1}, tenant=tenant, ttl=ttl):
                return
            record = self.store.update(RATE_KIND, tenant, count)  # another worker counted first
        if record is not None and record["count"] > allowed:
            wait = max(1, math.ceil((current + 1) * seconds - now))
            raise TooManyRequests(
                f"Rate limit exceeded: {allowed} submits per {seconds:g} s per API key; retry in {wait} s",
                headers={"Retry-After": str(wait)},
                extra={"error_code": "rate_limited"},
            )


Holder = Callable[[str], "tuple[bool, float | None]"]
"""Of a prediction id: (still running?, when it ended, if it did)."""


class Slots:
    """``limit`` concurrency slots per tenant, in the store (kind ``concurrency``, key ``tenant|n``)."""

    def __init__(self, store: Store, limit: int, holder: Holder, clock: Clock) -> None:
        self.store = store
        self.limit = limit
        self.holder = holder
        self.clock = clock

    def acquire(self, tenant: str, prediction_id: str) -> float | None:
        """Take a free slot for ``prediction_id``: when that slot was freed (0.0: never used), or None when every
        slot is taken."""
        for number in range(self.limit):
            key = f"{tenant}|{number}"
            slot = self.store.get(SLOT_KIND, key)
            if slot is None:
                if self.store.add(SLOT_KIND, key, {"holder": prediction_id, "freed_at": 0.0}, tenant=tenant):
                    return 0.0
                slot = self.store.get(SLOT_KIND, key)
                if slot is None:
                    continue
            if slot["holder"] is not None:
                running, ended = self.holder(slot["holder"])
                if running:
                    continue
                self.release(tenant, slot["holder"], ended if ended is not None else self.clock.now())
            taken: list[float] = []

            def take(record: Record, taken: list[float] = taken) -> Record | None:
                taken.clear()
                if record["holder"] is not None:
                    return None
                taken.append(float(record["freed_at"]))
                return {**record, "holder": prediction_id}

            self.store.update(SLOT_KIND, key, take)
            if taken:
                return taken[0]
        return None

    def release(self, tenant: str, prediction_id: str, at: float) -> None:
        """Free the slot ``prediction_id`` holds (if any), as of ``at``."""
        for number in range(self.limit):
            self.store.update(
                SLOT_KIND,
                f"{tenant}|{number}",
                lambda r: {"holder": None, "freed_at": at} if r["holder"] == prediction_id else None,
            )
