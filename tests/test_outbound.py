"""The outbound guard: what the fake may contact itself (webhooks, --fetch-inputs). Only loopback traffic is ever
sent: refusals of other addresses are proven with a patched resolver and a send that records every attempt."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image

from mock_server.http import outbound
from mock_server.http.app import create_app
from mock_server.http.outbound import OutboundError, OutboundRefused, Target, check_target, fetch, precheck
from mock_server.http.webhooks import BLOCKED
from mock_server.settings import Settings
from tests.conftest import EDIT, Live
from tests.fixtures.webhook_receiver import Receiver
from tests.test_webhooks import dispatcher, finish, idle, submit

LIMIT = 4096


def _png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    hosts: list[str]
    release: threading.Event

    def do_GET(self) -> None:  # noqa: N802 — the name http.server dispatches to
        self.hosts.append(self.headers.get("Host", ""))
        if self.path == "/image.png":
            self._send(200, _png())
        elif self.path == "/big":
            self._send(200, b"x" * (LIMIT + 1))
        elif self.path == "/chunked-big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(8):
                self.wfile.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://192.0.2.1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/hang":
            self.release.wait(10)
            self._send(200, b"late")
        else:
            self._send(404, b"no")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — the base class's name
        pass


class Origin:
    """A file server on 127.0.0.1 (the only kind of host these tests talk to)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        handler = type("Handler", (_Handler,), {"hosts": [], "release": self.release})
        self.hosts: list[str] = handler.hosts
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A resolver answering from a table (``names``) and a record of every host a request was sent to. A name not
    in the table fails to resolve; nothing reaches the real DNS."""
    seen: dict[str, Any] = {"lookups": [], "sent": [], "names": {}}

    async def getaddrinfo(host: str, port: Any) -> list[Any]:
        seen["lookups"].append(host)
        addresses = seen["names"].get(host)
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (resolver at 10.1.2.3)")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    real_send = httpx.AsyncClient.send

    async def send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        seen["sent"].append(request.url.host)
        assert request.url.host in ("127.0.0.1", "::1"), f"a request left loopback: {request.url}"
        return await real_send(self, request, **kwargs)

    monkeypatch.setattr(outbound, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    return seen


# --- the policy ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9/x", True),
        ("http://127.200.1.1/x", True),
        ("https://[::1]:8443/x", True),
        ("http://[::ffff:127.0.0.1]/x", True),
        ("http://localhost/x", True),  # still resolved before use
        ("http://hooks.localhost./x", True),
        ("http://allowed.example/x", True),
        ("http://ALLOWED.example./x", True),
        ("http://10.0.0.1/x", False),
        ("http://192.0.2.1/x", False),
        ("http://[::ffff:10.0.0.1]/x", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://0.0.0.0/x", False),
        ("http://example.com/x", False),
        ("http://localhost.example.com/x", False),
        ("ftp://127.0.0.1/x", False),
        ("file:///etc/passwd", False),
        ("http:///x", False),
        ("http://127.0.0.1:99999/x", False),
        ("not a url", False),
    ],
)
def test_the_lookup_free_precheck(url: str, allowed: bool) -> None:
    assert (precheck(url, {"allowed.example"}) is None) is allowed


def test_star_allows_every_host() -> None:
    assert precheck("http://192.0.2.1/x", {"*"}) is None
    assert precheck("gopher://192.0.2.1/x", {"*"}) is not None


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://192.0.2.1:8080/x", "http://example.com/x", "http://[::ffff:10.0.0.1]/x"]
)
def test_a_non_loopback_target_is_refused_before_any_lookup_or_connection(network: dict[str, Any], url: str) -> None:
    with pytest.raises(OutboundRefused) as raised:
        asyncio.run(fetch(url, allow=set(), max_bytes=LIMIT, timeout=1))

    assert network["lookups"] == [] and network["sent"] == []
    assert "10.0.0.1" not in str(raised.value) and "192.0.2.1" not in str(raised.value)


def test_a_localhost_name_must_resolve_to_loopback_only(network: dict[str, Any]) -> None:
    network["names"].update({"evil.localhost": ["10.0.0.1"], "mixed.localhost": ["127.0.0.1", "192.0.2.1"]})

    for name in ("evil.localhost", "mixed.localhost", "unknown.localhost"):
        with pytest.raises(OutboundRefused) as raised:
            asyncio.run(check_target(f"http://{name}:8000/x", set()))
        assert not any(secret in str(raised.value) for secret in ("10.0.0.1", "192.0.2.1", "10.1.2.3"))

    assert network["lookups"] == ["evil.localhost", "mixed.localhost", "unknown.localhost"]
    assert network["sent"] == []


def test_a_resolved_name_is_pinned_to_the_checked_address(network: dict[str, Any]) -> None:
    network["names"].update({"app.localhost": ["127.0.0.1"], "six.localhost": ["::1"]})

    assert asyncio.run(check_target("https://app.localhost:8443/a?b=1", set())) == Target(
        "https://127.0.0.1:8443/a?b=1", {"Host": "app.localhost:8443"}, {"sni_hostname": "app.localhost"}
    )
    assert asyncio.run(check_target("http://six.localhost/a", set())).url == "http://[::1]/a"
    assert asyncio.run(check_target("http://allowed.example/a", {"allowed.example"})) == Target(
        "http://allowed.example/a"
    )  # the operator vouched for it: not resolved by us
    assert network["lookups"] == ["app.localhost", "six.localhost"]


# --- fetch --------------------------------------------------------------------------------------------------


def test_fetch_downloads_from_loopback_and_keeps_the_host_header(network: dict[str, Any], origin: Origin) -> None:
    network["names"]["files.localhost"] = ["127.0.0.1"]

    data = asyncio.run(fetch(origin.url("/image.png", "files.localhost"), allow=set(), max_bytes=10**6, timeout=5))

    assert data == _png()
    assert origin.hosts == [f"files.localhost:{origin.port}"]
    assert network["sent"] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/big", f"larger than the limit of {LIMIT} bytes"),
        ("/chunked-big", f"larger than the limit of {LIMIT} bytes"),
        ("/redirect", "HTTP 302 (a redirect, which is not followed)"),
        ("/missing", "HTTP 404"),
    ],
)
def test_fetch_refuses_big_redirected_or_failed_answers(
    network: dict[str, Any], origin: Origin, path: str, reason: str
) -> None:
    with pytest.raises(OutboundError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        asyncio.run(fetch(origin.url(path), allow=set(), max_bytes=LIMIT, timeout=5))

    assert network["sent"] == ["127.0.0.1"]  # the redirect's target was never contacted


def test_fetch_gives_up_after_its_timeout(network: dict[str, Any], origin: Origin) -> None:
    with pytest.raises(OutboundError, match="no answer within 0.2 s"):
        asyncio.run(fetch(origin.url("/hang"), allow=set(), max_bytes=LIMIT, timeout=0.2))


def test_a_connection_failure_names_no_internals(network: dict[str, Any]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(OutboundError) as raised:
        asyncio.run(fetch(f"http://127.0.0.1:{port}/x", allow=set(), max_bytes=LIMIT, timeout=5))

    assert str(raised.value) == "the request failed (ConnectError)"


# --- hooked in: --fetch-inputs and webhook deliveries -------------------------------------------------------


def test_fetch_inputs_downloads_a_loopback_image(
    network: dict[str, Any], origin: Origin, start_server: Callable[..., Live]
) -> None:
    server = start_server(fetch_inputs=True)

    data = server.run_to_end(EDIT, {"prompt": "x", "image": origin.url("/image.png")})

    assert data["status"] == "completed"
    notes = server.backend.find(server.tenant, data["id"]).notes
    assert any("downloaded from" in note for note in notes)


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("http://10.0.0.1/photo.jpg", "the host is not loopback and not in the allowlist"),
        ("http://metadata.localhost/photo.jpg", "the host name does not resolve to loopback only"),
    ],
)
def test_fetch_inputs_refuses_other_hosts_without_contacting_them(
    network: dict[str, Any], image: str, reason: str, start_server: Callable[..., Live]
) -> None:
    network["names"]["metadata.localhost"] = ["169.254.169.254"]
    server = start_server(fetch_inputs=True)
    sent_before = list(network["sent"])

    data = server.run_to_end(EDIT, {"prompt": "x", "image": image})

    assert (data["status"], data["code"]) == ("failed", 1402)
    assert data["error"] == f"Failed to download image from the provided URL: {reason}"
    assert [h for h in network["sent"][len(sent_before) :] if h not in ("127.0.0.1",)] == []
    assert "169.254" not in data["error"]


def test_fetch_inputs_caps_the_download(
    network: dict[str, Any], origin: Origin, start_server: Callable[..., Live]
) -> None:
    server = start_server(fetch_inputs=True, fetch_max_bytes=LIMIT)

    data = server.run_to_end(EDIT, {"prompt": "x", "image": origin.url("/big")})

    assert data["error"].endswith(f"the file is larger than the limit of {LIMIT} bytes")


def test_outbound_allow_reaches_webhooks_and_fetches_alike() -> None:
    settings = Settings(outbound_allow=("files.example",), webhook_allow=("hooks.example",))

    hooks = create_app(settings).state.mock.webhooks
    assert hooks.allowed("https://files.example/x") and hooks.allowed("https://hooks.example/x")
    assert precheck("https://hooks.example/x", settings.outbound_allow) is not None  # webhook_allow: webhooks only


def test_a_webhook_to_a_name_resolving_elsewhere_is_blocked_before_connecting(
    network: dict[str, Any], start_server: Callable[..., Live]
) -> None:
    network["names"]["hooks.localhost"] = ["10.0.0.1"]
    server = start_server(webhook_retry_base=0.01)

    finish(server, submit(server, "http://hooks.localhost:9/hook"))
    idle(server)

    [record] = dispatcher(server).deliveries(server.tenant)
    assert (record["status"], record["note"]) == (None, BLOCKED)
    assert "hooks.localhost" in network["lookups"] and network["sent"] == []


def test_a_webhook_to_a_loopback_name_is_delivered_to_the_checked_address(
    network: dict[str, Any], start_server: Callable[..., Live], receiver: Receiver
) -> None:  # noqa: F811
    port = receiver.url.split(":")[2].split("/")[0]
    network["names"]["hooks.localhost"] = ["127.0.0.1"]
    server = start_server(webhook_retry_base=0.01)

    finish(server, submit(server, f"http://hooks.localhost:{port}/hook"))
    [hook] = receiver.wait_for(1)
    idle(server)

    assert hook.headers["host"] == f"hooks.localhost:{port}"
    assert dispatcher(server).deliveries(server.tenant)[0]["status"] == 200


def test_the_guard_imports_nothing_of_ours() -> None:
    source = outbound.__file__
    assert source is not None
    with open(source, encoding="utf-8") as handle:
        assert "from mock_server" not in handle.read()
