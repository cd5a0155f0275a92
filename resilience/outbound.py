"""Outbound HTTP: one bounded request to an http(s) URL, never following a redirect.

Every call the control plane makes to a URL a tenant or an admin typed in (the
upstream probe today, webhooks next) goes through `outbound_request`, so the rules
hold in one place: only `http` and `https`, no credentials in the URL, no redirect
followed (a 3xx is a failure naming its `Location`, so a header meant for one origin
never reaches another), one deadline for the whole exchange, and at most
`max_bytes` of the body read.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 64 * 1024
_CHUNK = 8192
_LOCATION_SHOWN = 200


@dataclass(frozen=True)
class OutboundResponse:
    """A response that arrived in time: its status, headers and the first bytes of its body."""

    status: int
    headers: dict[str, str]
    excerpt: bytes
    truncated: bool
    elapsed_ms: float


class OutboundFailure(Exception):
    """A request that was refused before sending or did not yield a usable response.

    `kind` is one of the class constants; `location` is set for a refused redirect.
    """

    INVALID_URL = "invalid_url"
    SCHEME = "scheme"
    REDIRECT = "redirect"
    TIMEOUT = "timeout"
    CONNECTION = "connection"

    def __init__(self, kind: str, message: str, *, status: int | None = None, location: str = ""):
        self.kind = kind
        self.message = message
        self.status = status
        self.location = location
        super().__init__(message)

    @property
    def is_outage(self) -> bool:
        """Return True if the far side did not answer (as opposed to answering wrongly or being refused)."""
        return self.kind in (self.TIMEOUT, self.CONNECTION)


def _shown(value: str) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in value)
    return printable if len(printable) <= _LOCATION_SHOWN else printable[:_LOCATION_SHOWN] + "…"


def _target(url: str) -> tuple[str, str, int | None, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundFailure(OutboundFailure.INVALID_URL, f"The URL is not valid ({exc}).") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = _shown(scheme or "none")
        raise OutboundFailure(OutboundFailure.SCHEME, f"Only http:// and https:// URLs are called (got {shown}://).")
    if not parts.hostname:
        raise OutboundFailure(OutboundFailure.INVALID_URL, "The URL has no host.")
    if parts.username is not None or parts.password is not None:
        # Userinfo would be a second, unaudited credential channel: refuse rather than drop it.
        raise OutboundFailure(OutboundFailure.INVALID_URL, "The URL must not contain user:password@.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname, port, path


def outbound_url_check(url: str) -> None:
    """Raise OutboundFailure if `url` is not one `outbound_request` would call."""
    _target(url)


def outbound_request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> OutboundResponse:
    """Send one request to `url` within `timeout` seconds; return the response or raise OutboundFailure."""
    scheme, host, port, path = _target(url)
    if scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    started = time.perf_counter()
    # A per-socket timeout alone lets a server that drips one byte at a time hold us forever:
    # the watchdog closes the socket when the whole exchange's deadline passes.
    expired = threading.Event()
    opened: list[socket.socket] = []

    def expire() -> None:
        expired.set()
        for sock in opened:  # http.client drops its own reference once the response owns the socket
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.connect()
        opened.append(connection.sock)
        if expired.is_set():
            raise TimeoutError
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = response.read(min(_CHUNK, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if expired.is_set():
            raise TimeoutError
    except TimeoutError as exc:
        raise OutboundFailure(OutboundFailure.TIMEOUT, f"No complete answer within {timeout:g}s.") from exc
    except ssl.SSLError as exc:
        raise OutboundFailure(OutboundFailure.CONNECTION, f"TLS failed: {exc.reason or exc}.") from exc
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise OutboundFailure(OutboundFailure.TIMEOUT, f"No complete answer within {timeout:g}s.") from exc
        raise OutboundFailure(OutboundFailure.CONNECTION, f"Connection failed: {type(exc).__name__}: {exc}") from exc
    finally:
        watchdog.cancel()
        connection.close()
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    excerpt = b"".join(chunks)
    response_headers = {name.lower(): value for name, value in response.getheaders()}
    if 300 <= response.status < 400:
        location = _shown(response_headers.get("location", ""))
        raise OutboundFailure(
            OutboundFailure.REDIRECT,
            f"HTTP {response.status} redirect to {location or '(no Location)'} not followed.",
            status=response.status,
            location=location,
        )
    return OutboundResponse(
        status=response.status,
        headers=response_headers,
        excerpt=excerpt[:max_bytes],
        truncated=len(excerpt) > max_bytes,
        elapsed_ms=elapsed,
    )
