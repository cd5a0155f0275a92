"""Asked-flags counters: counted by the gateway in the request's one script, folded into FlagAskDaily once."""

import json
import time
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tenants.api import gateway
from tenants.api.gateway import ASK_ALL, ask_field, gateway_call
from tenants.keys import flag_asks_key, tag
from tenants.models import FlagAskCheckpoint, FlagAskDaily
from tenants.services.flagasks import MARKER

from .factories import make_flag, make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db


def today() -> str:
    return time.strftime("%Y%m%d", time.gmtime())


def asks(redis_client, tenant, day=None) -> dict:
    return redis_client.hgetall(flag_asks_key(tenant.slug, tenant.pk, day or today()))


def flush(capsys, *args) -> dict:
    call_command("flush_flag_asks", "--json", *args)
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def totals() -> dict:
    return {(row.flag_key, row.day): row.asks for row in FlagAskDaily.objects.all()}


@pytest.fixture
def acme():
    make_flag("beta")
    make_flag("dark-mode")
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    return tenant, secret


def bearer(secret) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


# -- counting ---------------------------------------------------------------------------------


def test_a_flag_request_counts_its_key_per_request(acme, redis_client):
    tenant, secret = acme
    http = Client()
    for _ in range(3):
        assert http.get("/api/v1/flags/beta", **bearer(secret)).status_code == 200
    assert http.get("/api/v1/flags/dark-mode", **bearer(secret)).status_code == 200
    assert http.get("/api/v1/flags/nope", **bearer(secret)).status_code == 404  # not in the document: not counted
    assert asks(redis_client, tenant) == {"beta": "3", "dark-mode": "1"}
    name = flag_asks_key(tenant.slug, tenant.pk, today())
    assert tag("acme") in name  # the tenant's slot: the same script call as the rest of the request
    assert 0 < redis_client.ttl(name) <= 8 * 86_400


def test_bootstrap_counts_every_flag_once_per_tenant_day_not_per_flag_or_request(acme, redis_client):
    tenant, secret = acme
    http = Client()
    first = http.get("/api/v1/bootstrap", **bearer(secret))
    assert first.status_code == 200
    for _ in range(4):
        assert http.get("/api/v1/bootstrap", **bearer(secret)).status_code == 200
    assert http.get("/api/v1/bootstrap", HTTP_IF_NONE_MATCH=first["ETag"], **bearer(secret)).status_code == 304
    assert asks(redis_client, tenant) == {ASK_ALL: "1"}


def test_a_process_that_forgot_counts_every_flag_again_harmlessly(acme, redis_client):
    tenant, secret = acme
    gateway_call(secret, asked=ASK_ALL)
    gateway._asked_all.clear()  # another process (or a restart) counts once more: still one tenant-day
    gateway_call(secret, asked=ASK_ALL)
    assert asks(redis_client, tenant) == {ASK_ALL: "2"}


def test_a_request_for_listed_keys_counts_one_field(acme, redis_client):
    tenant, secret = acme
    assert ask_field(["dark-mode", "beta", "beta"]) == "beta,dark-mode"
    assert ask_field(None) == ASK_ALL and ask_field([]) == ""
    assert ask_field([f"flag-{n:04d}" for n in range(200)]) == ASK_ALL  # too long a field: counted as every flag
    for _ in range(2):
        assert gateway_call(secret, field_name="rules", asked=ask_field(["dark-mode", "beta"])).outcome == "ok"
    assert asks(redis_client, tenant) == {"beta,dark-mode": "2"}


@pytest.mark.parametrize(
    "body,field",
    [
        (b'{"keys": ["dark-mode", "beta"]}', "beta,dark-mode"),
        (b'{"subject": "u1"}', ASK_ALL),
        (b'{"keys": null}', ASK_ALL),
        (b"", ASK_ALL),
        (b'{"keys": []}', ""),
        (b'{"keys": "beta"}', ""),
        (b"not json", ""),
    ],
)
def test_a_post_counts_the_keys_its_body_names(body, field):
    from django.test import RequestFactory

    from tenants.api.views import TenantKey

    request = RequestFactory().post("/api/v1/evaluate", data=body, content_type="application/json")
    assert TenantKey(field="rules", scope="flags:read")._asked(request, "") == field


def test_refused_requests_count_no_asks(redis_client):
    make_flag("beta")
    tenant = make_tenant("tight", plan=make_plan("tight", daily_quota=1))
    _, secret = make_key(tenant)
    _, no_scope = make_key(tenant, scopes=["config:read"])
    http = Client()
    assert http.get("/api/v1/flags/beta", **bearer(secret)).status_code == 200
    assert http.get("/api/v1/flags/beta", **bearer(secret)).status_code == 429  # quota
    assert http.get("/api/v1/flags/beta", **bearer(no_scope)).status_code == 403
    assert asks(redis_client, tenant) == {"beta": "1"}


def test_counting_adds_no_round_trip_and_no_sql(acme, redis_client, django_assert_num_queries):
    tenant, secret = acme
    http = Client()
    http.get("/api/v1/bootstrap", **bearer(secret))
    http.get("/api/v1/flags/beta", **bearer(secret))
    before = redis_client.info("commandstats")
    with django_assert_num_queries(0):
        assert http.get("/api/v1/bootstrap", **bearer(secret)).status_code == 200
    after = redis_client.info("commandstats")
    calls = {name: after[name]["calls"] - before.get(name, {}).get("calls", 0) for name in after}
    assert calls.get("cmdstat_evalsha") == 1 and not calls.get("cmdstat_hincrby", 0) > 1  # usage only
    with django_assert_num_queries(0):
        assert http.get("/api/v1/flags/beta", **bearer(secret)).status_code == 200
    assert asks(redis_client, tenant) == {ASK_ALL: "1", "beta": "2"}


# -- flushing ---------------------------------------------------------------------------------


def test_flush_adds_each_ask_once_summed_over_tenants(capsys, redis_client):
    make_flag("beta")
    make_flag("dark-mode")
    acme, globex = make_tenant("acme"), make_tenant("globex")
    redis_client.hset(flag_asks_key("acme", acme.pk, "20261124"), mapping={"beta": 5, ASK_ALL: 3, "gone": 9})
    redis_client.hset(flag_asks_key("globex", globex.pk, "20261124"), mapping={"beta,dark-mode": 2, ASK_ALL: 1})
    redis_client.hset(flag_asks_key("nobody", "not-a-uuid", "20261124"), mapping={"beta": 1})
    dry = flush(capsys, "--dry-run")
    assert dry["rows_written"] == 3 and not FlagAskDaily.objects.exists() and not FlagAskCheckpoint.objects.exists()
    first = flush(capsys)
    assert (first["keys"], first["asks_added"], first["skipped"]) == (3, 9, 1)
    day = date(2026, 11, 24)
    # `*` counts tenants that asked for every flag, not requests; unknown keys are left out.
    expected = {("beta", day): 7, ("dark-mode", day): 2, (ASK_ALL, day): 2}
    assert totals() == expected
    assert flush(capsys)["asks_added"] == 0  # again: nothing twice
    assert totals() == expected
    redis_client.hincrby(flag_asks_key("acme", acme.pk, "20261124"), "beta", 4)
    redis_client.hincrby(flag_asks_key("acme", acme.pk, "20261124"), ASK_ALL, 1)
    assert flush(capsys)["asks_added"] == 4
    assert totals() == {**expected, ("beta", day): 11}


def test_flush_of_live_gateway_counts_is_exactly_once(capsys, acme, redis_client):
    _, secret = acme
    http = Client()
    for _ in range(3):
        http.get("/api/v1/flags/beta", **bearer(secret))
    flush(capsys)
    http.get("/api/v1/flags/beta", **bearer(secret))
    flush(capsys)
    flush(capsys)
    day = timezone.now().date()
    assert totals() == {("beta", day): 4}


def test_a_redis_restart_neither_double_counts_nor_drops_later_asks(capsys, acme, redis_client, redis_server):
    tenant, secret = acme
    http = Client()
    for _ in range(5):
        http.get("/api/v1/flags/beta", **bearer(secret))
    flush(capsys)
    day = timezone.now().date()
    assert totals() == {("beta", day): 5}
    redis_server.restart()  # nothing is persisted: the day's hash is gone
    gateway.routes.forget()
    for _ in range(2):
        assert http.get("/api/v1/flags/beta", **bearer(secret)).status_code == 200
    assert asks(redis_client, tenant) == {"beta": "2"}
    flush(capsys)
    flush(capsys)
    assert totals() == {("beta", day): 7}


def test_a_restored_older_hash_adds_only_what_passed_the_checkpoint(capsys, acme, redis_client):
    tenant, _ = acme
    name = flag_asks_key("acme", tenant.pk, "20261124")
    redis_client.hset(name, mapping={"beta": 3})
    flush(capsys)
    old_marker = redis_client.hget(name, MARKER)
    redis_client.hset(name, "beta", 6)
    flush(capsys)
    # A snapshot taken between the two flushes comes back: its marker is of an older generation.
    redis_client.delete(name)
    redis_client.hset(name, mapping={"beta": 4, MARKER: old_marker})
    assert flush(capsys)["asks_added"] == 0
    redis_client.hset(name, "beta", 8)
    assert flush(capsys)["asks_added"] == 2
    assert totals() == {("beta", date(2026, 11, 24)): 8}


def test_flush_renews_the_expiry_and_prunes_old_checkpoints(capsys, acme, redis_client):
    tenant, _ = acme
    name = flag_asks_key("acme", tenant.pk, today())
    redis_client.hset(name, "beta", 1)
    old = FlagAskCheckpoint.objects.create(tenant=tenant, day=timezone.now().date() - timedelta(days=30), counts={})
    summary = flush(capsys)
    assert summary["checkpoints_pruned"] == 1 and not FlagAskCheckpoint.objects.filter(pk=old.pk).exists()
    assert 7 * 86_400 < redis_client.ttl(name) <= 9 * 86_400


def test_flush_with_redis_down_exits_2(redis_server):
    from django.core.management.base import CommandError

    redis_server.kill()
    with pytest.raises(CommandError, match="Redis is unreachable") as excinfo:
        call_command("flush_flag_asks")
    assert excinfo.value.returncode == 2
