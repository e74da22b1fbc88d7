"""The API under test: :class:`Target` (the ``target`` fixture) sends every request, keeps the cost guard
(:class:`Budget`), records a dry run (:class:`PlannedRequest`) and paces polling; plus the endpoint ordering
a paid run relies on (cheapest first) and how many outputs a request asks for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from kit_violations import ConformanceError, Violation, short

from mock_server.contract.catalog import Catalog, Endpoint, default_catalog


class ShownEndpoint(Endpoint):
    """An Endpoint that prints as its model path: falsifying examples stay readable (not 30 kB of schema)."""

    def __repr__(self) -> str:
        return f"Endpoint({self.model!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def shown(endpoint: Endpoint) -> ShownEndpoint:
    if isinstance(endpoint, ShownEndpoint):
        return endpoint
    return ShownEndpoint(**{f.name: getattr(endpoint, f.name) for f in fields(endpoint)})


def endpoints_of(catalog: Catalog) -> list[ShownEndpoint]:
    """Every endpoint, cheapest first (a paid run spends its budget on the cheapest ones)."""
    return sorted((shown(e) for e in catalog.endpoints.values()), key=price_rank)


def short_model(model: str) -> str:
    return model.removeprefix("wavespeed-ai/")


def price_rank(endpoint: Endpoint) -> tuple[float, str]:
    """Sort key: known prices cheapest first, unknown prices last."""
    return (endpoint.cost(1) if endpoint.price_usd is not None else math.inf, endpoint.model)


def expected_count(endpoint: Endpoint, body: Mapping[str, Any]) -> int:
    """How many outputs a request asks for: num_images (or its schema default), else one."""
    if "num_images" not in endpoint.properties:
        return 1
    value = body.get("num_images", endpoint.default("num_images", 1)) if isinstance(body, Mapping) else 1
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


# --------------------------------------------------------------------------------------------------------
# cost guard and dry runs


@dataclass
class Budget:
    """Paid predictions: ``limit`` at most (None: unlimited, as on the fake); every accepted submit counts."""

    limit: int | None
    spent: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # accepted submits on endpoints without a known price

    def left(self) -> float:
        return math.inf if self.limit is None else self.limit - self.spent

    def charge(self, endpoint: Endpoint, body: Mapping[str, Any]) -> None:
        self.spent += 1
        if endpoint.price_usd is None:
            self.unpriced += 1
        else:
            self.cost_usd += endpoint.cost(expected_count(endpoint, body))

    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "spent": self.spent,
            "estimated_cost_usd": round(self.cost_usd, 4),
            "predictions_without_known_price": self.unpriced,
        }


@dataclass(frozen=True)
class PlannedRequest:
    method: str
    path: str
    body: str
    estimated_cost_usd: float | None  # None: unknown price; 0 for requests that should be rejected

    def line(self) -> str:
        cost = "unknown price" if self.estimated_cost_usd is None else f"${self.estimated_cost_usd:.3f}"
        return f"{self.method} {self.path} {self.body} (est. {cost})"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "estimated_cost_usd": self.estimated_cost_usd,
        }


# --------------------------------------------------------------------------------------------------------
# the target


@dataclass
class Target:
    """The API under test, and everything that differs between the fake and a real URL.

    Properties never ask which target they run against; they use these capabilities:
    ``paid`` (submits cost money: cheap parameters, budget), ``controls`` (the fake's ``/_mock/`` control
    API), ``poll_steps`` (each poll moves a prediction exactly this many lifecycle steps; None: unknown),
    ``restricts_keys`` (an unknown API key is refused) and ``input_images`` (image values the target can use).
    """

    name: str
    base_url: str
    api_key: str
    paid: bool
    budget: Budget
    dry_run: bool = False
    controls: bool = False
    poll_steps: int | None = None
    restricts_keys: bool = True
    poll_interval: float = 1.0
    poll_timeout: float = 300.0
    max_polls: int = 500
    catalog: Catalog = field(default_factory=default_catalog)
    input_images: tuple[str, ...] = ()
    planned: list[PlannedRequest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: set[str] = field(default_factory=set)  # optional routes the target answered 404 for
    http: httpx.Client | None = None

    def endpoints(self) -> list[ShownEndpoint]:
        return endpoints_of(self.catalog)

    def __repr__(self) -> str:
        return f"Target({self.name!r} at {self.base_url})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    # --- sending ------------------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self.http is None:
            self.http = httpx.Client(
                base_url=self.base_url, timeout=httpx.Timeout(max(60.0, self.poll_timeout)), follow_redirects=True
            )
        return self.http

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key if key is None else key}"}

    def send(
        self,
        method: str,
        path: str,
        *,
        endpoint: str = "-",
        where: str = "request",
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        files: Any = None,
        estimated_cost: float | None = 0.0,
    ) -> httpx.Response:
        """One HTTP exchange. A dry run records it and skips the test; a transport failure is a violation."""
        if self.dry_run:
            summary = (
                short(json_body, 400)
                if json_body is not None
                else (short(content, 200) if content is not None else ("<multipart file>" if files else ""))
            )
            self.planned.append(PlannedRequest(method, urlsplit(path).path or path, summary, estimated_cost))
            pytest.skip(f"dry run: would send {method} {path}")
        kwargs: dict[str, Any] = {"headers": dict(headers or {})}
        if json_body is not None:
            kwargs["json"] = json_body
        if content is not None:
            kwargs["content"] = content
        if files is not None:
            kwargs["files"] = files
        try:
            return self._client().request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConformanceError(
                [
                    Violation(
                        endpoint,
                        where,
                        "(connection)",
                        f"an HTTP answer to {method} {path}",
                        f"{type(exc).__name__}: {exc}",
                    )
                ]
            ) from None

    def submit(
        self,
        endpoint: Endpoint,
        body: Any = None,
        *,
        raw: bytes | None = None,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        expect_rejection: bool = False,
    ) -> httpx.Response:
        """POST a prediction. Paid targets: refuse (skip) once the budget is spent; count every accepted one."""
        if self.budget.left() <= 0:
            pytest.skip(
                f"cost guard: the budget of {self.budget.limit} paid prediction(s) is spent; "
                f"not submitting to {endpoint.model}"
            )
        if headers is None:
            headers = self.auth(key)
        if raw is not None:
            headers = {**headers, "Content-Type": "application/json"}
        cost: float | None = (
            0.0
            if expect_rejection
            else (endpoint.cost(expected_count(endpoint, body or {})) if endpoint.price_usd is not None else None)
        )
        response = self.send(
            "POST",
            f"/api/v3/{endpoint.model}",
            endpoint=endpoint.model,
            where="submit",
            json_body=body if raw is None else None,
            content=raw,
            headers=headers,
            estimated_cost=cost,
        )
        if 200 <= response.status_code < 300:
            self.budget.charge(endpoint, body if isinstance(body, dict) else {})
        return response

    def get_result(
        self,
        prediction_id: str,
        *,
        endpoint: str = "-",
        where: str = "result",
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.send(
            "GET",
            f"/api/v3/predictions/{prediction_id}/result",
            endpoint=endpoint,
            where=where,
            headers=self.auth(key) if headers is None else headers,
        )

    def download(self, url: str, *, endpoint: str, where: str) -> httpx.Response:
        """Output files are public links (a CDN on the real API): fetched without the API key."""
        return self.send("GET", url, endpoint=endpoint, where=where)

    def pause(self, attempt: int) -> None:
        """Back off between polls of a target whose predictions move with time (never on the fake)."""
        delay = min(self.poll_interval * (1.5**attempt), max(self.poll_interval, 8.0))
        if delay > 0:
            time.sleep(delay)

    def optional_route(self, name: str, response: httpx.Response) -> bool:
        """False (and a note) when an optional route is missing on this target: its checks are skipped."""
        if response.status_code in (404, 405):
            if name not in self.unavailable:
                self.unavailable.add(name)
                self.notes.append(
                    f"{name}: the target answered {response.status_code}; checks that need it were skipped"
                )
            return False
        return True

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None
