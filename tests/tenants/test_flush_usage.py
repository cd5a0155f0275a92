"""flush_usage: absolute daily counters copied to UsageDaily, idempotent, safe beside live traffic."""

import json
import threading
from datetime import date

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.keys import usage_key, usage_legacy_key
from tenants.models import UsageDaily

from .factories import make_tenant

pytestmark = pytest.mark.django_db


def flush(capsys, *args):
    call_command("flush_usage", "--json", *args)
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def counts():
    return {(row.tenant.slug, row.day, row.metric): row.count for row in UsageDaily.objects.select_related("tenant")}


def test_flush_is_idempotent(capsys, redis_client):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    redis_client.hset(usage_key("acme", acme.pk, "20261124"), mapping={"requests": 7, "rate_limited": 2})
    redis_client.hset(usage_key("globex", globex.pk, "20261125"), mapping={"requests": 3})
    redis_client.hset(usage_key("nobody", "not-a-uuid", "20261125"), mapping={"requests": 1})
    redis_client.hset("agentapi:usage:00000000-0000-0000-0000-000000000000:20261125", mapping={"requests": 1})
    dry = flush(capsys, "--dry-run")
    assert dry["dry_run"] is True and dry["rows_written"] == 3 and not UsageDaily.objects.exists()
    first = flush(capsys)
    assert (first["keys"], first["rows_written"], first["skipped"]) == (4, 3, 2)
    expected = {
        ("acme", date(2026, 11, 24), "requests"): 7,
        ("acme", date(2026, 11, 24), "rate_limited"): 2,
        ("globex", date(2026, 11, 25), "requests"): 3,
    }
    assert counts() == expected
    second = flush(capsys)
    assert second["rows_written"] == 0 and second["rows_unchanged"] == 3
    assert counts() == expected
    redis_client.hincrby(usage_key("acme", acme.pk, "20261124"), "requests", 5)
    assert flush(capsys)["rows_written"] == 1
    assert counts()[("acme", date(2026, 11, 24), "requests")] == 12


def test_a_lower_redis_count_never_lowers_the_stored_one(capsys, redis_client):
    acme = make_tenant("acme")
    redis_client.hset(usage_key("acme", acme.pk, "20261124"), "requests", 50)
    flush(capsys)
    redis_client.hset(usage_key("acme", acme.pk, "20261124"), "requests", 4)  # Redis restarted without persistence
    flush(capsys)
    assert counts()[("acme", date(2026, 11, 24), "requests")] == 50


def test_flush_concurrent_with_traffic_loses_nothing(capsys, redis_client, redis_server):
    acme = make_tenant("acme")
    name = usage_key("acme", acme.pk, "20261125")
    total = 3000

    def traffic():
        with redis.Redis(port=redis_server.port) as client:
            for _ in range(total):
                client.hincrby(name, "requests", 1)

    worker = threading.Thread(target=traffic)
    worker.start()
    seen = []
    while worker.is_alive():
        flush(capsys)
        seen.append(counts().get(("acme", date(2026, 11, 25), "requests"), 0))
    worker.join()
    flush(capsys)
    final = counts()[("acme", date(2026, 11, 25), "requests")]
    assert final == total
    assert seen == sorted(seen), "stored counts only grow"
    assert len(seen) >= 2


def test_counts_written_under_the_old_key_name_are_added_not_lost(capsys, redis_client):
    # A deploy moves the day's counter to the tenant's slot mid-day: both halves are the day's count.
    acme, globex = make_tenant("acme"), make_tenant("globex")
    redis_client.hset(usage_legacy_key(acme.pk, "20261124"), mapping={"requests": 40, "quota_exceeded": 1})
    redis_client.hset(usage_key("acme", acme.pk, "20261124"), mapping={"requests": 2})
    redis_client.hset(usage_legacy_key(globex.pk, "20261123"), mapping={"requests": 9})
    first = flush(capsys)
    assert first["keys"] == 3 and first["skipped"] == 0
    expected = {
        ("acme", date(2026, 11, 24), "requests"): 42,
        ("acme", date(2026, 11, 24), "quota_exceeded"): 1,
        ("globex", date(2026, 11, 23), "requests"): 9,
    }
    assert counts() == expected
    assert flush(capsys)["rows_written"] == 0  # reading both names again adds nothing twice
    assert counts() == expected


def test_second_copy_is_refused_by_the_lock(redis_client):
    redis_client.set("agentapi:lock:flush_usage", "someone-else")
    with pytest.raises(CommandError, match="Another flush_usage"):
        call_command("flush_usage")


def test_redis_down_is_a_clear_command_error(redis_server):
    redis_server.kill()
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("flush_usage")
