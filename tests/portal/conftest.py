"""Two tenants side by side, A (acme) and B (globex), with users of every role and some objects each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from tenants.models import ApiKey, Environment, Flag, Invitation, Membership, Tenant
from tenants.services.environments import environment_create
from tenants.services.flags import flag_create
from tenants.services.invitations import invitation_create
from tenants.services.memberships import membership_add
from tests.tenants.factories import make_key, make_plan, make_tenant, make_user
from webhooks.models import WebhookEndpoint
from webhooks.services.endpoints import endpoint_create

PASSWORD = "pw-123456789"


@dataclass
class World:
    a: Tenant
    b: Tenant
    a_owner: object
    a_admin: object
    a_member: object
    b_owner: object
    outsider: object
    a_key: ApiKey
    a_secret: str
    b_key: ApiKey
    b_secret: str
    a_member_membership: Membership
    b_owner_membership: Membership
    a_invitation: Invitation
    b_invitation: Invitation
    editable: Flag
    risky: Flag
    locked: Flag
    a_endpoint: WebhookEndpoint
    b_endpoint: WebhookEndpoint
    a_staging: Environment
    b_qa: Environment


@pytest.fixture
def fast_hasher(settings):
    # Five users per test: PBKDF2's deliberate slowness would dominate the suite on shared cores.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db, fast_hasher) -> World:
    return build_world()


def build_world() -> World:
    """Create tenants A (acme, with staging) and B (globex, with qa), their users, keys and three flags."""
    plan = make_plan("starter")
    a_owner, a_admin, a_member = (
        make_user("a-owner", email="owner@acme.test"),
        make_user("a-admin"),
        make_user("a-member"),
    )
    b_owner = make_user("b-owner", email="owner@globex.test")
    outsider = make_user("outsider", email="outsider@example.test")
    a = make_tenant("acme", plan=plan, owner=a_owner)
    b = make_tenant("globex", plan=plan, owner=b_owner)
    membership_add(tenant=a, user=a_admin, role=Membership.Role.ADMIN, actor=None)
    a_member_membership = membership_add(tenant=a, user=a_member, role=Membership.Role.MEMBER, actor=None)
    a_key, a_secret = make_key(a, name="acme replica")
    b_key, b_secret = make_key(b, name="globex replica")
    editable = make_flag("new-ui", "The redesigned agent console.", editable=True)
    risky = make_flag("auto-merge", "Agents merge their own pull requests.", editable=True, risky=True)
    locked = make_flag("billing-v2", "Platform-managed billing pipeline.", editable=False)
    a_invitation, _ = invitation_create(
        tenant=a, identifier="later@acme.test", role="member", actor=a_owner, link_for=str
    )
    b_invitation, _ = invitation_create(
        tenant=b, identifier="later@globex.test", role="member", actor=b_owner, link_for=str
    )
    a_endpoint, _ = endpoint_create(tenant=a, url="https://hooks.acme.test/in", event_types=["key.issued"], actor=None)
    b_endpoint, _ = endpoint_create(
        tenant=b, url="https://hooks.globex.test/in", event_types=["key.issued"], actor=None
    )
    # Different keys on purpose: B's environment under A's slug must be a 404, not A's own.
    a_staging = environment_create(tenant=a, key="staging", name="Staging", actor=None)
    b_qa = environment_create(tenant=b, key="qa", name="QA", actor=None)
    return World(
        a=a,
        b=b,
        a_owner=a_owner,
        a_admin=a_admin,
        a_member=a_member,
        b_owner=b_owner,
        outsider=outsider,
        a_key=a_key,
        a_secret=a_secret,
        b_key=b_key,
        b_secret=b_secret,
        a_member_membership=a_member_membership,
        b_owner_membership=Membership.objects.get(tenant=b, user=b_owner),
        a_invitation=a_invitation,
        b_invitation=b_invitation,
        editable=editable,
        risky=risky,
        locked=locked,
        a_endpoint=a_endpoint,
        b_endpoint=b_endpoint,
        a_staging=a_staging,
        b_qa=b_qa,
    )


def make_flag(key: str, description: str, *, editable: bool, risky: bool = False, default: bool = False) -> Flag:
    return flag_create(
        key=key, description=description, default=default, tenant_editable=editable, risky=risky, actor=None
    )


def client_for(user) -> Client:
    """Return a test client logged in as `user`."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(world) -> Client:
    return client_for(world.a_owner)


@pytest.fixture
def admin_client_a(world) -> Client:
    return client_for(world.a_admin)


@pytest.fixture
def member_client(world) -> Client:
    return client_for(world.a_member)
