"""Fault-injection harness: gunicorn with several workers, its own redis-server and its own PostgreSQL database.

Everything here is a real process or a real database that the tests break on purpose:

- `FaultRedis`: a redis-server with AOF (`appendfsync always`) that can be SIGKILLed,
  paused (SIGSTOP/SIGCONT), restarted from its AOF and made to refuse writes;
- `FaultDatabase`: a PostgreSQL database of its own (`faults_<random>`, never the shared
  test database) that can be made unreachable (connections refused and terminated);
- `FaultStack`: both, migrated and seeded with `seed_demo`, and gunicorn app servers
  (tests/deploy/appserver.py) serving them.

PostgreSQL is the one at DATABASE_URL when that points at PostgreSQL, else
postgres@127.0.0.1:5432 (always there in CI and on development machines).
`bench/soak/run.py` drives the same pieces under load.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from agentapi_admin.redis_process import RedisProcess
from bench.soak.client import Client
from tests.conftest import BASE_DIR, clean_env
from tests.deploy.appserver import AppServer
from tests.faults.redis_faults import PROTECTED_CONFIGS_ARGS, writes_refused

LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    """Return a URL of the `postgres` maintenance database on the PostgreSQL server the suite uses."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return LOCAL_POSTGRES
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


class FaultDatabase:
    """A PostgreSQL database created for one test module, made unreachable on demand, dropped afterwards."""

    def __init__(self, admin_url: str | None = None, *, prefix: str = "faults") -> None:
        self.admin_url = admin_url or postgres_admin_url()
        self.name = f"{prefix}_{secrets.token_hex(4)}"

    @property
    def url(self) -> str:
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{self.name}"))

    def _admin(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def create(self) -> FaultDatabase:
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def terminate_connections(self) -> int:
        """Terminate every session on this database (as a failover or an operator would); return how many."""
        rows = self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.name,),
        )
        return len(rows)

    def make_unreachable(self) -> None:
        """Refuse new connections (superusers included) and cut the open ones."""
        self._admin(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS false')
        self.terminate_connections()

    def restore(self) -> None:
        self._admin(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS true')

    @contextlib.contextmanager
    def unreachable(self) -> Iterator[None]:
        """Make the database unreachable inside the block."""
        self.make_unreachable()
        try:
            yield
        finally:
            self.restore()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one query on this database (the tests' own view of the data, not the app's)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def drop(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.restore()
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class FaultRedis(RedisProcess):
    """A redis-server with AOF (fsync always, so a SIGKILL loses nothing acknowledged) and fault switches."""

    def __init__(self, *, directory: Path, extra_args: list[str] | None = None) -> None:
        super().__init__(
            directory=directory,
            extra_args=["--appendonly", "yes", "--appendfsync", "always", *PROTECTED_CONFIGS_ARGS, *(extra_args or [])],
        )

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers, as in a partition."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def restart_from_aof(self) -> FaultRedis:
        """SIGKILL the server and start it again on the same port and directory, so it replays its AOF."""
        self.kill()
        return self.start()

    def refusing_writes(self, mode: str):
        """Make the server refuse writes inside the block: "oom", "readonly" or "misconf"."""
        return writes_refused(self, mode)


class FaultStack:
    """One FaultDatabase and one FaultRedis, migrated and seeded, and the gunicorn app servers in front of them."""

    def __init__(self, directory: Path, *, workers: int = 2) -> None:
        self.directory = directory
        self.workers = workers
        self.redis = FaultRedis(directory=directory / "redis")
        self.database = FaultDatabase()
        self.apps: list[AppServer] = []
        self.seed: dict = {}

    def env(self, **overrides: str) -> dict[str, str]:
        """Return the app's environment for this stack (what gunicorn and manage.py both get)."""
        return {
            "DATABASE_URL": self.database.url,
            "REDIS_URL": self.redis.url,
            "REDIS_CONNECTION_TIMEOUT": "1s",
            "WEB_CONCURRENCY": str(self.workers),
            "GUNICORN_THREADS": "4",
            "LOG_LEVEL": "warning",
            # Generous limits: these tests break dependencies, not clients' budgets.
            "RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
            "RATE_LIMIT_BURST_SIZE": "10000",
            **overrides,
        }

    def start(self) -> FaultStack:
        self.redis.start()
        self.database.create()
        self.manage("migrate", "--noinput", "-v", "0")
        self.seed = json.loads(self.manage("seed_demo", "--json").stdout.strip().splitlines()[-1])
        return self

    def manage(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        """Run `manage.py` against this stack."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=clean_env(DEBUG="true", DJANGO_SETTINGS_MODULE="agentapi_admin.settings", **self.env(**env)),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def app(self, **env: str) -> AppServer:
        """Start gunicorn (self.workers workers) on a free port against this stack; stopped by stop()."""
        server = AppServer(self.env(**env), self.directory)
        self.apps.append(server)
        return server.start(timeout=60)

    def client(self, app: AppServer) -> Client:
        """Return a keep-alive HTTP client of `app` with its own cookies."""
        return Client(app.port)

    def api_key(self, tenant: str = "acme") -> str:
        return self.seed["api_keys"][tenant]

    def stop(self) -> None:
        for server in self.apps:
            server.stop()
        if self.redis.process is not None and self.redis.running():
            with contextlib.suppress(OSError):
                self.redis.resume()  # a SIGSTOPped server ignores SIGKILL only until resumed on some kernels
            self.redis.kill()
        self.database.drop()


def wait_for(condition, what: str, timeout: float = 20.0, interval: float = 0.2):
    """Poll `condition()` until it returns a truthy value; return it, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
