"""gunicorn trusts X-Forwarded-Proto only when SECURE_PROXY_SSL_HEADER says a TLS proxy sets it.

A real gunicorn (gunicorn.conf.py) with production settings; the requests come from
127.0.0.1, the default FORWARDED_ALLOW_IPS, as a client on the host itself would.
"""

from __future__ import annotations

import http.client
import secrets

import pytest

FORWARDED_SCHEME_HEADERS = [
    {"X-Forwarded-Proto": "https"},
    {"X-Forwarded-Ssl": "on"},
    {"X-Forwarded-Protocol": "ssl"},
]


def production(**env: str) -> dict[str, str]:
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TOKEN_ENCRYPTION_KEY": secrets.token_hex(32),
        "ALLOWED_HOSTS": "127.0.0.1",
        "REDIS_ENABLE": "false",
        **env,
    }


def raw_get(server, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    """GET without following redirects, so a 301 to https:// is seen as such."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", path, headers={"Host": server.host, **headers})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.parametrize("headers", FORWARDED_SCHEME_HEADERS, ids=lambda h: next(iter(h)))
def test_without_the_proxy_setting_a_forwarded_scheme_header_is_ignored(app_server, headers):
    server = app_server(**production())
    response = raw_get(server, "/api/v1/openapi.json", headers)
    assert response.status == 301, server.log_tail()
    assert response.getheader("Location") == "https://127.0.0.1/api/v1/openapi.json"
    assert response.getheader("Strict-Transport-Security") is None


def test_behind_the_proxy_setting_x_forwarded_proto_counts(app_server):
    server = app_server(**production(SECURE_PROXY_SSL_HEADER="true"))
    response = raw_get(server, "/api/v1/openapi.json", {"X-Forwarded-Proto": "https"})
    assert response.status == 200, server.log_tail()
    assert response.getheader("Strict-Transport-Security", "").startswith("max-age=31536000")
    # Only the header Django reads counts: another spelling is still plain HTTP.
    assert raw_get(server, "/api/v1/openapi.json", {"X-Forwarded-Ssl": "on"}).status == 301
