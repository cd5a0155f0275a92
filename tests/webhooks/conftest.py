"""A real webhook receiver (threaded http.server) and the Standard Webhooks verification, written from the spec."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.server
import json
import threading
import time

import pytest
from django.test import override_settings

from tests.tenants.factories import make_tenant


class InvalidSignature(Exception):
    pass


def verify(secret: str, headers: dict, body: bytes, *, tolerance: int = 300, now: float | None = None) -> dict:
    """Verify a delivery the way the Standard Webhooks reference libraries do; return the parsed payload."""
    try:
        msg_id = headers["webhook-id"]
        timestamp = headers["webhook-timestamp"]
        signatures = headers["webhook-signature"]
    except KeyError as exc:
        raise InvalidSignature(f"missing header {exc}") from None
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        raise InvalidSignature("timestamp outside the tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    for versioned in signatures.split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(expected, signature.encode()):
            return json.loads(body)
    raise InvalidSignature("no matching signature")


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request; stop() and start() keep its port."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        self.fail_next = 0  # answer 500 to this many requests, then `status`
        self.redirect_to = ""
        self.delay = 0.0
        self.body = b"ok"
        self.port = 0
        self._server = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", receiver.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = receiver.status
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    status = 500
                self.send_response(status)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the sender stopped reading: what a bounded read does
                    self.wfile.write(receiver.body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def payloads(self, secret: str) -> list[dict]:
        """Return every received payload, verifying each signature on the way."""
        return [verify(secret, headers, body) for headers, body in self.requests]


@pytest.fixture
def receiver():
    """A running webhook receiver; its `requests` list every (headers, body) it got."""
    served = Receiver()
    yield served
    served.stop()


@pytest.fixture
def second_receiver():
    """Another receiver: where a redirect points."""
    served = Receiver()
    yield served
    served.stop()


@pytest.fixture
def tenant(db):
    return make_tenant("acme")


@pytest.fixture(autouse=True)
def _fast_webhooks():
    """Retries within milliseconds, so tests wait on real servers, not on the production backoff."""
    with override_settings(
        WEBHOOKS_BACKOFF_BASE=0.01,
        WEBHOOKS_BACKOFF_MAX=0.05,
        WEBHOOKS_TIMEOUT=2.0,
        WEBHOOKS_BREAKER_RESET=0.3,
        WEBHOOKS_POLL_INTERVAL=0,
        WEBHOOKS_ALLOW_PRIVATE_TARGETS=True,  # the receivers listen on 127.0.0.1
    ):
        yield
