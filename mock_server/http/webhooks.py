"""Webhook deliveries: when a prediction submitted with ``?webhook=URL`` ends, its bare prediction object is POSTed
to the URL, signed as the docs describe (reference §5), retried, and optionally delivered adversarially.

Delivery runs on the server's event loop; ``Backend.on_terminal`` may fire on any thread, so events are handed
over with ``call_soon_threadsafe``. Only loopback hosts (plus ``--webhook-allow``) are ever contacted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.contract.errors import NotFound
from mock_server.contract.tenants import tenant_id
from mock_server.http import outbound
from mock_server.http.journal import Journal
from mock_server.http.routes import authenticate, envelope
from mock_server.http.state import state_of
from mock_server.logs import event as log_event
from mock_server.logs import get_logger
from mock_server.model.backend import Backend
from mock_server.model.predictions import Prediction
from mock_server.model.store import SERVER_TTL
from mock_server.settings import Settings

if TYPE_CHECKING:
    import httpx

SIGNATURE_VERSION = "v3"
SECRET_PREFIX = "whsec_"
MAX_ATTEMPTS = 4  # the first try plus the documented "up to 3" retries
EVENT_ID_LENGTH = 25  # the docs' sample webhook-id is the first 25 hex digits of its task id
BLOCKED = "blocked: host not in the webhook allowlist"
_BAD_KEY = "not-the-account-secret"
_log = get_logger("webhooks")


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v3,<hex HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``, keyed by the secret without ``whsec_`` as text."""
    key = secret.removeprefix(SECRET_PREFIX).encode()
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION},{digest}"


def new_secret(seed: int | None = None) -> str:
    raw = secrets.token_bytes(32) if seed is None else random.Random(f"webhook-secret:{seed}").randbytes(32)
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def payload(prediction: Prediction, backend: Backend) -> bytes:
    """The bare prediction object (no envelope) with its input, links for the base URL it was submitted on."""
    view = backend.view_now(prediction, prediction.base_url)
    body = {"id": view.pop("id"), "model": view.pop("model"), "input": prediction.input, **view}
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Adversary:
    """How deliveries misbehave, for testing receivers. See ``WebhookDispatcher.configure``."""

    delay: float = 0.0
    duplicate: bool = False
    out_of_order: bool = False
    bad_signature: bool = False
    hold_seconds: float = 1.0


@dataclass(frozen=True)
class Event:
    id: str
    prediction_id: str
    prediction_status: str
    tenant: str
    url: str
    body: bytes
    created_at: float


class WebhookDispatcher:
    """Signs and sends webhook events; keeps a record of every attempt in the store's ``deliveries`` log.

    Args:
        settings: secret, allowlist, retry backoff base and timeout.
        backend: the dispatcher listens to its ``on_terminal`` (fired once per prediction, by the worker that ended
            it) and ``on_submit`` (to end time-progressed predictions on time even when nobody polls).
        journal: where every delivery attempt is recorded too.
        loop: returns the server's event loop while it serves (None otherwise).
    """

    LOG = "deliveries"

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        journal: Journal | None = None,
        loop: Callable[[], asyncio.AbstractEventLoop | None] | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.store = backend.store
        self._journal = journal
        self._server_loop_of = loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Condition()
        self._pending = 0
        self._held: dict[str, list[Event]] = {}  # out-of-order mode, by tenant; loop only
        self._hold_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tls: ssl.SSLContext | None = None
        backend.on_terminal.append(self._on_terminal)
        backend.on_submit.append(self.watch)

    @property
    def secret(self) -> str:
        """The account secret, the same for every worker sharing the store (the first one to start draws it)."""
        found = self.store.get("server", "webhook-secret")
        if found is None:
            secret = self.settings.webhook_secret or new_secret(self.settings.seed)
            secret = secret if secret.startswith(SECRET_PREFIX) else SECRET_PREFIX + secret
            self.store.add("server", "webhook-secret", {"secret": secret}, ttl=SERVER_TTL)
            found = self.store.get("server", "webhook-secret") or {"secret": secret}
        return str(found["secret"])

    # --- control ---------------------------------------------------------------------------------------

    def configure(
        self,
        tenant: str | None = None,
        delay: float = 0,
        duplicate: bool = False,
        out_of_order: bool = False,
        bad_signature: bool = False,
        hold_seconds: float = 1.0,
    ) -> None:
        """Make deliveries adversarial for one tenant (or, with no tenant, for every tenant without its own).

        Args:
            delay: seconds to wait before the first attempt of each delivery.
            duplicate: deliver every event twice (same webhook-id, same body, freshly signed).
            out_of_order: hold events and release them newest first: when a second event for the same tenant
                arrives, or ``hold_seconds`` after the first one if none does.
            bad_signature: sign with a key that is not the account secret.
        """
        if delay < 0 or hold_seconds < 0:
            raise ValueError("delay and hold_seconds must not be negative")
        tenant = None if tenant is None else tenant_id(tenant)
        mode = Adversary(float(delay), duplicate, out_of_order, bad_signature, float(hold_seconds))
        self.store.put("webhook-mode", tenant or "*", {**asdict(mode), "tenant": tenant}, tenant=tenant or "")

    def adversary(self, tenant: str | None) -> Adversary:
        tenant = None if tenant is None else tenant_id(tenant)
        found = (self.store.get("webhook-mode", tenant) if tenant else None) or self.store.get("webhook-mode", "*")
        return Adversary(**{k: v for k, v in found.items() if k != "tenant"}) if found else Adversary()

    def reset(self, tenant: str | None = None) -> None:
        """Forget adversarial settings and recorded deliveries (one tenant's, or all)."""
        tenant = None if tenant is None else tenant_id(tenant)
        if tenant is None:
            for mode in self.store.records("webhook-mode"):
                self.store.delete("webhook-mode", mode["tenant"] or "*")
            self.store.reset_log(self.LOG)
        else:
            self.store.delete("webhook-mode", tenant)
            self.store.reset_log(self.LOG, tenant)

    def deliveries(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every attempt, oldest first: prediction_id, url, attempt, status (None: no HTTP answer), event_id,
        timestamp, signature, error, note, latency_ms, prediction_status."""
        tenant = None if tenant is None else tenant_id(tenant)
        return [{k: v for k, v in r.items() if k != "seq"} for r in self.store.entries(self.LOG, tenant)]

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def wait_idle(self, timeout: float) -> bool:
        """Block (not on the server's loop) until no event is waiting or in delivery; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def allowed(self, url: str) -> bool:
        """The lookup-free part of the outbound guard; each attempt also runs the resolving check."""
        return outbound.precheck(url, self.allow) is None

    @property
    def allow(self) -> tuple[str, ...]:
        return self.settings.webhook_allow + self.settings.outbound_allow

    # --- timers: time-progressed predictions end even when nobody polls -------------------------------

    def watch(self, prediction: Prediction) -> None:
        """Arrange for a time-progressed prediction with a webhook to end on time. Call on the server's loop."""
        if prediction.webhook is None or self.backend.clock.frozen or prediction.due_at() is None:
            return
        self._loop = asyncio.get_running_loop()
        self._schedule_tick(prediction.id, prediction.due_at())

    def resume(self) -> int:
        """After a (re)start: watch every unfinished prediction with a webhook in the store. Returns how many."""
        resumed = 0
        for prediction in self.backend.predictions():
            if prediction.webhook is not None and not prediction.terminal:
                self.watch(prediction)
                resumed += 1
        if self.backend.slots is not None:
            # Slots may have freed while no server ran: start what waits for them (and watch those with webhooks).
            for tenant in {p.tenant for p in self.backend.predictions() if p.queued and not p.terminal}:
                self._start_queued(tenant)
        return resumed

    def _schedule_tick(self, prediction_id: str, due: float | None) -> None:
        if due is None or self._loop is None:
            return
        # A few ms late rather than early: the clock is wall time and the loop's timer is monotonic.
        timer = self._loop.call_later(max(0.0, due - self.backend.clock.now()) + 0.002, self._tick, prediction_id)
        self._timers[prediction_id] = timer

    def close(self) -> None:
        """At shutdown: the timers go (a restart re-arms them from the store), so nothing ticks on a stopped app."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _tick(self, prediction_id: str) -> None:
        self._timers.pop(prediction_id, None)
        try:
            prediction = self.backend.get(None, prediction_id)  # ending it here fires on_terminal
        except NotFound:
            return
        if not prediction.terminal:
            self._schedule_tick(prediction_id, prediction.due_at())

    # --- events -----------------------------------------------------------------------------------------

    def _on_terminal(self, prediction: Prediction) -> None:
        if self.backend.slots is not None:
            # A slot just freed: a queued prediction of this key may start, and nobody may be polling it.
            self._hand_over(self._start_queued, prediction.tenant)
        if prediction.webhook is None:
            return
        # Only the worker that ended the prediction gets here; the claim also covers a retried store update.
        if not self.store.claim(f"webhook:{prediction.id}:{prediction.created_at}"):
            return
        event = Event(
            prediction.id[:EVENT_ID_LENGTH],
            prediction.id,
            prediction.status,
            prediction.tenant,
            prediction.webhook,
            payload(prediction, self.backend),
            prediction.created_at,
        )
        loop = self._server_loop()
        if loop is None:
            self._record(event, 1, None, None, None, None, 0.0, "not delivered: the server is not running")
            return
        with self._lock:
            self._pending += 1
        try:
            loop.call_soon_threadsafe(self._accept, event)
        except RuntimeError:  # the loop closed in between
            self._done(1)
            self._record(event, 1, None, None, None, None, 0.0, "not delivered: the server is not running")

    def _hand_over(self, work: Callable[[str], None], tenant: str) -> None:
        loop = self._server_loop()
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(work, tenant)

    def _start_queued(self, tenant: str) -> None:
        """Start the tenant's queued predictions that have a free slot now; watch those with webhooks."""
        for prediction in self.backend.admit(tenant):
            self.watch(prediction)

    def _server_loop(self) -> asyncio.AbstractEventLoop | None:
        loop = self._server_loop_of() if self._server_loop_of is not None else self._loop
        return loop if loop is not None and not loop.is_closed() else None

    def _current(self, event: Event) -> bool:
        """False once a reset removed the prediction: its events belong to an old test and are dropped."""
        found = self.store.get("prediction", event.prediction_id)
        return found is not None and found.get("created_at") == event.created_at

    def _accept(self, event: Event) -> None:
        if not self._current(event):
            self._done(1)
            return
        adversary = self.adversary(event.tenant)
        if not self.allowed(event.url):
            self._record(event, 1, None, None, None, None, 0.0, BLOCKED)
            self._done(1)
            return
        if not adversary.out_of_order:
            self._spawn([event], adversary)
            return
        held = self._held.setdefault(event.tenant, [])
        held.append(event)
        if len(held) >= 2:
            self._release(event.tenant)
        else:
            loop = asyncio.get_running_loop()
            self._hold_timers[event.tenant] = loop.call_later(adversary.hold_seconds, self._release, event.tenant)

    def _release(self, tenant: str) -> None:
        timer = self._hold_timers.pop(tenant, None)
        if timer is not None:
            timer.cancel()
        held = self._held.pop(tenant, [])
        current = [event for event in held if self._current(event)]
        self._done(len(held) - len(current))
        if current:
            self._spawn(current[::-1], self.adversary(tenant))

    def _spawn(self, events: list[Event], adversary: Adversary) -> None:
        task = asyncio.ensure_future(self._deliver(events, adversary))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, events: list[Event], adversary: Adversary) -> None:
        """Send events one after another (their order is the point in out-of-order mode)."""
        import httpx  # on the first delivery, not with the server: most sessions register no webhook

        try:
            if adversary.delay:
                await asyncio.sleep(adversary.delay)
            async with httpx.AsyncClient(
                timeout=self.settings.webhook_timeout,
                trust_env=False,
                follow_redirects=False,
                verify=self._verify(events),
            ) as client:
                for event in events:
                    for copy in range(2 if adversary.duplicate else 1):
                        await self._attempts(client, event, adversary, "duplicate" if copy else None)
        finally:
            self._done(len(events))

    def _verify(self, events: list[Event]) -> ssl.SSLContext | bool:
        # Loading the CA store costs ~100 ms on the loop: only for https targets, and only once.
        if not any(urlsplit(e.url).scheme == "https" for e in events):
            return False
        if self._tls is None:
            import httpx

            self._tls = httpx.create_ssl_context()
        return self._tls

    async def _attempts(self, client: httpx.AsyncClient, event: Event, adversary: Adversary, note: str | None) -> bool:
        import httpx

        for attempt in range(1, MAX_ATTEMPTS + 1):
            if not self._current(event):
                return False
            timestamp = int(time.time())
            key = _BAD_KEY if adversary.bad_signature else self.secret
            signature = sign(key, event.id, timestamp, event.body)
            headers = {
                "Content-Type": "application/json",
                "webhook-id": event.id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature,
            }
            status: int | None = None
            error: str | None = None
            try:  # before each attempt: what a name resolves to may have changed since the last one
                target = await outbound.check_target(event.url, self.allow)
            except outbound.OutboundRefused:
                self._record(event, attempt, None, None, None, None, 0.0, BLOCKED)
                return False
            started = time.perf_counter()
            try:
                response = await client.post(
                    target.url, content=event.body, headers={**headers, **target.headers}, extensions=target.extensions
                )
                status = response.status_code
            except httpx.TimeoutException:
                error = f"timeout after {self.settings.webhook_timeout:g} s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            latency_ms = (time.perf_counter() - started) * 1000
            if not self._current(event):
                return False
            notes = [n for n in (note, "bad signature" if adversary.bad_signature else None) if n]
            self._record(
                event, attempt, status, timestamp, signature, error, latency_ms, "; ".join(notes) or None, headers
            )
            if status is not None and 200 <= status < 300:
                return True
            if attempt < MAX_ATTEMPTS:
                await asyncio.sleep(self.settings.webhook_retry_base * 2 ** (attempt - 1))
        return False

    def _done(self, count: int) -> None:
        with self._lock:
            self._pending -= count
            self._lock.notify_all()

    def _record(
        self,
        event: Event,
        attempt: int,
        status: int | None,
        timestamp: int | None,
        signature: str | None,
        error: str | None,
        latency_ms: float,
        note: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        record = {
            "prediction_id": event.prediction_id,
            "prediction_status": event.prediction_status,
            "url": event.url,
            "attempt": attempt,
            "status": status,
            "event_id": event.id,
            "timestamp": timestamp,
            "signature": signature,
            "error": error,
            "note": note,
            "latency_ms": round(latency_ms, 3),
        }
        self.store.append(self.LOG, record, tenant=event.tenant)
        _log_attempt(event, attempt, status, error, latency_ms, note, sent=signature is not None)
        if self._journal is not None:
            attempted = f"attempt {attempt}/{MAX_ATTEMPTS}" if signature is not None else None
            journal_note = "; ".join(n for n in (attempted, error, note) if n)
            self._journal.record_delivery(
                url=event.url,
                status=status,
                body=event.body,
                headers=headers or {},
                latency_ms=latency_ms,
                tenant=event.tenant,
                note=journal_note,
            )


def _log_attempt(
    event: Event,
    attempt: int,
    status: int | None,
    error: str | None,
    latency_ms: float,
    note: str | None,
    *,
    sent: bool,
) -> None:
    delivered = status is not None and 200 <= status < 300
    result = "delivered" if delivered else "failed" if sent else "blocked" if note == BLOCKED else "not sent"
    log_event(
        _log,
        "webhook.delivery",
        level=logging.INFO if delivered else logging.WARNING,
        result=result,
        prediction=event.prediction_id,
        event_id=event.id,
        status=status,
        error=error,
        attempt=attempt,
        max_attempts=MAX_ATTEMPTS,
        url=_without_secrets(event.url),
        latency_ms=round(latency_ms, 1),
        note=note if note != BLOCKED else None,
        tenant=event.tenant,
    )


def _without_secrets(url: str) -> str:
    """The receiver's URL without what may carry a credential: user info, query and fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: such a URL was never contacted, and a log line must not fail the delivery
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def dispatcher_of(request: Request) -> WebhookDispatcher:
    return state_of(request).webhooks


async def webhook_secret(request: Request) -> Response:
    authenticate(request)
    return envelope({"secret": dispatcher_of(request).secret})


routes: list[BaseRoute] = [Route("/api/v3/webhook/secret", webhook_secret, methods=["GET"])]
