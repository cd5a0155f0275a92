"""Shared fixtures: subprocess runs of the project with a chosen environment."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent

# Variables a subprocess must not inherit from the test session, so each test
# states exactly the environment it is about.
_CONFIG_PREFIXES = ("REDIS_", "UPSTASH_", "RATE_LIMIT_", "CIRCUIT_BREAKER_", "SESSION_", "TOKEN_", "SECURE_")
_CONFIG_NAMES = {
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "LOG_LEVEL",
    "DEMO_PASSWORD",
    "EMAIL_URL",
    "DEFAULT_FROM_EMAIL",
    "PROMETHEUS_MULTIPROC_DIR",
}


# Usage counters and daily quotas are per UTC day: a test that reads "today" must not see it change.
DAY_BOUNDARY_GUARD_SECONDS = 90


def seconds_to_utc_midnight(now: dt.datetime | None = None) -> float:
    now = now or dt.datetime.now(dt.UTC)
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


@pytest.fixture(autouse=True)
def same_utc_day():
    """Start no test in the last 90 s of a UTC day: wait for the new day, so "today" holds throughout."""
    left = seconds_to_utc_midnight()
    if left < DAY_BOUNDARY_GUARD_SECONDS:
        time.sleep(left + 0.5)


def clean_env(**overrides: str) -> dict:
    """Return os.environ without app configuration, plus `overrides`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _CONFIG_NAMES and not name.startswith(_CONFIG_PREFIXES)
    }
    env.update({"READ_ENV_FILE": "false", "DJANGO_SETTINGS_MODULE": "agentapi_admin.settings"})
    env.update(overrides)
    return env


def run_python(code: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


_SETTINGS_DUMP = """
import json, django
django.setup()
from django.conf import settings
names = {names!r}
print(json.dumps({{n: getattr(settings, n, None) for n in names}}, default=str))
"""


@pytest.fixture
def load_settings():
    """Import the settings in a fresh interpreter with the given variables; return (names → values) or the error."""

    def load(names: list[str], **env: str):
        result = run_python(_SETTINGS_DUMP.format(names=names), clean_env(**env))
        if result.returncode != 0:
            return None, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr

    return load


class StandIn(http.server.BaseHTTPRequestHandler):
    """AgentAPI's GET /status, answering whatever status the test sets; it records each request's headers."""

    status = 200
    hits = 0
    # When set, GET /status answers 302 to this URL instead.
    redirect_to = ""
    seen: list

    def do_GET(self):
        type(self).hits += 1
        type(self).seen.append(dict(self.headers))
        if type(self).redirect_to:
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"status": "stable", "agent_type": "claude"}).encode()
        self.send_response(type(self).status if self.path == "/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_stand_in():
    """Serve a fresh StandIn subclass on 127.0.0.1; yield (server, handler class)."""
    handler = type("Handler", (StandIn,), {"status": 200, "hits": 0, "redirect_to": "", "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def upstream():
    """Serve an AgentAPI stand-in on 127.0.0.1; yield (server, handler class with .status, .hits, .seen)."""
    with serve_stand_in() as served:
        yield served


@pytest.fixture
def upstream_url(upstream) -> str:
    """The base URL of the AgentAPI stand-in (its GET /status answers 200 unless a test changes it)."""
    server, _ = upstream
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def second_upstream():
    """Another stand-in on its own port: where a hostile redirect points."""
    with serve_stand_in() as served:
        yield served


# Django's own migrations at the version the project's migrations were written against.
BUILTIN_MIGRATIONS = [
    ("auth", "0012_alter_user_first_name_max_length"),
    ("contenttypes", "0002_remove_content_type_name"),
]


@pytest.fixture
def migrate(transactional_db):
    """Return migrate(targets) -> historical apps at those migrations; migrate() applies every migration.

    The database ends at the latest migrations again, whatever the test did.
    """
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    def run(targets=None):
        executor = MigrationExecutor(connection)
        targets = executor.loader.graph.leaf_nodes() if targets is None else [*targets, *BUILTIN_MIGRATIONS]
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    yield run
    run()
