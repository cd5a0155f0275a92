"""seed_demo, flush_usage and probe_upstreams follow the OperationCommand conventions."""

from __future__ import annotations

import http.server
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_FAILED, EXIT_REDIS_DOWN
from agentapi_admin.redis_process import free_port
from tenants.keys import usage_key
from tenants.models import ApiKey, Tenant, UsageDaily
from tests.commands.conftest import db_state, redis_state, run_json
from tests.tenants.factories import make_plan, make_tenant

pytestmark = pytest.mark.django_db


def test_seed_demo_json_is_an_operation_summary_and_refuses_dry_run():
    summary = run_json("seed_demo")
    assert summary["command"] == "seed_demo" and summary["dry_run"] is False
    assert set(summary["api_keys"]) == {"acme", "globex"}
    assert run_json("seed_demo")["api_keys"] == summary["api_keys"], "the same keys again"
    assert ApiKey.objects.count() == 2
    with pytest.raises(CommandError, match="unrecognized arguments: --dry-run"):
        call_command("seed_demo", "--dry-run")


def test_flush_usage_dry_run_changes_nothing(redis_client):
    tenant = make_tenant("acme")
    redis_client.hset(usage_key(tenant.slug, tenant.pk, "20260101"), mapping={"requests": 5, "denied": 1})
    before = (redis_state(redis_client), db_state())
    summary = run_json("flush_usage", "--dry-run")
    assert (summary["keys"], summary["rows_written"]) == (1, 2)
    assert (redis_state(redis_client), db_state()) == before
    assert run_json("flush_usage")["rows_written"] == 2
    assert UsageDaily.objects.count() == 2
    with pytest.raises(CommandError, match="--batch-size must be a whole number from 1 to 100000"):
        run_json("flush_usage", "--batch-size", "0")


class Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_probe_upstreams_one_tenant_plain_output(upstream_url):
    plan = make_plan("std")
    make_tenant("acme", plan=plan, upstream_url=upstream_url)
    make_tenant("globex", plan=plan, upstream_url=f"http://127.0.0.1:{free_port()}")
    out = StringIO()
    call_command("probe_upstreams", "--tenant", "acme", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("acme: ok, ") and lines[-1].startswith("probe_upstreams: probed=1, ok=1, failed=0")
    with pytest.raises(CommandError, match="Upstream probe failed for: globex") as excinfo:
        run_json("probe_upstreams", "--all", "--timeout", "0.5")
    assert excinfo.value.returncode == EXIT_FAILED
    assert Tenant.objects.count() == 2


def test_probe_upstreams_has_no_dry_run():
    with pytest.raises(CommandError, match="unrecognized arguments: --dry-run"):
        call_command("probe_upstreams", "--dry-run")


def test_flush_usage_redis_down_exits_2(redis_server):
    redis_server.kill()
    with pytest.raises(CommandError) as excinfo:
        run_json("flush_usage")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN
