"""Fixtures for the deployment tests: TLS and Sentinel Redis processes, and app servers under gunicorn."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from agentapi_admin.redis_process import RedisProcess
from tests.deploy.appserver import AppServer
from tests.deploy.tls_material import CertFiles, make_ca_and_cert


class TlsRedisProcess(RedisProcess):
    """A redis-server that accepts only TLS connections (`--port 0 --tls-port N`), as Upstash does."""

    def __init__(self, *, certs: CertFiles, require_client_cert: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.certs = certs
        self.require_client_cert = require_client_cert

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = super().command()
        args[args.index("--port") + 1] = "0"
        return [
            *args,
            "--tls-port",
            str(self.port),
            "--tls-cert-file",
            str(self.certs.cert),
            "--tls-key-file",
            str(self.certs.key),
            "--tls-ca-cert-file",
            str(self.certs.ca),
            # Upstash authenticates clients by password, not by client certificate.
            "--tls-auth-clients",
            "yes" if self.require_client_cert else "no",
        ]

    def ping(self) -> bool:
        """Return True if the server answers PING over TLS (a readiness probe: host names are not its concern)."""
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        context.check_hostname = False
        if self.require_client_cert:
            context.load_cert_chain(str(self.certs.cert), str(self.certs.key))
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
            ):
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost it signed."""
    return make_ca_and_cert(tmp_path / "pki", "redis")


@pytest.fixture
def tls_redis(tmp_path: Path, certs: CertFiles):
    """A TLS-only redis-server with a password, started for one test."""
    server = TlsRedisProcess(certs=certs, directory=tmp_path / "redis-tls", password="tls-test-password")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def app_server(tmp_path: Path):
    """Start app servers with a given environment; stop them all at the end of the test."""
    started: list[AppServer] = []

    def start(**env: str) -> AppServer:
        server = AppServer(env, tmp_path)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
