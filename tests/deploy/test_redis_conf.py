"""deploy/redis/redis.conf and the compose redis command, run by a real redis-server."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis

from agentapi_admin.redis_process import find_redis_server, free_port
from tests.conftest import BASE_DIR
from tests.deploy import compose
from tests.deploy.compose import COMPOSE_FILE
from tests.deploy.sentinel_cluster import wait_until

CONF = BASE_DIR / "deploy" / "redis" / "redis.conf"


def _compose_redis_script(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Return the redis service's shell script and environment, interpolated as compose would."""
    document = compose.project(COMPOSE_FILE, env={**compose.env_example(), "POSTGRES_PASSWORD": "x", **env})
    service = document["services"]["redis"]
    assert service["command"][:2] == ["sh", "-c"]
    return service["command"][2], service["environment"]


@pytest.fixture
def compose_redis(tmp_path):
    """Run the compose redis command line with the repository's redis.conf on a free port."""
    processes = []

    def start(password: str, maxmemory: str = "256mb") -> tuple[subprocess.Popen, int]:
        script, environment = _compose_redis_script({"REDIS_PASSWORD": password, "REDIS_MAXMEMORY": maxmemory})
        port = free_port()
        # Same script; only the paths and the address differ from the container's.
        script = script.replace("/usr/local/etc/redis/redis.conf", str(CONF)).replace(
            "redis-server", find_redis_server()
        )
        script += f" --port {port} --bind 127.0.0.1 --dir {tmp_path}"
        process = subprocess.Popen(
            ["sh", "-c", script],
            env={"PATH": "/usr/bin:/bin", **environment},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process, port

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_compose_redis_runs_with_aof_rdb_noeviction_and_a_password(compose_redis):
    _process, port = compose_redis("compose-pw", maxmemory="64mb")
    client = redis.Redis(host="127.0.0.1", port=port, password="compose-pw", socket_timeout=2, decode_responses=True)
    wait_until(client.ping, timeout=10, what="redis-server with deploy/redis/redis.conf did not start")
    config = client.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["aof-use-rdb-preamble"] == "yes"
    assert config["save"] == "900 1 300 10 60 10000"
    assert config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) == 64 * 1024 * 1024
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, password="wrong", socket_timeout=2).ping()
    client.close()


def test_compose_redis_refuses_to_start_without_a_password(compose_redis):
    process, _ = compose_redis("")
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 1
    assert "REDIS_PASSWORD must be set" in stderr


def test_a_full_redis_refuses_writes_instead_of_evicting_sessions_or_counters(compose_redis):
    _, port = compose_redis("pw", maxmemory="4mb")
    client = redis.Redis(host="127.0.0.1", port=port, password="pw", socket_timeout=2)
    wait_until(client.ping, timeout=10, what="redis-server did not start")
    client.set("agentapi:session:alive", b"x", ex=3600)
    client.hset("agentapi:usage:t:20260101", "requests", 41)
    client.set("agentapi:rl:user:-:alice", b"window", ex=60)
    chunk = b"c" * 64 * 1024
    written = 0
    deadline = time.monotonic() + 20
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        while time.monotonic() < deadline and written < 1000:
            client.set(f"agentapi:cache:filler:{written}", chunk, ex=300)
            written += 1
    # Under allkeys-lru the oldest keys (the session, the counters) would be gone now.
    assert client.get("agentapi:session:alive") == b"x"
    assert client.hget("agentapi:usage:t:20260101", "requests") == b"41"
    assert client.get("agentapi:rl:user:-:alice") == b"window"
    assert client.info("stats")["evicted_keys"] == 0
    assert written > 0
    client.close()


def test_the_redis_healthcheck_needs_a_pong_not_just_an_answer(compose_redis):
    _, port = compose_redis("health-pw")
    client = redis.Redis(host="127.0.0.1", port=port, password="health-pw", socket_timeout=2)
    wait_until(client.ping, timeout=10, what="redis-server did not start")
    client.close()
    document = compose.project(COMPOSE_FILE, env={**compose.env_example(), "POSTGRES_PASSWORD": "x"})
    kind, command = document["services"]["redis"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # Same command; only the port differs from the container's 6379.
    command = command.replace("redis-cli", f"redis-cli -h 127.0.0.1 -p {port}")

    def check(password: str) -> int:
        env = {"PATH": "/usr/bin:/bin", "REDISCLI_AUTH": password}
        return subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=10, check=False).returncode

    assert check("health-pw") == 0
    # redis-cli exits 0 on NOAUTH / WRONGPASS; the grep for PONG is what makes this fail.
    assert check("wrong") == 1
    assert check("") == 1
