"""probe_upstreams: every serving tenant's upstream through its breaker, exit 1 on failure."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agentapi_admin.redis_process import free_port
from tenants.models import Plan, Tenant


@pytest.fixture
def plan(db):
    return Plan.objects.create(code="p", name="P")


def test_all_serving_tenants_are_probed(plan, upstream_url):
    Tenant.objects.create(slug="acme", name="Acme", plan=plan, upstream_url=upstream_url)
    Tenant.objects.create(slug="off", name="Off", plan=plan, upstream_url=upstream_url, status="suspended")
    Tenant.objects.create(slug="nourl", name="No URL", plan=plan)
    out = io.StringIO()
    call_command("probe_upstreams", json=True, stdout=out)
    summary = json.loads(out.getvalue())
    assert (summary["probed"], summary["ok"], summary["failed"]) == (1, 1, 0)
    assert summary["results"][0]["tenant"] == "acme" and summary["results"][0]["breaker_state"] == "closed"


def test_a_failing_upstream_exits_1_and_names_the_tenant(plan, upstream_url):
    Tenant.objects.create(slug="acme", name="Acme", plan=plan, upstream_url=upstream_url)
    Tenant.objects.create(slug="gone", name="Gone", plan=plan, upstream_url=f"http://127.0.0.1:{free_port()}")
    out = io.StringIO()
    with pytest.raises(CommandError, match="gone") as failure:
        call_command("probe_upstreams", stdout=out)
    assert failure.value.returncode == 1
    assert "acme: ok" in out.getvalue() and "gone: FAIL" in out.getvalue()


def test_unknown_tenant_and_bad_timeout_are_clear_errors(plan):
    with pytest.raises(CommandError, match="Unknown tenant"):
        call_command("probe_upstreams", tenant="nope")
    with pytest.raises(CommandError, match="--timeout"):
        call_command("probe_upstreams", timeout=0)
