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


def staff_with(username: str, *perms: str):
    """Create active staff holding exactly `perms` ("app_label.codename")."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username, f"{username}@example.test", PASSWORD, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def every_permission(prefix: str) -> list[str]:
    """Return every permission whose codename starts with `prefix` ("view_", "change_"), as "app.codename"."""
    from django.contrib.auth.models import Permission

    rows = Permission.objects.filter(codename__startswith=prefix).select_related("content_type")
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in rows)


@pytest.fixture
def view_only_staff(world):
    """Staff holding every view_* permission and nothing else."""
    return staff_with("viewer", *every_permission("view_"))


@pytest.fixture
def change_staff(world):
    """Staff holding every view_* and change_* permission (no add, delete or dedicated ones)."""
    return staff_with("changer", *every_permission("view_"), *every_permission("change_"))
