"""Fixtures of the change-request tests: staff who write and approve, an owner, a tenant and flags."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission

from tenants.services.flags import flag_update
from tests.tenants.factories import make_flag, make_plan, make_tenant, make_user

PASSWORD = "pw-123456789"


def grant(user, *perms: str):
    """Give `user` exactly these extra permissions ("app.codename") and return it fresh (no permission cache)."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return type(user).objects.get(pk=user.pk)


def make_staff_with(username: str, *perms: str):
    return grant(make_user(username, is_staff=True), *perms)


@dataclass
class Cast:
    tenant: object
    other: object
    owner: object
    author: object
    approver: object
    viewer: object
    flag: object
    guarded: object
    editable: object


def guarded_flag(key: str, **fields):
    """Create a flag that requires approval (turning it on needs none: the flag did not require it yet)."""
    flag = make_flag(key, **fields)
    return flag_update(flag=flag, requires_approval=True, actor=None)


@pytest.fixture
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cast(db, fast_hasher) -> Cast:
    """acme (owned by `owner`) and globex; `author` changes flags, `approver` also approves; `guarded` needs it."""
    plan = make_plan("starter")
    owner = make_user("acme-owner")
    tenant = make_tenant("acme", plan=plan, owner=owner)
    other = make_tenant("globex", plan=plan, owner=make_user("globex-owner"))
    flag_perms = ("tenants.view_flag", "tenants.change_flag", "tenants.change_tenant", "changes.view_changerequest")
    author = make_staff_with("alice", *flag_perms, "changes.approve_changerequest")
    approver = make_staff_with("bob", *flag_perms, "changes.approve_changerequest")
    viewer = make_staff_with("victor", "tenants.view_flag", "changes.view_changerequest")
    return Cast(
        tenant=tenant,
        other=other,
        owner=owner,
        author=author,
        approver=approver,
        viewer=viewer,
        flag=make_flag("beta", description="Beta features."),
        guarded=guarded_flag("payments", description="Payment pipeline.", tenant_editable=True),
        editable=make_flag("new-ui", description="The new console.", tenant_editable=True),
    )
