"""Redis over TLS (rediss://, Upstash's native protocol) against a real TLS-only redis-server."""

from __future__ import annotations

import redis

from resilience.ratelimit.keys import state_key
from tests.deploy.tls_material import make_ca_and_cert


def _tls_env(tls_redis, ca_file, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": tls_redis.url,
        "REDIS_PASSWORD": tls_redis.password,
        "REDIS_TLS_CA_FILE": str(ca_file),
        "REDIS_CONNECTION_TIMEOUT": "2s",
        **extra,
    }


def test_cache_sessions_and_readyz_work_over_verified_tls(tls_redis, app_server):
    app = app_server(**_tls_env(tls_redis, tls_redis.certs.ca))

    status, body = app.get("/readyz")
    assert status == 200, body
    assert body["checks"]["redis"]["status"] == "ok"

    status, first = app.get("/probe/?set=over-tls&hit=1&open=1")
    assert status == 200, first
    status, second = app.get("/probe/?hit=1")
    assert status == 200, second
    # The limiter and the breakers use get_redis(): the same TLS pool, not a memory fallback.
    assert second["limit"] == {"remaining": first["limit"]["remaining"] - 1, "degraded": False}
    assert second["breaker"] == {"state": "open", "storage": "redis"}
    # The session cookie found its session again and the cache kept the value: both live in the TLS Redis.
    assert (first["hits"], second["hits"]) == (1, 2)
    assert second["cache"] == "over-tls"
    assert second["raw"] == "over-tls"

    # Seen from outside the app: the keys are on the TLS server, under the contract's prefixes.
    client = redis.Redis.from_url(tls_redis.url, password=tls_redis.password, ssl_ca_certs=str(tls_redis.certs.ca))
    try:
        keys = sorted(k.decode() for k in client.scan_iter(match="agentapi:*", count=100))
    finally:
        client.close()
    assert any(k.startswith("agentapi:session:") for k in keys), keys
    assert any(k.startswith("agentapi:cache:") for k in keys), keys
    assert "agentapi:probe:raw" in keys
    assert state_key("ip", None, "deploy-probe") in keys
    assert any(k.startswith("agentapi:cb:deploy.probe:") for k in keys), keys


def test_a_server_certificate_from_an_unknown_ca_is_refused(tls_redis, app_server, tmp_path):
    stranger = make_ca_and_cert(tmp_path / "other-pki", "stranger")
    app = app_server(**_tls_env(tls_redis, stranger.ca))

    status, body = app.get("/readyz")
    assert status == 503, body
    assert body["failed"] == ["redis"]
    assert "CERTIFICATE_VERIFY_FAILED" in body["checks"]["redis"]["error"]


def test_the_system_trust_store_does_not_trust_a_private_ca(tls_redis, app_server):
    # No REDIS_TLS_CA_FILE: verification stays on and uses the system CAs, which never signed this server.
    env = _tls_env(tls_redis, tls_redis.certs.ca)
    del env["REDIS_TLS_CA_FILE"]
    app = app_server(**env)

    status, body = app.get("/readyz")
    assert status == 503, body
    assert "CERTIFICATE_VERIFY_FAILED" in body["checks"]["redis"]["error"]


def test_a_certificate_for_another_host_name_is_refused(tmp_path, app_server):
    from tests.deploy.conftest import TlsRedisProcess

    certs = make_ca_and_cert(tmp_path / "pki-other-host", "elsewhere", hosts=("redis.elsewhere.test",))
    server = TlsRedisProcess(certs=certs, directory=tmp_path / "redis-other-host", password="pw")
    server.start()
    try:
        app = app_server(**_tls_env(server, certs.ca))
        status, body = app.get("/readyz")
    finally:
        server.kill()
    assert status == 503, body
    assert "CERTIFICATE_VERIFY_FAILED" in body["checks"]["redis"]["error"]
    assert "IP address mismatch" in body["checks"]["redis"]["error"] or "hostname" in body["checks"]["redis"]["error"]


def test_verification_can_be_turned_off_only_in_development(tls_redis, app_server):
    app = app_server(**_tls_env(tls_redis, tls_redis.certs.ca, REDIS_TLS_VERIFY="false", REDIS_TLS_CA_FILE=""))
    status, body = app.get("/readyz")
    assert status == 200, body


def test_settings_refuse_unverified_tls_in_production(load_settings, certs):
    production = {
        "DEBUG": "false",
        "SECRET_KEY": "s" * 60,
        "TOKEN_ENCRYPTION_KEY": "ab" * 32,
        "ALLOWED_HOSTS": "admin.example.com",
        "REDIS_URL": "rediss://default:pw@eu1-example.upstash.io:6379",
    }
    values, _ = load_settings(["RESILIENCE_REDIS_CONNECTION_KWARGS"], **production)
    kwargs = values["RESILIENCE_REDIS_CONNECTION_KWARGS"]
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"], kwargs["ssl_ca_certs"]) == ("required", True, None)

    values, error = load_settings(["CACHES"], **production, REDIS_TLS_VERIFY="false")
    assert values is None
    assert "ImproperlyConfigured: REDIS_TLS_VERIFY=false is refused when DEBUG=false" in error


def test_settings_name_a_missing_ca_file(load_settings, tmp_path):
    missing = tmp_path / "nope.pem"
    values, error = load_settings(["CACHES"], DEBUG="true", REDIS_TLS_CA_FILE=str(missing))
    assert values is None
    assert f"REDIS_TLS_CA_FILE='{missing}' is invalid: expected the path of an existing file" in error


def test_tls_options_reach_both_cache_aliases(load_settings, certs):
    values, error = load_settings(
        ["CACHES"], DEBUG="true", REDIS_URL="rediss://redis.internal:6380/0", REDIS_TLS_CA_FILE=str(certs.ca)
    )
    assert values is not None, error
    for alias in ("default", "sessions"):
        pool_kwargs = values["CACHES"][alias]["OPTIONS"]["CONNECTION_POOL_KWARGS"]
        assert pool_kwargs["ssl_ca_certs"] == str(certs.ca.resolve())
        assert pool_kwargs["ssl_cert_reqs"] == "required"


def test_plain_redis_urls_get_no_tls_options(load_settings, certs):
    # A CA file is harmless on redis://: redis-py's plain connection would reject ssl_* arguments.
    values, error = load_settings(
        ["CACHES"], DEBUG="true", REDIS_URL="redis://redis:6379/0", REDIS_TLS_CA_FILE=str(certs.ca)
    )
    assert values is not None, error
    assert not any(k.startswith("ssl_") for k in values["CACHES"]["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"])


def test_mutual_tls_presents_the_configured_client_certificate(tmp_path, app_server):
    from tests.deploy.conftest import TlsRedisProcess

    # One CA signs the server's certificate and the client's (its EKU allows both uses).
    certs = make_ca_and_cert(tmp_path / "pki-mtls", "mtls")
    client = make_ca_and_cert(tmp_path / "pki-mtls", "client")
    server = TlsRedisProcess(certs=certs, require_client_cert=True, directory=tmp_path / "redis-mtls", password="pw")
    server.start()
    try:
        with_cert = app_server(
            **_tls_env(server, certs.ca, REDIS_TLS_CERT_FILE=str(certs.cert), REDIS_TLS_KEY_FILE=str(certs.key))
        )
        # A certificate from a CA the server does not trust is turned away like no certificate at all.
        stranger = app_server(
            **_tls_env(server, certs.ca, REDIS_TLS_CERT_FILE=str(client.cert), REDIS_TLS_KEY_FILE=str(client.key))
        )
        without_cert = app_server(**_tls_env(server, certs.ca))
        ok_status, ok_body = with_cert.get("/readyz")
        stranger_status, stranger_body = stranger.get("/readyz")
        bare_status, bare_body = without_cert.get("/readyz")
    finally:
        server.kill()
    assert ok_status == 200, ok_body
    assert stranger_status == 503, stranger_body
    assert bare_status == 503, bare_body


def test_a_client_certificate_needs_its_key(load_settings, certs):
    values, error = load_settings(["CACHES"], DEBUG="true", REDIS_TLS_CERT_FILE=str(certs.cert))
    assert values is None
    assert "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together" in error
