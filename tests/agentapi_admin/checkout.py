"""A throwaway copy of this checkout (what a fresh clone plus uncommitted edits holds), and `make run` in it."""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.conftest import BASE_DIR, clean_env

VENV_BIN = Path(sys.executable).parent


def copy_checkout(target: Path) -> Path:
    """Copy the tracked and new (not ignored) files of this checkout to `target`: no var/, no .env, no .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=BASE_DIR,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = BASE_DIR / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def checkout_env(**overrides: str) -> dict:
    """The environment of a newcomer's shell: no app configuration, `.env`-style files read as usual."""
    return clean_env(READ_ENV_FILE="true", **overrides)


class MakeRun:
    """`make run` in a checkout, in its own process group so Ctrl-C can be sent as a terminal would."""

    def __init__(self, checkout: Path, port: int, **env: str) -> None:
        self.checkout = checkout
        self.log_path = checkout / f"make-run-{time.monotonic_ns()}.log"
        # The suite's venv already holds the locked dependencies: BIN points make at it and STAMP= skips
        # the install step (a newcomer's first run does it; README gives its cost).
        argv = ["make", "--no-print-directory", "run", f"PORT={port}", f"BIN={VENV_BIN}", "STAMP="]
        self.port = port
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            argv,
            cwd=checkout,
            env=checkout_env(**env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def wait_serving(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"make run exited with {self.process.returncode}:\n{self.output}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        raise AssertionError(f"make run did not serve within {timeout}s:\n{self.output}")

    def interrupt(self, timeout: float = 30) -> int:
        """Press Ctrl-C: SIGINT to the whole foreground process group, then wait."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill(self) -> None:
        """Stop a run a failed test left behind: Ctrl-C first, so it stops its redis-server and runserver
        (both in sessions of their own, out of reach of a signal to this group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    def redis_url(self) -> str:
        return re.search(r"redis://127\.0\.0\.1:\d+/0", self.output).group(0)


class Browser:
    """A cookie-keeping HTTP client that signs in through Django's login form."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, url: str) -> tuple[int, str, str]:
        with self.opener.open(url, timeout=10) as response:
            return response.status, response.geturl(), response.read().decode()

    def sign_in(self, login_url: str, username: str, password: str, next_url: str) -> str:
        _, _, page = self.get(login_url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": next_url}
        ).encode()
        request = urllib.request.Request(login_url, data=data, headers={"Referer": login_url})  # noqa: S310 - http://127.0.0.1
        with self.opener.open(request, timeout=10) as response:
            return response.geturl()
