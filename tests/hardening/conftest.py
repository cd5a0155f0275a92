"""Fixtures for the hardening tests: a closed Redis breaker, two tenants, fast password hashing."""

from __future__ import annotations

import pytest

from resilience.breakers.process import redis_breaker
from resilience.breakers.registry import forget_breakers
from tests.portal.conftest import PASSWORD, build_world

__all__ = ["PASSWORD"]


@pytest.fixture(autouse=True)
def _closed_redis_breaker():
    """Outage tests open the in-process Redis breaker; no other test inherits it."""
    redis_breaker.reset()
    redis_breaker._overrides.clear()
    forget_breakers()
    yield
    redis_breaker.reset()
    redis_breaker._overrides.clear()
    forget_breakers()


@pytest.fixture
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db, fast_hasher):
    return build_world()
