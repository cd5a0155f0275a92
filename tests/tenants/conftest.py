"""Fixtures for the tenants tests: every test starts with a closed Redis breaker."""

from __future__ import annotations

import pytest

from resilience.breakers.process import redis_breaker


@pytest.fixture(autouse=True)
def _closed_redis_breaker():
    redis_breaker.reset()
    yield
    redis_breaker.reset()
