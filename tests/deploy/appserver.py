"""Run the app under gunicorn (the image's entrypoint, gunicorn.conf.py) in a child process."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from agentapi_admin.healthcheck import probe_host
from agentapi_admin.redis_process import free_port
from tests.conftest import BASE_DIR, clean_env


class AppServer:
    """One gunicorn master with a gthread worker, configured only through `env`."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.log = directory / f"gunicorn-{self.port}.log"
        defaults = {
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "tests.deploy.probe_settings",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "2",
        }
        self.env = clean_env(**{**defaults, **env, "PORT": str(self.port)})
        # Production settings answer 400 to a Host outside ALLOWED_HOSTS, as a load balancer's would be.
        self.host = probe_host(env.get("ALLOWED_HOSTS", "127.0.0.1"))
        self.process: subprocess.Popen | None = None
        cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))

    def start(self, timeout: float = 30.0) -> AppServer:
        """Start gunicorn and wait until /healthz answers."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "agentapi_admin.wsgi:application"],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _ = self.get("/healthz", timeout=1)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return self
            raise RuntimeError(f"/healthz answered {status}:\n{self.log_tail()}")
        raise TimeoutError(f"gunicorn did not serve /healthz within {timeout}s:\n{self.log_tail()}")

    def get(self, path: str, timeout: float = 10.0, headers: dict | None = None) -> tuple[int, dict]:
        """GET a path with this client's cookie jar; return (status, decoded JSON body)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Host": self.host, **(headers or {})}
        )
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return error.code, json.loads(body)
            except ValueError:
                return error.code, {"raw": body.decode(errors="replace")[:2000]}

    def log_tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def stop(self) -> None:
        """Stop gunicorn (the whole process group) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
