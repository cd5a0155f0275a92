"""Fixtures for the resilience tests: every test starts with a closed Redis breaker."""

from __future__ import annotations

import pytest

from resilience.breakers.process import redis_breaker
from resilience.breakers.registry import forget_breakers


@pytest.fixture(autouse=True)
def _closed_redis_breaker():
    """Every test starts with a closed Redis breaker and no breaker objects cached from earlier tests."""
    redis_breaker.reset()
    redis_breaker._overrides.clear()
    redis_breaker.transitions.clear()
    forget_breakers()
    yield
    redis_breaker.reset()
    redis_breaker._overrides.clear()
    forget_breakers()
