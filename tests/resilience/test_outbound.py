"""Outbound calls against real local servers: no redirect followed, the credential stays with its origin.

The upstream probe (admin action and `probe_upstreams`) sends the tenant's decrypted
credential; a redirect to another host or port, or from https to http, must never carry
it there, and a hostile upstream cannot hold the probe or fill its memory.
"""

from __future__ import annotations

import http.server
import io
import json
import socket
import ssl
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from resilience.breakers import breaker
from resilience.outbound import OutboundFailure, outbound_request
from tenants.exceptions import TenantsError
from tenants.models import Tenant
from tenants.services.tenants import tenant_set_upstream_credentials
from tenants.upstream import upstream_check
from tests.deploy.tls_material import make_ca_and_cert
from tests.tenants.factories import make_tenant

CREDENTIAL = "upstream-secret-4711"


def tenant_at(url: str, slug: str = "acme"):
    tenant = make_tenant(slug, upstream_url=url)
    tenant_set_upstream_credentials(tenant=tenant, secret=CREDENTIAL, actor=None)
    tenant.refresh_from_db()
    return tenant


def port_of(server) -> int:
    return server.server_address[1]


def authorizations(handler) -> list[str]:
    return [headers.get("Authorization", "") for headers in handler.seen]


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_redirect_is_a_failed_probe_naming_the_location_and_the_credential_stays(upstream, second_upstream, host):
    first, first_handler = upstream
    second, second_handler = second_upstream
    location = f"http://{host}:{port_of(second)}/status"
    first_handler.redirect_to = location
    tenant = tenant_at(f"http://127.0.0.1:{port_of(first)}")
    result = upstream_check(tenant)
    assert not result.ok and result.status_code == 302
    assert location in result.error and "not followed" in result.error
    assert authorizations(first_handler) == [f"Bearer {CREDENTIAL}"]  # the configured origin gets it
    assert second_handler.hits == 0 and authorizations(second_handler) == []
    assert result.breaker_state == "closed"  # a misconfiguration, not an outage


@pytest.fixture
def tls_redirector(tmp_path, monkeypatch, second_upstream):
    """An https:// upstream (its CA trusted by the probe) whose /status redirects to plain http://."""
    certs = make_ca_and_cert(tmp_path / "pki", "upstream")
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    second, _ = second_upstream
    target = f"http://127.0.0.1:{port_of(second)}/status"
    seen: list[dict] = []

    class Redirector(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            self.send_response(301)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.cert), str(certs.key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{port_of(server)}", target, seen
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_an_https_to_http_redirect_is_refused(tls_redirector, second_upstream):
    url, target, seen = tls_redirector
    _, second_handler = second_upstream
    result = upstream_check(tenant_at(url))
    assert not result.ok and result.status_code == 301 and target in result.error
    assert [h.get("Authorization") for h in seen] == [f"Bearer {CREDENTIAL}"]
    assert second_handler.hits == 0


@pytest.mark.django_db
def test_probe_upstreams_reports_the_redirect_and_exits_1(upstream, second_upstream):
    first, first_handler = upstream
    second, second_handler = second_upstream
    first_handler.redirect_to = f"http://localhost:{port_of(second)}/status"
    tenant_at(f"http://127.0.0.1:{port_of(first)}")
    out = io.StringIO()
    with pytest.raises(CommandError, match="acme") as failure:
        call_command("probe_upstreams", json=True, stdout=out)
    assert failure.value.returncode == 1
    assert second_handler.hits == 0
    assert first_handler.redirect_to in json.dumps(json.loads(out.getvalue())["results"])


class HugeBody(http.server.BaseHTTPRequestHandler):
    """Streams an endless 200 body; counts what it managed to send."""

    sent = 0

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        chunk = b" " * 65536
        try:
            for _ in range(16 * 1024):  # 1 GiB if nobody stops reading
                self.wfile.write(chunk)
                type(self).sent += len(chunk)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile_server():
    """Serve a given handler class on 127.0.0.1; yield its base URL."""
    servers = []

    def serve(handler) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{port_of(server)}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_a_huge_body_is_not_read_beyond_the_bound(hostile_server):
    handler = type("Huge", (HugeBody,), {"sent": 0})
    result = upstream_check(tenant_at(hostile_server(handler)), timeout=10)
    assert not result.ok and result.status_code == 200 and "larger than 65536 bytes" in result.error
    response = outbound_request(hostile_server(handler) + "/status", max_bytes=1000)
    assert response.status == 200 and response.truncated and len(response.excerpt) == 1000
    assert handler.sent < 64 * 1024 * 1024  # the probe stopped reading: nowhere near the 1 GiB on offer


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


class Drip(http.server.BaseHTTPRequestHandler):
    """Answers 200, then one body byte per 0.2 s: each read is quick, the whole never ends."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.mark.django_db
def test_a_server_that_never_answers_times_out_and_counts_as_an_outage(silent_port, settings):
    settings.RESILIENCE_BREAKER_FAILURE_THRESHOLD = 1
    started = time.monotonic()
    result = upstream_check(tenant_at(f"http://127.0.0.1:{silent_port}"), timeout=1)
    assert time.monotonic() - started < 3
    assert not result.ok and result.status_code is None and "within 1s" in result.error
    assert breaker("upstream.acme").current_state == "open"


def test_a_drip_fed_answer_is_cut_at_the_deadline(hostile_server):
    url = hostile_server(Drip)
    started = time.monotonic()
    with pytest.raises(OutboundFailure) as failure:
        outbound_request(url, timeout=1)
    assert time.monotonic() - started < 3
    assert failure.value.kind == OutboundFailure.TIMEOUT


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/pub", "gopher://127.0.0.1:70/"])
def test_non_http_schemes_are_refused_before_any_call(url, settings):
    settings.RESILIENCE_BREAKER_FAILURE_THRESHOLD = 1
    tenant = tenant_at("http://127.0.0.1:1")
    Tenant.objects.filter(pk=tenant.pk).update(upstream_url=url)  # a row older than the validator
    tenant.refresh_from_db()
    result = upstream_check(tenant)
    assert not result.ok and result.status_code is None
    assert "Only http:// and https://" in result.error
    with pytest.raises(OutboundFailure) as failure:
        outbound_request(url)
    assert failure.value.kind == OutboundFailure.SCHEME


@pytest.mark.django_db
def test_a_tenant_cannot_be_given_an_ftp_upstream():
    with pytest.raises(TenantsError, match="upstream_url"):
        make_tenant("ftp", upstream_url="ftp://127.0.0.1/pub")


def test_credentials_in_the_url_are_refused(upstream_url):
    with pytest.raises(OutboundFailure) as failure:
        outbound_request(upstream_url.replace("http://", "http://user:pw@") + "/status")
    assert failure.value.kind == OutboundFailure.INVALID_URL and "user:password@" in failure.value.message


def test_a_plain_answer_reports_status_headers_and_excerpt(upstream_url):
    response = outbound_request(upstream_url + "/status")
    assert response.status == 200 and response.headers["content-type"] == "application/json"
    assert json.loads(response.excerpt) == {"status": "stable", "agent_type": "claude"}
    assert not response.truncated
