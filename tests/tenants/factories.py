"""Factories for tenants tests: build rows through the services, as the app does."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from tenants.models import Membership
from tenants.services.apikeys import apikey_issue
from tenants.services.flags import flag_create
from tenants.services.memberships import membership_add
from tenants.services.plans import plan_create
from tenants.services.tenants import tenant_create

_seq = itertools.count(1)


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username, password="pw-123456789", **extra)


def make_staff(username: str = "staff"):
    return get_user_model().objects.create_superuser(username, password="pw-123456789")


def make_plan(code: str | None = None, **fields):
    code = code or f"plan{next(_seq)}"
    return plan_create(code=code, name=code.title(), actor=None, **fields)


def make_tenant(slug: str | None = None, *, plan=None, owner=None, **fields):
    slug = slug or f"tenant{next(_seq)}"
    tenant = tenant_create(slug=slug, name=slug.title(), plan=plan or make_plan(), actor=None, **fields)
    if owner is not None:
        membership_add(tenant=tenant, user=owner, role=Membership.Role.OWNER, actor=None)
    return tenant


def make_flag(key: str | None = None, *, default: bool = False, tenant_editable: bool = False, **fields):
    key = key or f"flag{next(_seq)}"
    description = fields.pop("description", f"{key} flag")
    return flag_create(
        key=key, description=description, default=default, tenant_editable=tenant_editable, actor=None, **fields
    )


def make_key(tenant, **fields):
    fields.setdefault("scopes", None)
    return apikey_issue(tenant=tenant, name=fields.pop("name", "replica"), actor=None, **fields)
