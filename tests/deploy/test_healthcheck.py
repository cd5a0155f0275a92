"""The container probe (`python -m agentapi_admin.healthcheck`) against a production-configured gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from agentapi_admin.healthcheck import probe_host
from tests.conftest import BASE_DIR, clean_env

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "p" * 60,
    "TOKEN_ENCRYPTION_KEY": "cd" * 32,
    "ALLOWED_HOSTS": "admin.example.com",
}


def _probe(port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentapi_admin.healthcheck"],
        cwd=BASE_DIR,
        env=clean_env(PORT=str(port), ALLOWED_HOSTS=PRODUCTION["ALLOWED_HOSTS"], HEALTHCHECK_TIMEOUT="4"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_probe_passes_on_a_ready_app_and_fails_when_redis_is_down(app_server, redis_server):
    # Production settings: SSL redirect on, strict ALLOWED_HOSTS; /readyz must still answer the probe.
    app = app_server(**PRODUCTION, REDIS_URL=redis_server.url, REDIS_CONNECTION_TIMEOUT="1s")
    ready = _probe(app.port)
    assert ready.returncode == 0, ready.stderr

    redis_server.kill()
    down = _probe(app.port)
    assert down.returncode == 1
    assert "readyz answered 503" in down.stderr
    assert '"failed": ["redis"]' in down.stderr


def test_probe_fails_when_nothing_listens():
    from agentapi_admin.redis_process import free_port

    result = _probe(free_port())
    assert result.returncode == 1
    assert "readyz unreachable" in result.stderr


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        ("admin.example.com,other.example.com", "admin.example.com"),
        (".example.com", "healthcheck.example.com"),
        ("*", "localhost"),
        ("", "localhost"),
        (" , admin.example.com", "admin.example.com"),
    ],
)
def test_probe_sends_a_host_that_allowed_hosts_accepts(allowed, host):
    assert probe_host(allowed) == host


def _heartbeat_probe(path, max_age: str = "600") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentapi_admin.healthcheck", "--heartbeat", str(path), "--max-age", max_age],
        cwd=BASE_DIR,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_heartbeat_probe_passes_while_the_file_is_fresh(tmp_path):
    beat = tmp_path / "run_maintenance.heartbeat"
    missing = _heartbeat_probe(beat)
    assert missing.returncode == 1 and "no heartbeat" in missing.stderr
    beat.touch()
    assert _heartbeat_probe(beat).returncode == 0
    old = time.time() - 601
    os.utime(beat, (old, old))
    stale = _heartbeat_probe(beat)
    assert stale.returncode == 1 and "last beat 60" in stale.stderr and "max 600s" in stale.stderr


def test_heartbeat_probe_refuses_a_bad_max_age_as_a_usage_error(tmp_path):
    result = _heartbeat_probe(tmp_path / "x", max_age="soon")
    assert result.returncode == 64 and "--max-age" in result.stderr
