"""Secrets never show: API key secrets, upstream credentials, TOKEN_ENCRYPTION_KEY and the Redis password.

A subprocess app (DEBUG=false, password-protected redis-server, REDIS_URL carrying the
password and REDIS_PASSWORD set) signs in to the admin and the portal, opens every
admin, ops and portal page and JSON twin, calls the API and the operations commands;
every body, header and DEBUG-level log line is grepped for each secret.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile

import pytest
import redis

from agentapi_admin.redis_process import RedisProcess
from tests.conftest import BASE_DIR, clean_env

REDIS_PASSWORD = "redis-pw-" + secrets.token_hex(8)
UPSTREAM_SECRET = "upstream-secret-" + secrets.token_hex(8)
TOKEN_KEY = secrets.token_hex(32)


@pytest.fixture(scope="module")
def exercised():
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisProcess(password=REDIS_PASSWORD)
        server.start()
        try:
            env = clean_env(
                DEBUG="false",
                SECRET_KEY=secrets.token_urlsafe(50),
                TOKEN_ENCRYPTION_KEY=TOKEN_KEY,
                ALLOWED_HOSTS="testserver,127.0.0.1",
                DATABASE_URL=f"sqlite:///{workdir}/db.sqlite3",
                REDIS_URL=server.url,
                REDIS_PASSWORD=REDIS_PASSWORD,
                UPSTREAM_SECRET=UPSTREAM_SECRET,
                SECURE_SSL_REDIRECT="false",
                LOG_LEVEL="debug",
            )
            # DEBUG=false serves static files through WhiteNoise's manifest: build it from this tree
            # (a manifest left by an earlier run would miss files added since).
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput"],
                cwd=BASE_DIR,
                env={**env, "PYTHONPATH": str(BASE_DIR)},
                capture_output=True,
                check=True,
                timeout=300,
            )
            result = subprocess.run(
                [sys.executable, str(BASE_DIR / "tests/hardening/secrets_app.py")],
                cwd=BASE_DIR,
                env={**env, "PYTHONPATH": str(BASE_DIR)},
                capture_output=True,
                text=True,
                timeout=300,
            )
            client = redis.Redis(port=server.port, password=REDIS_PASSWORD, decode_responses=True)
            keys = set(client.scan_iter(count=1000))
            client.close()
        finally:
            server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    result.keys = keys
    return result


def test_pages_were_really_served_by_a_password_protected_redis(exercised):
    assert "== /admin/ops/redis/?format=json 200" in exercised.stdout
    assert "== bootstrap 200" in exercised.stdout
    # Rate-limit headers on the API answer: the limiter's script ran on the password-protected server.
    assert "RateLimit-Limit" in exercised.stdout.split("== bootstrap 200", 1)[1].split("== ", 1)[0]
    assert exercised.stdout.count("== ") > 40
    # Every operations command ran; the probe of the refusing upstream fails as it should.
    assert "raised CommandError('Upstream probe failed for: acme')" in exercised.stdout
    assert exercised.stdout.count("raised") == 1
    # Sessions, limiter state and the upstream breaker's shared state all live in that server.
    families = {key.split(":")[1] for key in exercised.keys}
    assert {"session", "sessidx", "rl", "cb"} <= families, families


@pytest.mark.parametrize("name", ["REDIS_PASSWORD", "UPSTREAM_SECRET", "TOKEN_KEY"])
def test_no_secret_in_any_page_header_or_log(exercised, name):
    value = globals()[name]
    assert value not in exercised.stdout, f"{name} in a response"
    assert value not in exercised.stderr, f"{name} in the logs"


def test_api_key_secrets_show_once_and_never_in_logs(exercised):
    pages = exercised.stdout.split("\n== ")
    issued = [p for p in pages if p.startswith("key issue")]
    assert len(issued) == 1
    import re

    shown = set(re.findall(r"aak_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", issued[0]))
    assert len(shown) == 1  # the new secret, shown once on the page that issued it
    secret = shown.pop()
    others = [p for p in pages if not p.startswith("key issue")]
    assert not any(secret in p for p in others)
    assert secret not in exercised.stderr
    # The fixtures' keys were used as bearer tokens: no page or log repeats any key secret.
    assert not re.search(r"aak_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", "\n".join(others) + exercised.stderr)
