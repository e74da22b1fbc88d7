"""The fake's only way out: every request it makes itself (webhook deliveries, ``--fetch-inputs`` downloads)
passes this guard first, so a client of the fake cannot make it reach hosts on the network it runs in.

Policy, in order:
- only ``http``/``https`` URLs with a host;
- a host in the allowlist (``--outbound-allow``, plus ``--webhook-allow`` for deliveries; ``*`` allows all) goes;
- an IP literal goes only when it is loopback (an IPv4-mapped IPv6 address counts as its IPv4 address);
- ``localhost`` and ``*.localhost`` names go only when EVERY address they resolve to is loopback (looked up with
  the event loop's resolver, which runs ``getaddrinfo`` in a thread), and the connection is then made to the
  checked address, so a second lookup cannot answer differently (DNS rebinding);
- any other name is refused without a lookup: the fake sends no DNS query for a host a client made up.

No redirect is followed (a 3xx is an answer like any other); a download is capped while it streams; messages say
what was refused in general terms and never echo resolved addresses or exception text.

This module imports nothing of ours, so the model layer may use it as it uses ``settings``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundRefused(Exception):
    """The target is not one the fake may contact; nothing was sent. The message is safe to show a client."""


class OutboundError(Exception):
    """A permitted request that failed (connection, timeout, status, size). The message is safe to show."""


@dataclass(frozen=True)
class Target:
    """Where to send a request to ``url`` after the check: the URL to connect to (its host replaced by the
    checked address when a name was resolved), the Host header and TLS server name that keep the original host."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def host_of(url: str) -> tuple[SplitResult, str] | None:
    """The parsed URL and its normalised host (lower case, no trailing dot), or None when unusable."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 — raises ValueError for a port out of range or not a number
    except ValueError:
        return None
    if parts.scheme not in SCHEMES or not host:
        return None
    return parts, host


def url_problem(url: str, *, max_length: int = 2048) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a host (None when it is). Whitespace and control characters
    are refused outright: such a URL would be echoed into the journal and into webhook records."""
    if len(url) > max_length:
        return f"must be at most {max_length} characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or host_of(url) is None:
        return "must be an absolute http(s) URL with a host"
    return None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _localhost_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def _allowed(host: str, allow: Collection[str]) -> bool:
    normalised = {h.lower().rstrip(".") for h in allow}
    return "*" in normalised or host in normalised


def precheck(url: str, allow: Collection[str]) -> str | None:
    """Why ``url`` is refused without any lookup, or None when it may go on to :func:`check_target`."""
    parsed = host_of(url)
    if parsed is None:
        return "only absolute http(s) URLs with a host are allowed"
    _, host = parsed
    if _allowed(host, allow):
        return None
    address = _ip(host)
    if address is not None:
        return None if address.is_loopback else "the host is not loopback and not in the allowlist"
    if _localhost_name(host):
        return None
    return "the host is not loopback and not in the allowlist"


async def check_target(url: str, allow: Collection[str]) -> Target:
    """The :class:`Target` to send ``url``'s request to, or :class:`OutboundRefused` before any connection."""
    reason = precheck(url, allow)
    if reason is not None:
        raise OutboundRefused(reason)
    parts, host = host_of(url) or (None, "")
    assert parts is not None
    if _allowed(host, allow) or _ip(host) is not None:
        return Target(url)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    try:
        infos = await getaddrinfo(host, port)
    except (OSError, UnicodeError):
        raise OutboundRefused("the host name does not resolve") from None
    addresses = [_ip(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses or not all(a is not None and a.is_loopback for a in addresses):
        raise OutboundRefused("the host name does not resolve to loopback only")
    first = addresses[0]
    assert first is not None
    literal = f"[{first}]" if first.version == 6 else str(first)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rpartition("@")[2]  # what the client would have sent, minus any credentials
    return Target(pinned, {"Host": host_header}, {"sni_hostname": host})


async def fetch(url: str, *, allow: Collection[str], max_bytes: int, timeout: float) -> bytes:
    """GET ``url`` through the guard: no redirects, no proxies from the environment, at most ``max_bytes``.

    Raises:
        OutboundRefused: the target is not allowed (nothing was sent).
        OutboundError: the request failed, answered other than 200, or was larger than ``max_bytes``.
    """
    import httpx  # on the first download, not with the server: most sessions never fetch an input

    target = await check_target(url, allow)
    data = bytearray()
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            # identity: the cap counts the bytes we keep, and a compressed answer could expand far past it.
            headers = {**target.headers, "Accept-Encoding": "identity"}
            request = client.build_request("GET", target.url, headers=headers, extensions=target.extensions)
            response = await client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    kind = "a redirect, which is not followed" if response.is_redirect else "not 200"
                    raise OutboundError(f"the server answered HTTP {response.status_code} ({kind})")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise OutboundError(f"the file is larger than the limit of {max_bytes} bytes")
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise OutboundError(f"the file is larger than the limit of {max_bytes} bytes")
            finally:
                await response.aclose()
    except httpx.TimeoutException:
        raise OutboundError(f"no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise OutboundError(f"the request failed ({type(exc).__name__})") from None
    return bytes(data)


async def getaddrinfo(host: str, port: int) -> list[Any]:
    """The event loop's resolver (``getaddrinfo`` in a worker thread), asyncio's or uvloop's alike; one name for
    tests to replace, so nothing reaches the real DNS."""
    return list(await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM))
