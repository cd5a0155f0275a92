"""A real Sentinel-managed Redis: one master, one replica and three sentinels, each a child process."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from agentapi_admin.redis_process import RedisProcess

MASTER_NAME = "agentapi-test"


class SentinelProcess(RedisProcess):
    """`redis-server <conf> --sentinel`, monitoring one master with quick failure detection."""

    def __init__(self, *, master_port: int, data_password: str, quorum: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.master_port = master_port
        self.data_password = data_password
        self.quorum = quorum

    def command(self) -> list[str]:
        conf = self.directory / "sentinel.conf"
        # Sentinel rewrites its file as it learns the topology, so each gets a fresh, writable one.
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f"dir {self.directory}",
                    f"logfile {self.directory / 'redis.log'}",
                    f"requirepass {self.password}",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {self.quorum}",
                    f"sentinel auth-pass {MASTER_NAME} {self.data_password}",
                    f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
                    f"sentinel failover-timeout {MASTER_NAME} 10000",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            )
        )
        return [self.binary, str(conf), "--sentinel"]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns a truthy value; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (redis.RedisError, OSError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout}s (last error: {last_error})")


class SentinelCluster:
    """Master + replica + sentinels on free ports under one directory."""

    def __init__(self, directory: Path, *, sentinels: int = 3, password: str, sentinel_password: str) -> None:
        self.password = password
        self.sentinel_password = sentinel_password
        auth = ["--masterauth", password]
        self.master = RedisProcess(directory=directory / "master", password=password, extra_args=auth)
        self.replica = RedisProcess(
            directory=directory / "replica",
            password=password,
            extra_args=[*auth, "--replicaof", "127.0.0.1", str(self.master.port)],
        )
        self.sentinels = [
            SentinelProcess(
                directory=directory / f"sentinel-{n}",
                password=sentinel_password,
                master_port=self.master.port,
                data_password=password,
                quorum=sentinels // 2 + 1,
            )
            for n in range(sentinels)
        ]

    @property
    def sentinel_addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def data_client(self, process: RedisProcess) -> redis.Redis:
        return redis.Redis(port=process.port, password=self.password, socket_timeout=2, decode_responses=True)

    def sentinel_client(self, process: SentinelProcess) -> redis.Redis:
        return redis.Redis(port=process.port, password=self.sentinel_password, socket_timeout=2, decode_responses=True)

    def start(self, timeout: float = 30.0) -> SentinelCluster:
        """Start every process and wait until replication and the sentinels' view of it are complete."""
        self.master.start()
        self.replica.start()
        with self.data_client(self.master) as master:
            wait_until(
                lambda: (master.info("replication").get("slave0") or {}).get("state") == "online",
                timeout=timeout,
                what="the replica did not come online",
            )
        for sentinel in self.sentinels:
            sentinel.start()
        for sentinel in self.sentinels:
            with self.sentinel_client(sentinel) as client:
                wait_until(
                    lambda client=client: (
                        len(client.sentinel_slaves(MASTER_NAME)) == 1
                        and len(client.sentinel_sentinels(MASTER_NAME)) == len(self.sentinels) - 1
                    ),
                    timeout=timeout,
                    what=f"sentinel on {sentinel.port} did not discover the replica and its peers",
                )
        return self

    def master_port(self) -> int:
        """Return the port the first live sentinel names as master."""
        for sentinel in self.sentinels:
            if sentinel.running():
                with self.sentinel_client(sentinel) as client:
                    return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
        raise RuntimeError("no sentinel is running")

    def stop(self) -> None:
        for process in [*self.sentinels, self.replica, self.master]:
            process.kill()
