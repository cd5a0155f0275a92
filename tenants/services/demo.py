"""Writes for tenants; every function takes keyword-only arguments."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

DEMO_USERS = {
    "admin": {"role": "superuser", "is_staff": True, "is_superuser": True},
    "acme-owner": {"role": "owner of acme", "is_staff": False, "is_superuser": False},
    "globex-owner": {"role": "owner of globex", "is_staff": False, "is_superuser": False},
}


@transaction.atomic
def demo_seed() -> dict:
    """Create or refresh the demo users and return their logins."""
    User = get_user_model()
    users = {}
    for username, spec in DEMO_USERS.items():
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.is_staff = spec["is_staff"]
        user.is_superuser = spec["is_superuser"]
        user.set_password(settings.DEMO_PASSWORD)
        user.save()
        users[username] = {"role": spec["role"], "password": settings.DEMO_PASSWORD}
    return {"users": users}
