"""A real Prometheus scrapes a real gunicorn with two workers: its query API sees exactly the traffic sent."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentapi_admin.redis_process import free_port
from tests.conftest import BASE_DIR
from tests.deploy.appserver import AppServer

TOKEN = "metrics-token-0123456789abcdef"
SCRAPE_CONFIG = """
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: agentapi
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {token_file}
    static_configs:
      - targets: ["127.0.0.1:{app_port}"]
"""


class Prometheus:
    """Debian's prometheus on a free loopback port with its own data directory."""

    def __init__(self, directory: Path, app_port: int) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is missing: apt-get install -y prometheus")
        directory.mkdir(parents=True, exist_ok=True)
        token_file = directory / "token"
        token_file.write_text(TOKEN)
        config = directory / "prometheus.yml"
        config.write_text(SCRAPE_CONFIG.format(token_file=token_file, app_port=app_port))
        self.port = free_port()
        self.log = directory / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready:\n{self.log.read_text()[-3000:]}")

    def query(self, expr: str) -> float | None:
        """Return the single value of an instant query, or None when it has no sample."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, expected: float, timeout: float = 30) -> float | None:
        """Poll until the query returns `expected` (scrapes lag the traffic by up to an interval)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.query(expr)
            if value == expected:
                return value
            time.sleep(0.5)
        return value

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


SLOW_PLAN = """
from tenants.models import Plan, Tenant
plan = Plan.objects.create(code="slow", name="Slow", rate_limit_per_minute=1, burst=0)
Tenant.objects.filter(slug="globex").update(plan=plan)
"""


@pytest.fixture
def gunicorn_two_workers(tmp_path, redis_server):
    multiproc = tmp_path / "metrics"
    server = AppServer(
        {
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "2",
            "REDIS_URL": redis_server.url,
            "METRICS_TOKEN": TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000",
            "RATE_LIMIT_BURST_SIZE": "100",
            "LOG_FORMAT": "json",
        },
        tmp_path,
    )
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"stale")  # a previous run's file: gunicorn must clear it
    _manage(server.env, "migrate", "--noinput")
    keys = json.loads(_manage(server.env, "seed_demo", "--json").strip().splitlines()[-1])["api_keys"]
    _manage(server.env, "shell", "-c", SLOW_PLAN)
    server.start()
    yield server, keys, multiproc
    server.stop()


def test_prometheus_counts_exactly_what_was_sent_across_both_workers(tmp_path, gunicorn_two_workers):
    server, keys, multiproc = gunicorn_two_workers
    prometheus = Prometheus(tmp_path / "prometheus", server.port)
    try:
        assert prometheus.wait_for('up{job="agentapi"}', 1.0) == 1.0, prometheus.log.read_text()[-2000:]

        def bootstrap(secret: str) -> int:
            status, _ = server.get("/api/v1/bootstrap", headers={"Authorization": f"Bearer {secret}"})
            return status

        # Parallel, one connection per request: gunicorn hands them to both workers.
        with ThreadPoolExecutor(max_workers=6) as pool:
            acme = list(pool.map(bootstrap, [keys["acme"]] * 24))
        assert acme == [200] * 24
        globex = [bootstrap(keys["globex"]) for _ in range(6)]  # the slow plan: 1 per minute, no burst
        assert globex == [200] + [429] * 5

        workers = {path.stem.split("_")[-1] for path in multiproc.glob("counter_*.db")}
        assert "999999" not in workers, "the stale file of a previous run was not cleared at start"
        assert len(workers) == 2, f"expected both workers to have served: {sorted(workers)}"

        ok = 'sum(agentapi_gateway_requests_total{outcome="ok"})'
        assert prometheus.wait_for(ok, 25.0) == 25.0
        limited = 'sum(agentapi_ratelimit_decisions_total{scope="tenant",result="limited"})'
        assert prometheus.wait_for(limited, 5.0) == 5.0
        http = 'sum(agentapi_http_requests_total{route="/api/v1/bootstrap",status="429"})'
        assert prometheus.wait_for(http, 5.0) == 5.0
        assert prometheus.query('sum(agentapi_http_requests_total{route="/api/v1/bootstrap",status="200"})') == 25.0
        assert prometheus.query("agentapi_redis_up") == 1.0
        assert prometheus.query('agentapi_breaker_state{breaker="redis",state="closed"}') == 1.0
        # Two scrapes later nothing has drifted: the sum is stable, not a per-worker sample.
        time.sleep(2.5)
        assert prometheus.query(ok) == 25.0
    finally:
        prometheus.stop()
    # The request log is JSON, one line per request, with the request id; gunicorn's own lines too.
    lines = [json.loads(line) for line in server.log_tail(200_000).splitlines() if line.startswith("{")]
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
    refused = [line for line in lines if line.get("status") == 429]
    assert len(refused) == 5 and all(line["request_id"] and line["tenant_id"] for line in refused)
