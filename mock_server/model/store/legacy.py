"""Predictions kept per tenant (the API key that created them), safe to share between the server and test threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from mock_server.model.predictions import Prediction

T = TypeVar("T")


class MemoryStore:
    """In-process store. A prediction is visible only to its tenant; ids are unique across tenants."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_tenant: dict[str, dict[str, Prediction]] = {}
        self._owner: dict[str, str] = {}

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def add(self, prediction: Prediction) -> None:
        with self._lock:
            self._by_tenant.setdefault(prediction.tenant, {})[prediction.id] = prediction
            self._owner[prediction.id] = prediction.tenant

    def get(self, tenant: str, prediction_id: str) -> Prediction | None:
        with self._lock:
            return self._by_tenant.get(tenant, {}).get(prediction_id)

    def find(self, prediction_id: str) -> Prediction | None:
        """Any tenant's prediction: for output files, which are public like the real CDN links."""
        with self._lock:
            tenant = self._owner.get(prediction_id)
            return None if tenant is None else self._by_tenant[tenant].get(prediction_id)

    def list(self, tenant: str | None = None) -> list[Prediction]:
        with self._lock:
            tenants = [tenant] if tenant is not None else list(self._by_tenant)
            return [p for t in tenants for p in self._by_tenant.get(t, {}).values()]

    def update(self, tenant: str, prediction_id: str, change: Callable[[Prediction], T]) -> T | None:
        with self._lock:
            prediction = self.get(tenant, prediction_id)
            return None if prediction is None else change(prediction)

    def reset(self, tenant: str | None = None) -> int:
        with self._lock:
            if tenant is None:
                removed = len(self._owner)
                self._by_tenant.clear()
                self._owner.clear()
                return removed
            gone = self._by_tenant.pop(tenant, {})
            for pid in gone:
                self._owner.pop(pid, None)
            return len(gone)
