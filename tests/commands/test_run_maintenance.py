"""run_maintenance: --once runs each task once; the loop stops cleanly on SIGTERM with exit 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_FAILED
from resilience.connection import key
from tests.conftest import BASE_DIR, clean_env

pytestmark = pytest.mark.django_db


def summaries(text: str) -> dict[str, dict]:
    return {s["command"]: s for s in map(json.loads, text.strip().splitlines())}


def test_once_runs_outbox_cleanup_and_flush_then_exits():
    out = StringIO()
    call_command("run_maintenance", "--once", "--json", stdout=out)
    done = summaries(out.getvalue())
    tasks = {
        "deliver_outbox",
        "deliver_webhooks",
        "cleanup_sessions",
        "flush_usage",
        "flush_apikey_last_used",
        "flush_flag_asks",
    }
    assert set(done) == {*tasks, "run_maintenance"}
    assert done["run_maintenance"]["rounds"] == 1 and done["run_maintenance"]["task_failures"] == 0


def test_text_mode_prints_one_readable_line_per_task_not_json():
    out = StringIO()
    call_command("run_maintenance", "--once", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "deliver_outbox",
        "deliver_webhooks",
        "cleanup_sessions",
        "flush_usage",
        "flush_apikey_last_used",
        "flush_flag_asks",
        "run_maintenance",
    ]
    assert not any(line.lstrip().startswith("{") for line in lines), lines
    assert lines[-1].startswith("run_maintenance: rounds=1, task_failures=0")


def test_heartbeat_file_is_touched_every_round(tmp_path):
    beat = tmp_path / "run_maintenance.heartbeat"
    call_command("run_maintenance", "--once", "--heartbeat-file", str(beat), stdout=StringIO())
    assert beat.is_file() and time.time() - beat.stat().st_mtime < 60


def test_a_task_held_by_another_copy_is_skipped_not_failed(redis_client):
    held = redis_client.lock(key("lock", "flush_usage"), timeout=30)
    assert held.acquire(blocking=False)
    out, err = StringIO(), StringIO()
    call_command("run_maintenance", "--once", "--json", stdout=out, stderr=err)
    held.release()
    assert summaries(out.getvalue())["run_maintenance"]["tasks_skipped"] == 1
    assert "flush_usage skipped: Another flush_usage is running" in err.getvalue()


def test_once_with_redis_down_exits_1_naming_the_failures(redis_server):
    redis_server.kill()
    err = StringIO()
    with pytest.raises(CommandError, match=r"4 maintenance task\(s\) failed") as excinfo:
        call_command("run_maintenance", "--once", stdout=StringIO(), stderr=err)
    assert excinfo.value.returncode == EXIT_FAILED
    assert "cleanup_sessions failed: Redis is unreachable" in err.getvalue()


def test_bad_interval():
    with pytest.raises(CommandError, match="--interval must be a positive number"):
        call_command("run_maintenance", "--interval", "0")


def test_loop_stops_cleanly_on_sigterm(redis_server, tmp_path):
    env = clean_env(
        DEBUG="true",
        REDIS_URL=redis_server.url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SESSION_CLEANUP_INTERVAL="1s",
    )
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=BASE_DIR, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*manage, "run_maintenance", "--json"], env=env, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        rounds = []
        deadline = time.monotonic() + 30
        while len([r for r in rounds if r["command"] == "flush_usage"]) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            rounds.append(json.loads(line))
        assert len([r for r in rounds if r["command"] == "flush_usage"]) == 2, "two rounds, one second apart"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    final = json.loads(out.decode().strip().splitlines()[-1])
    assert final["command"] == "run_maintenance" and final["rounds"] >= 2 and final["task_failures"] == 0
    assert not any(name.startswith(key("lock")) for name in redis_server_keys(redis_server)), "locks released"


def redis_server_keys(redis_server) -> list[str]:
    import redis

    return [k.decode() for k in redis.Redis.from_url(redis_server.url).scan_iter(count=1000)]
