"""GET /api/v1/stream served by uvicorn (process A) while changes are committed by another process (B).

The stack (its own PostgreSQL database and redis-server, migrated and seeded) comes from the
fault suite's harness; process B is `manage.py shell`, which commits through the services and
exits, as another replica would.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress

import httpx
import pytest

from agentapi_admin.redis_process import free_port
from tests.conftest import BASE_DIR, clean_env
from tests.faults.harness import FaultStack, wait_for

LATENCY_BOUND = 1.0  # seconds, from commit in process B to the event in the client of process A


class StreamServer:
    """uvicorn serving the ASGI app against the stack."""

    def __init__(self, stack: FaultStack, **env: str) -> None:
        self.port = free_port()
        self.log = stack.directory / f"uvicorn-{self.port}.log"
        self.env = clean_env(DEBUG="true", DJANGO_SETTINGS_MODULE="agentapi_admin.settings", **stack.env(**env))
        self.process: subprocess.Popen | None = None

    def start(self) -> StreamServer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "agentapi_admin.asgi:application", "--port", str(self.port),
                 "--log-level", "warning"],
                cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(self._ready, "uvicorn to answer /healthz", timeout=60)
        return self

    def _ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


class Listener:
    """An SSE client in a thread: every event lands in `events` as (arrival time, name, data, id).

    It speaks HTTP over its own socket, so close() really closes the connection, as a replica going away would.
    """

    def __init__(self, url: str, secret: str, last_event_id: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {secret}"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.events: queue.Queue = queue.Queue()
        self.status: int | None = None
        self.headers: dict = {}
        self.closed = threading.Event()
        self.error: Exception | None = None
        host, port = url.removeprefix("http://").split(":")
        self._connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self._thread = threading.Thread(target=self._run, args=(headers,), daemon=True)
        self._thread.start()

    def _run(self, headers: dict) -> None:
        try:
            self._connection.request("GET", "/api/v1/stream", headers=headers)
            response = self._connection.getresponse()
            self.status, self.headers = response.status, {k.lower(): v for k, v in response.getheaders()}
            if response.status != 200:
                self.events.put((time.time(), "http", json.loads(response.read()), None))
                return
            fields: dict = {}
            while raw := response.readline():
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if "event" in fields:
                        data = json.loads(fields.get("data", "null"))
                        self.events.put((time.time(), fields["event"], data, fields.get("id")))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except Exception as exc:  # a connection closed mid-read (close()) ends the listener, nothing more
            self.error = exc
        finally:
            self.closed.set()

    def next(self, timeout: float = 10.0):
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        sock = self._connection.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._connection.close()


_COMMIT = """
import time
from django.contrib.auth import get_user_model
from tenants.models import Flag
from tenants.services.flags import flag_update
flag = Flag.objects.get(key={key!r})
flag_update(flag=flag, default=not flag.default, actor=get_user_model().objects.get(username="admin"))
print(time.time())
"""
_REVOKE = """
from tenants.models import ApiKey
from tenants.services.apikeys import apikey_hash, apikey_revoke
apikey_revoke(api_key=ApiKey.objects.get(secret_hash=apikey_hash({secret!r})), actor=None)
"""
_ISSUE = """
from tenants.models import Tenant
from tenants.services.apikeys import apikey_issue
print(apikey_issue(tenant=Tenant.objects.get(slug={slug!r}), name="stream-test", scopes=None, actor=None)[1])
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    built = FaultStack(tmp_path_factory.mktemp("stream")).start()
    yield built
    built.stop()


@pytest.fixture(scope="module")
def server(stack):
    # One uvicorn process (uvicorn reads WEB_CONCURRENCY as its worker count): the bounds are per process.
    started = StreamServer(
        stack, WEB_CONCURRENCY="1", TENANTS_STREAM_HEARTBEAT="1s", TENANTS_STREAM_MAX_PER_TENANT="3"
    ).start()
    yield started
    started.stop()


@pytest.fixture
def listen(server):
    listeners = []

    def make(secret: str, **options) -> Listener:
        listener = Listener(server.url, secret, **options)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


def shell(stack: FaultStack, code: str) -> str:
    return stack.manage("shell", "-c", code).stdout.strip().splitlines()[-1] if code else ""


def flag_key(stack: FaultStack) -> str:
    keys = stack.manage("shell", "-c", "from tenants.models import Flag; print(Flag.objects.order_by('key')[0].key)")
    return keys.stdout.strip().splitlines()[-1]


def new_key(stack: FaultStack, slug: str = "acme") -> str:
    return shell(stack, _ISSUE.format(slug=slug))


def test_a_change_committed_by_another_process_arrives_within_a_second(stack, listen):
    secret = new_key(stack)
    listener = listen(secret)
    _, name, ready, _ = listener.next()
    assert listener.status == 200 and listener.headers["content-type"].startswith("text/event-stream")
    assert name == "ready" and ready["etag"] and ready["cache_version"] >= 1
    key = flag_key(stack)
    latencies = []
    for _ in range(3):
        committed_at = float(shell(stack, _COMMIT.format(key=key)))
        arrived, name, change, event_id = listener.next()
        while name != "change":
            arrived, name, change, event_id = listener.next()
        latencies.append(arrived - committed_at)
        assert change["cache_version"] > ready["cache_version"] and change["etag"] != ready["etag"]
        assert event_id and "-" in event_id
        ready = change
    print(f"change stream latency: max {max(latencies) * 1000:.0f} ms over {len(latencies)} commits")
    assert max(latencies) < LATENCY_BOUND


def test_reconnect_with_last_event_id_gets_what_it_missed(stack, listen):
    secret = new_key(stack)
    key = flag_key(stack)
    first = listen(secret)
    first.next()  # ready
    shell(stack, _COMMIT.format(key=key))
    _, name, change, event_id = first.next()
    assert name == "change"
    first.close()
    shell(stack, _COMMIT.format(key=key))  # committed while nobody listens
    again = listen(secret, last_event_id=event_id)
    again.next()  # ready
    _, name, missed, missed_id = again.next(timeout=5)
    assert name == "change" and missed["cache_version"] > change["cache_version"] and missed_id > event_id


def test_a_revoked_key_gets_revoked_and_the_stream_ends(stack, listen):
    secret = new_key(stack)
    listener = listen(secret)
    listener.next()
    shell(stack, _REVOKE.format(secret=secret))
    _, name, data, _ = listener.next()
    assert name == "revoked" and data["error"] == "revoked_api_key"
    assert listener.closed.wait(5)


def test_refusals_before_the_stream_starts(stack, server, listen):
    missing = httpx.get(f"{server.url}/api/v1/stream", timeout=5)
    assert missing.status_code == 401 and missing.json()["error"] == "missing_api_key"
    secret = new_key(stack, "globex")
    bad = httpx.get(
        f"{server.url}/api/v1/stream",
        headers={"Authorization": f"Bearer {secret}", "Last-Event-ID": "yesterday"},
        timeout=5,
    )
    assert bad.status_code == 400 and bad.json()["field"] == "Last-Event-ID"
    held = [listen(secret) for _ in range(3)]
    for listener in held:
        assert listener.next()[1] == "ready"
    fourth = listen(secret)
    _, name, body, _ = fourth.next()
    assert name == "http" and fourth.status == 429 and body["error"] == "too_many_streams"
    assert fourth.headers["retry-after"]
    held[0].close()
    wait_for(lambda: held[0].closed.is_set(), "the first stream to close")

    def a_fifth_is_accepted() -> bool:
        fifth = listen(secret)
        return fifth.next()[1] == "ready"

    wait_for(a_fifth_is_accepted, "a freed slot to admit a new stream", timeout=10)


def test_redis_gone_says_unavailable_and_ends_so_clients_poll(stack, listen):
    secret = new_key(stack, "globex")
    listener = listen(secret)
    assert listener.next()[1] == "ready"
    stack.redis.kill()
    try:
        _, name, data, _ = listener.next(timeout=15)
        while name not in ("unavailable",):
            _, name, data, _ = listener.next(timeout=15)
        assert data["error"] == "stream_unavailable" and "poll" in data["detail"]
        assert listener.closed.wait(5)
    finally:
        stack.redis.start()


def test_the_sdk_follows_the_stream_without_polling(stack, server):
    from agentapi_client import REVOKED, ControlPlane

    secret = new_key(stack)
    plane = ControlPlane(server.url, secret, poll_interval=3600, stream_url=f"{server.url}/api/v1/stream", timeout=5)
    changes: queue.Queue = queue.Queue()
    plane.on_change(lambda keys: changes.put((time.time(), keys)))
    try:
        plane.start()
        wait_for(lambda: plane.streaming, "the SDK's stream to connect")
        key = flag_key(stack)
        before = plane.is_enabled(key)
        committed_at = float(shell(stack, _COMMIT.format(key=key)))
        arrived, keys = changes.get(timeout=10)
        assert keys == [key] and plane.is_enabled(key) is (not before)
        assert arrived - committed_at < LATENCY_BOUND
        shell(stack, _REVOKE.format(secret=secret))
        wait_for(lambda: plane.status == REVOKED, "the SDK to see the revocation")
    finally:
        plane.stop()
