"""On a terminal, batch loops draw a progress bar and renew the lock; elsewhere only the summary is printed."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from agentapi_admin.command import OperationCommand
from resilience.connection import key


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Batches(OperationCommand):
    help = "Tick three times."
    lock_name = "batches"
    lock_timeout = 5.0

    def run(self, **options):
        ttls = []
        with self.ticking("batches") as tick:
            for _ in range(3):
                tick()
                ttls.append(self._lock.redis.pttl(self._lock.name))
        return {"ticks": 3, "lease_renewed": all(ttl > 4000 for ttl in ttls)}


@pytest.mark.parametrize("out_class", [io.StringIO, Terminal])
def test_ticking_renews_the_lock_and_prints_one_summary(out_class, redis_client):
    out = out_class()
    call_command(Batches(), stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith("test_progress: ticks=3, lease_renewed=True")
    assert not redis_client.exists(key("lock", "batches"))
