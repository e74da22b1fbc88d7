"""The request journal: a bounded record of every request the fake answered, for test assertions."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope, Send

from mock_server.contract.errors import BadRequest
from mock_server.contract.jsonbody import parse_json
from mock_server.contract.tenants import tenant_id
from mock_server.model.store import Limits, MemoryStore, Store

Kind = Literal["api", "media", "webhook", "other"]
Query = dict[str, str | list[str]]

TEXT_LIMIT = 64 * 1024
# JSON bodies may carry data-URI images; up to this size they are kept decoded, beyond it as truncated text.
JSON_LIMIT = 1024 * 1024
# A small unread body is normally in the socket buffer already; a client still sending is not waited for long.
UNREAD_BODY_WAIT = 2.0
UNRECORDED_PREFIXES = ("/_mock/", "/openapi.json")
REDACTED_HEADERS = ("authorization", "proxy-authorization")
BINARY_TYPES = ("multipart/", "application/octet-stream", "image/", "audio/", "video/", "application/zip")
# The faults leave a note here so the journal can say why a request was cut or answered with an error.
FAULT_NOTE = "wavespeed_mock.fault"
# Routes leave a note here for what a client cannot see in the answer (e.g. a model served generically).
ROUTE_NOTE = "wavespeed_mock.note"
# The journal's "record this request now", for the faults to call before it cuts a connection.
JOURNAL_FLUSH = "wavespeed_mock.journal_flush"
# A route that parsed the body (strictly) leaves (its length, the value) here: the journal keeps that value rather
# than parse the same bytes again. Nothing changes a parsed body in place.
PARSED_BODY = "wavespeed_mock.parsed_body"


@dataclass
class JournalEntry:
    """One request (or one outgoing webhook delivery) as the fake saw it."""

    method: str
    path: str
    query: Query | str
    headers: dict[str, str]
    body: Any
    status: int | None
    latency_ms: float
    tenant: str | None
    kind: Kind
    note: str | None = None
    time: float = 0.0
    seq: int = 0
    size: int = 0  # bytes of the body as sent; ``body`` keeps at most the first 1 MiB (JSON) or 64 KiB (text)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))  # shallow: the store serializes it at once

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalEntry:
        return cls(**data)


class Journal:
    """The request journal, kept in the store as a log capped in entries and bytes (``Limits.log_entries`` /
    ``log_bytes``): the app's event loop records while test threads read, and workers sharing a store share it.

    Args:
        store: the fake's store, or a cap for a journal of its own (tests, tools).
    """

    LOG = "journal"

    def __init__(self, store: Store | int) -> None:
        if isinstance(store, int):
            _check_cap(store)
            store = MemoryStore(Limits(log_entries=store))
        self.store = store

    @property
    def cap(self) -> int:
        return self.store.limits.log_entries

    @property
    def dropped(self) -> int:
        return self.store.dropped(self.LOG)

    def record(self, entry: JournalEntry) -> JournalEntry:
        """Append ``entry``, numbering it; when full, the oldest entries are dropped and counted."""
        if not entry.time:
            entry.time = time.time()
        entry.seq = 0
        entry.seq = self.append(entry.to_json())
        return entry

    def append(self, entry: dict[str, Any]) -> int:
        """Append an entry already in its JSON form (``JournalEntry.to_json``); returns its number."""
        return self.store.append(self.LOG, entry, tenant=entry["tenant"] or "")

    def record_delivery(
        self,
        url: str,
        status: int | None,
        body: bytes,
        headers: dict[str, str],
        latency_ms: float,
        tenant: str | None,
        note: str | None = None,
    ) -> JournalEntry:
        """Record an outgoing webhook POST (used by the webhook sender)."""
        lowered = {name.lower(): value for name, value in headers.items()}
        return self.record(
            JournalEntry(
                method="POST",
                path=url,
                query={},
                headers=redact(lowered.items()),
                body=decode_body(body, len(body), lowered.get("content-type", "")),
                status=status,
                latency_ms=latency_ms,
                tenant=tenant,
                kind="webhook",
                note=note,
                time=time.time(),
                size=len(body),
            )
        )

    def entries(self, tenant: str | None = None, **match: Any) -> list[JournalEntry]:
        """Entries oldest first, optionally filtered as :meth:`find` does."""
        return self.find(tenant=tenant, **match)

    def find(
        self,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        tenant: str | None = None,
        kind: Kind | None = None,
        body_contains: str | None = None,
    ) -> list[JournalEntry]:
        """Entries matching every given filter, oldest first. ``path`` is exact or an fnmatch glob; ``tenant`` is an
        API key or its fingerprint."""
        tenant = None if tenant is None else tenant_id(tenant)
        snapshot = [JournalEntry.from_json(e) for e in self.store.entries(self.LOG, tenant)]
        return [
            e
            for e in snapshot
            if (method is None or e.method == method.upper())
            and (path is None or e.path == path or fnmatch.fnmatchcase(e.path, path))
            and (status is None or e.status == status)
            and (tenant is None or e.tenant == tenant)
            and (kind is None or e.kind == kind)
            and (body_contains is None or body_contains in _body_text(e.body))
        ]

    def count(
        self,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        tenant: str | None = None,
        kind: Kind | None = None,
        body_contains: str | None = None,
    ) -> int:
        return len(self.find(method, path, status, tenant, kind, body_contains))

    def unmatched(self, tenant: str | None = None) -> list[JournalEntry]:
        """Requests no route answered: what a client called that the fake does not know."""
        return self.find(status=404, tenant=tenant)

    def clear(self, tenant: str | None = None) -> None:
        """Forget every entry, or one tenant's (a whole-store reset does this too)."""
        self.store.reset_log(self.LOG, None if tenant is None else tenant_id(tenant))

    def __len__(self) -> int:
        return len(self.store.entries(self.LOG))


def _check_cap(cap: int) -> None:
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"journal cap must be a positive integer, got {cap!r}")


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)


def redact(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names, repeated headers joined; credentials replaced so a journal dump never leaks a key."""
    result: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        if name in REDACTED_HEADERS:
            scheme, _, secret = value.partition(" ")
            value = f"{scheme} ***" if secret else "***"
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


def decode_body(
    captured: bytes | bytearray, total: int, content_type: str, parsed: tuple[int, Any] | None = None
) -> Any:
    """JSON decoded, else text up to 64 KiB, else ``"<N bytes binary>"``; None for no body. ``parsed``: what a
    route already parsed from these bytes (their length and the value). ``captured`` is read, never kept: a
    request's buffer is passed as it is, not copied."""
    if total == 0:
        return None
    content_type = content_type.lower()
    if content_type.startswith(BINARY_TYPES):
        return f"<{total} bytes binary>"
    if total == len(captured) and ("json" in content_type or captured.lstrip()[:1] in (b"{", b"[")):
        if parsed is not None and parsed[0] == total:
            return parsed[1]
        try:  # strict: NaN or a lone surrogate kept here would make /_mock/journal unrenderable, deep nesting crash
            return parse_json(bytes(captured))
        except BadRequest:
            pass
    head = captured[:TEXT_LIMIT]
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if total > len(head) and exc.reason == "unexpected end of data":  # a character cut at the limit
            return head[: exc.start].decode("utf-8")
        return f"<{total} bytes binary>"


async def flush_journal(scope: Scope) -> None:
    """Record the request now, before the client can notice it was cut (no-op without a journal)."""
    flush = (scope.get("extensions") or {}).get(JOURNAL_FLUSH)
    if callable(flush):
        await flush()


def kind_of(path: str) -> Kind:
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/media/"):
        return "media"
    return "other"


def parse_query(raw: bytes) -> Query:
    query: Query = {}
    if not raw:
        return query
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        previous = query.get(name)
        if previous is None:
            query[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            query[name] = [previous, value]
    return query


class Recording:
    """One request on its way through the front door (http/front.py): the body as the app reads it, the status it
    gets back, and its journal entry, written once the answer is complete. A small body the app left unread is
    read when the response starts and replayed to the app should it ask later. Pure ASGI, so streamed responses
    stay streamed."""

    __slots__ = (
        "journal", "scope", "_receive", "_send", "content_type", "declared", "tenant", "limit", "body", "total",
        "request_done", "app_reads", "replay", "status", "complete", "recorded", "started_at", "started",
    )  # fmt: skip

    def __init__(
        self,
        journal: Journal,
        scope: Scope,
        receive: Receive,
        send: Send,
        content_type: str,
        declared: int | None,
        tenant: str | None,
    ) -> None:
        self.journal = journal
        self.scope = scope
        self._receive = receive
        self._send = send
        self.content_type = content_type
        self.declared = declared
        self.tenant = tenant
        self.limit = JSON_LIMIT if "json" in content_type else TEXT_LIMIT
        self.body = bytearray()
        self.total = 0
        self.request_done = False
        self.app_reads = False
        self.replay: list[Message] = []
        self.status: int | None = None
        self.complete = False
        self.recorded = False
        self.started_at, self.started = time.time(), time.perf_counter()

    async def receive(self) -> Message:
        self.app_reads = True
        if self.replay:
            return self.replay.pop(0)
        message = await self._receive()
        self._on_receive(message)
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self._may_read_unread():
                await self._read_unread_body()
            self.status = message["status"]
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.complete = True
            # Before the last byte leaves: a client that has its answer must find the entry already there.
            self.record()
        await self._send(message)

    async def flush(self) -> None:
        """Record the request now (a fault about to cut the connection calls this through ``flush_journal``)."""
        if self._may_read_unread():
            await self._read_unread_body()
        self.record()

    def record(self, error: Exception | None = None) -> None:
        """Write the entry, once; ``error``: the exception the app raised, which the client gets as a 500."""
        if self.recorded:
            return
        self.recorded = True
        scope = self.scope
        status = self.status if self.complete else None
        extensions = scope.get("extensions") or {}
        fault_note, route_note = extensions.get(FAULT_NOTE), extensions.get(ROUTE_NOTE)
        note = None
        if fault_note is not None or route_note is not None:
            note = "; ".join(n for n in (fault_note, route_note) if isinstance(n, str)) or None
        if error is not None and self.status is None:
            # The outermost Starlette middleware turns an unhandled exception into a 500 envelope.
            status, note = 500, note or f"unhandled {type(error).__name__}"
        query = scope.get("query_string", b"")
        path: str = scope["path"]
        # The entry's JSON form, written directly: this runs for every request the fake answers.
        self.journal.append(
            {
                "method": scope["method"],
                "path": path,
                "query": parse_query(query) if query else {},
                "headers": redact_raw(tuple(scope["headers"])),
                "body": decode_body(self.body, self.total, self.content_type, extensions.get(PARSED_BODY)),
                "status": status,
                "latency_ms": (time.perf_counter() - self.started) * 1000,
                "tenant": self.tenant,
                "kind": kind_of(path),
                "note": note,
                "time": self.started_at,
                "seq": 0,
                "size": self.total,
            }
        )

    def _on_receive(self, message: Message) -> None:
        if message["type"] != "http.request":
            self.request_done = True
            return
        if not message.get("more_body", False):
            self.request_done = True
        chunk: bytes = message.get("body", b"")
        self.total += len(chunk)
        room = self.limit - len(self.body)
        if room > 0:
            self.body += chunk[:room]

    def _may_read_unread(self) -> bool:
        """Whether to read a body the app never asked for (a 404 or a fault answered first): only a small declared
        one (a rejected huge upload is not read just for the journal), and never once the app reads itself: two
        readers of one connection would wait for each other."""
        declared = self.declared
        return not (self.app_reads or self.request_done or declared is None or not 0 < declared <= JSON_LIMIT)

    async def _read_unread_body(self) -> None:
        """Read the body the app left (see ``_may_read_unread``), replayed if the app asks for it later."""

        async def drain() -> None:
            while not self.request_done:
                message = await self._receive()
                self._on_receive(message)
                self.replay.append(message)

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(drain(), UNREAD_BODY_WAIT)


@functools.lru_cache(maxsize=256)
def redact_raw(raw_headers: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """``redact`` of a request's raw headers. Cached: a client sends the same headers on every call, and the result
    is only ever serialized, never changed."""
    return redact((n.decode("latin-1"), v.decode("latin-1")) for n, v in raw_headers)
