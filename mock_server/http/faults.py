"""HTTP fault injection: error statuses, latency, and broken connections (reset, no response, cut body)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import math
import random
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from http import HTTPStatus
from typing import Any, Literal, Protocol, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.contract.errors import JsonResponse
from mock_server.http.journal import FAULT_NOTE, flush_journal
from mock_server.http.routes import RESERVED
from mock_server.logs import event, get_logger
from mock_server.model.store import DELETE, Deleted, Kept, MemoryStore, Record, Store

Action = Literal["status", "latency", "reset", "empty", "truncate"]
Distribution = Literal["fixed", "uniform", "exponential", "normal"]

ACTIONS: tuple[Action, ...] = ("status", "latency", "reset", "empty", "truncate")
CUTS: tuple[Action, ...] = ("reset", "empty", "truncate")
KEYS = ("path", "method", "tenant", "status", "retry_after", "latency", "action", "times", "probability", "message")
DISTRIBUTION_KEYS: dict[str, tuple[str, ...]] = {
    "uniform": ("min", "max"),
    "exponential": ("mean",),
    "normal": ("mean", "stddev"),
}
# Same string as app.RAW_SEND; not imported because app.py imports this module.
RAW_SEND = "wavespeed_mock.raw_send"
CONTROL_PREFIX = "/_mock/"
# Bound on waiting for the server to notice a connection we cut; it normally takes one loop iteration.
DISCONNECT_WAIT = 5.0
_log = get_logger("faults")
GATEWAY_TIMEOUT = 504


class FaultUnsupported(RuntimeError):
    """A connection-level fault was asked for where no real connection exists (e.g. httpx.ASGITransport)."""


@dataclass(frozen=True)
class Latency:
    """A fixed delay or a distribution of delays in seconds; samples are clipped at 0."""

    distribution: Distribution
    value: float = 0.0
    min: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    stddev: float = 0.0

    def sample(self, rng: random.Random) -> float:
        if self.distribution == "uniform":
            return rng.uniform(self.min, self.max)
        if self.distribution == "exponential":
            return rng.expovariate(1 / self.mean) if self.mean > 0 else 0.0
        if self.distribution == "normal":
            return max(0.0, rng.gauss(self.mean, self.stddev))
        return self.value

    def to_json(self) -> float | dict[str, Any]:
        if self.distribution == "fixed":
            return self.value
        return {
            "distribution": self.distribution,
            **{key: getattr(self, key) for key in DISTRIBUTION_KEYS[self.distribution]},
        }


@dataclass
class FaultSpec:
    """One active fault. ``remaining`` counts down from ``times`` (None: never spent)."""

    action: Action
    path: str = "*"
    method: str | None = None
    tenant: str | None = None
    status: int | None = None
    retry_after: float | None = None
    latency: Latency | None = None
    times: int | None = 1
    probability: float = 1.0
    message: str | None = None
    id: int = 0
    hits: int = 0
    remaining: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.remaining = self.times

    def applies_to(self, method: str, path: str, tenant: str | None) -> bool:
        return (
            (self.method is None or self.method == method.upper())
            and (self.tenant is None or self.tenant == tenant)
            and fnmatch.fnmatchcase(path, self.path)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "path": self.path,
            "method": self.method,
            "tenant": self.tenant,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency": self.latency.to_json() if self.latency else None,
            "times": self.times,
            "remaining": self.remaining,
            "hits": self.hits,
            "probability": self.probability,
            "message": self.message,
        }


def parse_fault(spec: Mapping[str, Any]) -> FaultSpec:
    """Validate a fault as JSON gives it (control API, scenario file); ValueError names what is wrong."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"a fault must be a JSON object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown fault key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(KEYS)}")
    status = _status(spec.get("status"))
    latency = _latency(spec["latency"]) if spec.get("latency") is not None else None
    action = _action(spec.get("action"), status, latency)
    retry_after = spec.get("retry_after")
    if retry_after is not None:
        if action != "status":
            raise ValueError("fault 'retry_after' only applies to a 'status' fault")
        retry_after = _number(retry_after, "retry_after")
    elif status == 429:
        retry_after = 1
    return FaultSpec(
        action=action,
        path=_text(spec.get("path", "*"), "path"),
        method=_method(spec.get("method")),
        tenant=_text(spec["tenant"], "tenant") if spec.get("tenant") is not None else None,
        status=status,
        retry_after=retry_after,
        latency=latency,
        times=_times(spec.get("times", 1)),
        probability=_probability(spec.get("probability", 1.0)),
        message=_text(spec["message"], "message") if spec.get("message") is not None else None,
    )


def _action(value: Any, status: int | None, latency: Latency | None) -> Action:
    if value is None:
        if status is not None:
            return "status"
        if latency is not None:
            return "latency"
        raise ValueError("a fault needs 'status', 'latency' or 'action'")
    if value not in ACTIONS:
        raise ValueError(f"fault 'action' must be one of {', '.join(ACTIONS)}, got {value!r}")
    action = cast(Action, value)
    if action == "status" and status is None:
        raise ValueError("a 'status' fault needs 'status'")
    if action == "latency" and latency is None:
        raise ValueError("a 'latency' fault needs 'latency'")
    if action != "status" and status is not None:
        raise ValueError(f"fault 'status' does not apply to action {action!r}")
    return action


def _status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 503.0 is an integer to JSON Schema (and so to the fault schema)
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ValueError(f"fault 'status' must be an HTTP error status 400-599, got {value!r}")
    return value


def _number(value: Any, name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ValueError(f"fault {name!r} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _latency(value: Any) -> Latency:
    if not isinstance(value, Mapping):
        return Latency("fixed", value=_number(value, "latency"))
    distribution = value.get("distribution")
    if distribution not in DISTRIBUTION_KEYS:
        raise ValueError(f"latency 'distribution' must be one of {', '.join(DISTRIBUTION_KEYS)}, got {distribution!r}")
    wanted = DISTRIBUTION_KEYS[distribution]
    extra = sorted(set(value) - {"distribution", *wanted})
    missing = [key for key in wanted if key not in value]
    if extra or missing:
        raise ValueError(
            f"a {distribution} latency takes exactly {', '.join(wanted)}"
            + (f"; unknown: {', '.join(extra)}" if extra else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    params = {key: _number(value[key], f"latency.{key}") for key in wanted}
    low, high = params.get("min", 0.0), params.get("max", 0.0)
    if low > high:
        raise ValueError(f"uniform latency needs min <= max, got min={low:g} max={high:g}")
    return Latency(
        cast(Distribution, distribution),
        min=low,
        max=high,
        mean=params.get("mean", 0.0),
        stddev=params.get("stddev", 0.0),
    )


def _times(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 is an integer to JSON Schema (and so to the fault schema)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"fault 'times' must be a positive integer or null (every time), got {value!r}")
    return value


def _probability(value: Any) -> float:
    probability = _number(value, "probability")
    if probability > 1:
        raise ValueError(f"fault 'probability' must be between 0 and 1, got {value!r}")
    return probability


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"fault {name!r} must be a non-empty string, got {value!r}")
    return value


def _method(value: Any) -> str | None:
    if value is None or value == "*":
        return None
    if not isinstance(value, str) or not value.isalpha():
        raise ValueError(f"fault 'method' must be an HTTP method such as GET, got {value!r}")
    return value.upper()


class Faults:
    """The active faults of one server, kept in its store in the order added; the first that matches and fires
    wins. A fault's uses are counted by an atomic update, so ``times: 1`` fires once across workers."""

    def __init__(self, store: Store | int | None = None, seed: int | None = None) -> None:
        if store is None or isinstance(store, int):
            # Faults(seed) for a server-less set (tests, tools).
            seed, store = (store if isinstance(store, int) else seed), MemoryStore()
        self.store = store
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._faults = Kept(self.store, self._read)  # every request reads them

    def add(self, spec: Mapping[str, Any] | FaultSpec) -> FaultSpec:
        fault = spec if isinstance(spec, FaultSpec) else parse_fault(spec)
        fault.id = int(self.store.incr("fault.seq"))
        self.store.put("fault", f"{fault.id:012d}", _to_record(fault), tenant=fault.tenant or "")
        return fault

    def _all(self) -> tuple[FaultSpec, ...]:
        return self._faults.get()  # a fault's use is an update of its record, which moves the store's version

    def _read(self) -> tuple[FaultSpec, ...]:
        return tuple(sorted((_from_record(r) for r in self.store.records("fault")), key=lambda f: f.id))

    def clear(self, tenant: str | None = None) -> None:
        """Remove every fault, or only those scoped to ``tenant``."""
        for fault in self._all():
            if tenant is None or fault.tenant == tenant:
                self.store.delete("fault", f"{fault.id:012d}")

    def active(self) -> list[dict[str, Any]]:
        return [fault.to_json() for fault in self._all()]

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._rng.seed(seed)

    def match(self, method: str, path: str, tenant: str | None) -> FaultSpec | None:
        """The fault to apply to this request, if any; consumes one of its uses."""
        for fault in self._faults.get():  # every request asks, and the usual answer is that there are none
            if not fault.applies_to(method, path, tenant):
                continue
            # Drawn only for partial probabilities, so adding a certain fault does not shift the sequence.
            if fault.probability < 1:
                with self._lock:
                    if self._rng.random() >= fault.probability:
                        continue
            fired: list[FaultSpec] = []

            def use(record: Record, fired: list[FaultSpec]) -> Record | Deleted:
                fired.clear()
                current = _from_record(record)
                current.hits += 1
                if current.remaining is not None:
                    current.remaining -= 1
                fired.append(current)
                return DELETE if current.remaining == 0 else _to_record(current)

            self.store.update("fault", f"{fault.id:012d}", functools.partial(use, fired=fired))
            if fired:
                return fired[0]
        return None

    async def fire(
        self, fault: FaultSpec, app: ASGIApp, scope: Scope, receive: Receive, send: Send, tenant: str | None
    ) -> None:
        """Answer the request through ``fault`` (``match`` found it for this request). The front door
        (http/front.py) matches every request but the control plane's, which is never faulted."""
        if fault.action in CUTS:
            connection_of(scope, fault.action)  # fail before any delay, not after
        delay = self.delay(fault)
        event(
            _log,
            "fault.fired",
            id=fault.id,
            action=fault.action,
            status=fault.status,
            retry_after=fault.retry_after,
            delay=round(delay, 3),
            method=scope["method"],
            path=scope["path"],
            tenant=tenant,
            remaining=fault.remaining,
        )
        if scope.get("extensions") is None:
            scope["extensions"] = {}
        scope["extensions"][FAULT_NOTE] = _note(fault, delay, scope)  # in place: the journal holds the same dict
        if delay > 0:
            await asyncio.sleep(delay)
        await HANDLERS[fault.action](app, fault, scope, receive, send)

    def delay(self, fault: FaultSpec) -> float:
        """A latency sample for ``fault`` from the seeded generator (0 when it has no latency)."""
        if fault.latency is None:
            return 0.0
        with self._lock:
            return fault.latency.sample(self._rng)


def _to_record(fault: FaultSpec) -> Record:
    record = {f.name: getattr(fault, f.name) for f in fields(fault)}
    record["latency"] = asdict(fault.latency) if fault.latency else None
    return record


def _from_record(record: Record) -> FaultSpec:
    values = dict(record)
    remaining = values.pop("remaining")
    latency = values.pop("latency")
    fault = FaultSpec(**values, latency=Latency(**latency) if latency else None)
    fault.remaining = remaining
    return fault


class _Connection(Protocol):
    def abort(self) -> None: ...

    def close(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def connection_of(scope: Scope, action: str = "this fault") -> _Connection:
    """The asyncio transport under this request: uvicorn's ``send`` (h11 and httptools alike) is a bound method
    of its RequestResponseCycle, which keeps the transport as ``.transport``."""
    raw_send = ((scope.get("extensions") or {}).get(RAW_SEND) or {}).get("send")
    transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
    if not all(callable(getattr(transport, name, None)) for name in ("abort", "close", "get_extra_info")):
        raise FaultUnsupported(
            f"fault action {action!r} needs a real connection: serve the app with uvicorn (the in-process "
            f"httpx.ASGITransport has none); found no transport behind scope['extensions'][{RAW_SEND!r}]"
        )
    return cast(_Connection, transport)


Handler = Callable[[ASGIApp, FaultSpec, Scope, Receive, Send], Awaitable[None]]


def _note(fault: FaultSpec, delay: float, scope: Scope) -> str:
    if fault.action == "latency":
        return f"fault {fault.id}: latency {delay:.3f} s"
    what = f"status {fault.status}" if fault.action == "status" else fault.action
    if fault.status == GATEWAY_TIMEOUT and is_submit(scope):
        what += " (after the app ran: the prediction exists)"
    return f"fault {fault.id}: {what}" + (f" after {delay:.3f} s" if delay > 0 else "")


async def _continue(app: ASGIApp, fault: FaultSpec, scope: Scope, receive: Receive, send: Send) -> None:
    await app(scope, receive, send)


async def _status_reply(app: ASGIApp, fault: FaultSpec, scope: Scope, receive: Receive, send: Send) -> None:
    status = fault.status or 500
    if status == GATEWAY_TIMEOUT and is_submit(scope):
        # A gateway timeout means the gateway stopped waiting, not that the request never arrived: the docs' sync
        # mode "returns HTTP 504 while the task still completes". So the app runs (the task exists, a sync submit
        # is waited for) and only its answer is replaced. Every other status answers before the app.
        async def discard(message: Message) -> None:
            pass

        with contextlib.suppress(Exception):  # the client gets the 504 whatever the app did
            await app(scope, receive, discard)
    headers = {"Retry-After": _seconds(fault.retry_after)} if fault.retry_after is not None else None
    message = fault.message or _phrase(status)
    await JsonResponse({"code": status, "message": message}, status_code=status, headers=headers)(scope, receive, send)


def is_submit(scope: Scope) -> bool:
    """A ``POST /api/v3/{owner}/{model}...`` (not one of the API's own resources)."""
    path: str = scope["path"]
    return (
        scope["method"] == "POST"
        and path.startswith("/api/v3/")
        and path.removeprefix("/api/v3/").split("/", 1)[0] not in RESERVED
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Client error" if status < 500 else "Server error"


def _seconds(value: float) -> str:
    # Retry-After is delta-seconds; a fraction is kept (only when given) so tests can retry fast.
    return str(int(value)) if value == int(value) else f"{value:g}"


async def _reset(app: ASGIApp, fault: FaultSpec, scope: Scope, receive: Receive, send: Send) -> None:
    connection = connection_of(scope, "reset")
    sock = connection.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger 0: closing sends RST instead of FIN, the client sees "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await flush_journal(scope)
    connection.abort()
    await _until_disconnected(receive)


async def _empty(app: ASGIApp, fault: FaultSpec, scope: Scope, receive: Receive, send: Send) -> None:
    connection = connection_of(scope, "empty")
    await flush_journal(scope)
    connection.close()
    await _until_disconnected(receive)


async def _truncate(app: ASGIApp, fault: FaultSpec, scope: Scope, receive: Receive, send: Send) -> None:
    """The app's real answer with its full Content-Length, but only half the body before the close."""
    connection = connection_of(scope, "truncate")
    start: Message | None = None
    chunks: list[bytes] = []

    async def hold(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, hold)
    if start is None:
        raise RuntimeError("truncate fault: the app sent no response to truncate")
    body = b"".join(chunks)
    announced = len(body) or 1
    headers = [
        (name, value)
        for name, value in start.get("headers", [])
        if name.lower() not in (b"content-length", b"transfer-encoding")
    ]
    await send({**start, "headers": [*headers, (b"content-length", str(announced).encode())]})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    await flush_journal(scope)
    connection.close()
    await _until_disconnected(receive)


async def _until_disconnected(receive: Receive) -> None:
    # Returning before uvicorn has seen the connection drop would make it write a 500 onto the cut socket.
    async def drain() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(drain(), DISCONNECT_WAIT)


HANDLERS: dict[Action, Handler] = {
    "status": _status_reply,
    "latency": _continue,
    "reset": _reset,
    "empty": _empty,
    "truncate": _truncate,
}
