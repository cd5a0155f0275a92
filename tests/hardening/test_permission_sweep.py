"""The permission sweep: every admin URL and every action, as every role; refusals change nothing.

URLs come from the resolver, actions from every ModelAdmin in `admin.site._registry`,
ops pages from the `ops` URL namespace (tests/hardening/permission_sweep.py), so a new
admin, action or ops action is swept without editing this file, and one that forgets
its permission check fails here. docs/security.md carries the table and the counts
this file checks (set UPDATE_SECURITY_DOC=1 to rewrite them after a deliberate change).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client

from agentapi_admin.admin_base import GuardedModelAdmin
from audit.models import AuditEvent
from automation.models import StaffToken
from automation.services import staff_token_create
from console.admin import OpsPageAdmin
from resilience.breakers.registry import breaker
from resilience.sessions.backends.base import session_ref
from tenants.models import ApiKey, Flag, Plan, Segment, Tenant, UsageDaily
from tenants.services.flags import flag_owner_toggle, flag_set_override, segment_create
from tenants.services.tenants import tenant_suspend, tenant_update
from tests.tenants.factories import make_staff
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.endpoints import endpoint_create

from .permission_sweep import (
    METHODS,
    ROLES,
    STAFF_ROLES,
    AdminUrl,
    action_allowed,
    actions_of,
    admin_urls,
    full_state,
    is_staff,
    permission_table,
    registry,
    sweep_object,
    url_allowed,
    writes_recorded,
)

pytestmark = pytest.mark.django_db

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
TABLE_START, TABLE_END = "<!-- permission-table:start -->", "<!-- permission-table:end -->"
COUNTS_START, COUNTS_END = "<!-- sweep-counts:start -->", "<!-- sweep-counts:end -->"


@pytest.fixture
def users(world, view_only_staff, change_staff):
    return {
        "anonymous": None,
        "non-staff": world.a_owner,
        "view-only staff": view_only_staff,
        "change staff": change_staff,
        "superuser": make_staff("root"),
    }


@pytest.fixture
def clients(users, settings):
    # The session's once-per-interval activity refresh is a write of its own; on a slow run it would land
    # inside a refused request and read as the refusal writing. Every sweep (URLs and actions) is about views.
    settings.RESILIENCE_SESSION_ACTIVITY_INTERVAL = 86_400
    made = {}
    for role, user in users.items():
        client = Client()
        if user is not None:
            client.force_login(user)
        client.get("/admin/")  # session activity settles before anything is compared
        made[role] = client
    return made


@pytest.fixture
def objects(world, upstream_url, change_staff):
    """One row of every admin model; acme has a reachable upstream and an owner toggle, globex is suspended."""
    tenant_update(tenant=world.a, upstream_url=upstream_url, actor=None)
    tenant_suspend(tenant=world.b, reason="unpaid", actor=None)
    # An owner's own choice, for the action that resets owner toggles.
    flag_owner_toggle(tenant=world.a, flag=world.editable, enabled=False, actor=world.a_owner)
    UsageDaily.objects.create(tenant=world.a, day=date(2026, 1, 2), metric="requests", count=3)
    endpoint, _ = endpoint_create(
        tenant=world.a, url="https://hooks.example.com/in", event_types=["override.set"], actor=None
    )
    flag_set_override(tenant=world.a, flag=world.editable, enabled=True, actor=None)
    from django.contrib.auth import get_user_model

    return {
        Tenant: Tenant.objects.get(pk=world.a.pk),
        Plan: world.a.plan,
        Flag: world.editable,
        # Used by no flag, so a delete that forgot its permission check would really delete it.
        Segment: segment_create(
            key="eu-tenants", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None
        ),
        ApiKey: world.a_key,
        AuditEvent: AuditEvent.objects.order_by("pk").first(),
        UsageDaily: UsageDaily.objects.get(),
        get_user_model(): world.outsider,
        Group: Group.objects.create(name="operators"),
        WebhookEndpoint: endpoint,
        WebhookDelivery: WebhookDelivery.objects.get(),
        # Change staff's own token: only its owner sees it, which the sweep must confirm.
        StaffToken: staff_token_create(user=change_staff, name="ci", scopes=["tenants:read"], actor=None)[0],
    }


@contextmanager
def rolled_back():
    """Run a request in a savepoint that is rolled back, so one role's writes never hide another's."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def ops_action_data(world) -> dict:
    """A complete, valid target for every ops action, fresh each time: a missing check would really act."""
    victim = Client()
    victim.force_login(world.a_member)
    breaker("upstream.acme")
    return {
        "reason": "permission sweep",
        "scope": "ip",
        "tenant": world.a.slug,
        "identity": "10.9.9.9",
        "name": "upstream.acme",
        "action": "force_open",
        "user": str(world.a_member.pk),
        "ref": session_ref(victim.session.session_key),
    }


def assert_refused(role: str, url_label: str, response, *, json_twin: bool = False, app_list: bool = False):
    where = f"{role} {url_label}: {response.status_code} {response.get('Location', '')}"
    if role in STAFF_ROLES:
        assert response.status_code == (404 if app_list else 403), where
    elif json_twin:
        assert response.status_code == 403, where
    else:
        assert response.status_code == 302, where
        location = response["Location"]
        assert location.startswith("/admin/login/") or (url_label == "/admin/logout/" and location == "/admin/"), where


def assert_allowed(role: str, url_label: str, response):
    where = f"{role} {url_label}: {response.status_code} {response.get('Location', '')}"
    assert response.status_code < 500 and response.status_code != 403, where
    assert not response.get("Location", "").startswith("/admin/login/"), where


def test_every_admin_url_as_every_role(world, users, clients, objects):
    urls = admin_urls(objects)
    kinds = {url.kind for url in urls}
    assert {"model:changelist", "model:change", "model:delete", "ops-page", "ops-action", "site:index"} <= kinds
    refused = allowed = 0
    for role in ROLES:
        client, user = clients[role], users[role]
        for url in urls:
            for method in METHODS:
                expected = url_allowed(url, method, user)
                data = dict(url.query)
                if url.kind == "ops-action" and method == "POST":
                    data.update(ops_action_data(world))
                audits = AuditEvent.objects.count()
                with rolled_back(), writes_recorded() as writes:
                    if method == "GET":
                        response = client.get(url.path, data)
                    else:
                        response = client.post(url.path + _query(url), data)
                    audited = AuditEvent.objects.count() > audits
                if expected:
                    assert_allowed(role, f"{method} {url.label}", response)
                    if url.kind == "ops-page":
                        assert not writes["sql"], f"{method} {url.label} wrote to the database: {writes['sql']}"
                    if url.kind == "ops-action" and method == "POST":
                        # Else the sweep's data proves no refusal: give ops_action_data the action's fields.
                        assert audited, f"{role} POST {url.label} did nothing with ops_action_data()"
                    allowed += 1
                else:
                    assert_refused(
                        role,
                        url.label if url.path != "/admin/logout/" else url.path,
                        response,
                        json_twin=url.query.get("format") == "json",
                        app_list=url.kind == "site:app_list",
                    )
                    assert writes == {"sql": [], "redis_writes": 0}, f"{role} {method} {url.label} refused but wrote"
                    refused += 1
    assert refused + allowed == len(urls) * len(ROLES) * len(METHODS)
    # Nobody outside the staff gets anything but the login page.
    assert refused >= 2 * (len(urls) - 1) * len(METHODS)


def _query(url: AdminUrl) -> str:
    return "?" + "&".join(f"{k}={v}" for k, v in url.query.items()) if url.query else ""


def action_targets(world, objects) -> dict:
    targets = {}
    for model, model_admin in registry():
        if actions_of(model_admin):
            obj = sweep_object(model, objects)
            assert obj is not None, f"the permission sweep needs a {model._meta.label} row (add one to objects)"
            targets[model] = [obj.pk]
    targets[Tenant] = [world.a.pk, world.b.pk]  # acme to suspend and probe, globex to resume
    return targets


def test_every_model_admin_is_guarded():
    for model, model_admin in registry():
        assert isinstance(model_admin, GuardedModelAdmin), f"{model._meta.label}'s admin must extend GuardedModelAdmin"


def read_only(func) -> bool:
    """An action declared with permissions=["view"] only reads (an export); the sweep checks it writes nothing."""
    return set(getattr(func, "allowed_permissions", ())) == {"view"}


def test_every_action_declares_a_permission_beyond_view():
    for model, model_admin in registry():
        for name, func in actions_of(model_admin):
            declared = set(getattr(func, "allowed_permissions", ()))
            assert declared - {"view"} or read_only(func), f"{model._meta.label} action {name} must declare permissions"
            for perm in declared:
                assert hasattr(model_admin, f"has_{perm}_permission"), f"{name}: no has_{perm}_permission"


def test_every_action_as_every_role(world, users, clients, objects, upstream):
    handler = upstream[1]
    targets = action_targets(world, objects)
    checked = {"refused": 0, "allowed": 0}
    for model, model_admin in registry():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for name, func in actions_of(model_admin):
            for role in ROLES:
                expected = action_allowed(model_admin, func, users[role])
                post = {
                    "action": name,
                    "_selected_action": [str(pk) for pk in targets[model]],
                    "index": "0",
                    "reason": "permission sweep",
                    "post": "yes",  # delete_selected's confirmation: a missing check would really delete
                }
                before, hits = full_state(), handler.hits
                with rolled_back():
                    response = clients[role].post(url, post)
                    if response.streaming:  # an export reads while it streams: drain it before comparing
                        b"".join(response.streaming_content)
                    after = full_state()
                label = f"{model._meta.label} action {name}"
                if expected and read_only(func):
                    assert_allowed(role, label, response)
                    assert response.get("Content-Disposition", "").startswith("attachment"), f"{role}: {label}"
                    assert after == before and handler.hits == hits, f"{role}: {label} only reads, yet acted"
                    checked["allowed"] += 1
                elif expected:
                    assert_allowed(role, label, response)
                    assert after != before or handler.hits > hits, f"{role}: {label} did nothing"
                    checked["allowed"] += 1
                else:
                    assert_refused(role, label, response)
                    assert after == before and handler.hits == hits, f"{role}: {label} was refused but acted"
                    checked["refused"] += 1
    view_only = users["view-only staff"]
    # View-only staff may export (read-only actions) and run nothing else.
    assert not any(
        action_allowed(ma, f, view_only) for _, ma in registry() for _, f in actions_of(ma) if not read_only(f)
    )
    assert checked["allowed"] >= 6  # suspend, resume, revoke (change staff and superuser) at least


def test_ops_index_entries_offer_no_actions():
    for _model, model_admin in registry():
        if isinstance(model_admin, OpsPageAdmin):
            assert actions_of(model_admin) == []


# --------------------------------------------------------------------- docs/security.md
def sweep_counts(objects) -> str:
    urls = admin_urls(objects)
    actions = sum(len(actions_of(ma)) for _, ma in registry())
    return (
        f"- URLs: {len(urls)} admin and ops URLs \u00d7 {len(ROLES)} roles \u00d7 {len(METHODS)} methods "
        f"({'/'.join(METHODS)}) = {len(urls) * len(ROLES) * len(METHODS)} requests\n"
        f"- Actions: {actions} admin actions \u00d7 {len(ROLES)} roles = {actions * len(ROLES)} requests\n"
        f"- Roles: {', '.join(ROLES)}"
    )


def test_security_doc_shows_the_permission_table_and_sweep_counts(users, objects):
    assert is_staff(users["view-only staff"]) and not is_staff(users["non-staff"])
    text = SECURITY_DOC.read_text()
    expected = {
        (TABLE_START, TABLE_END): permission_table(users),
        (COUNTS_START, COUNTS_END): sweep_counts(objects),
    }
    if os.environ.get("UPDATE_SECURITY_DOC") == "1":
        for (start, end), body in expected.items():
            text = re.sub(f"{re.escape(start)}.*?{re.escape(end)}", f"{start}\n{body}\n{end}", text, flags=re.S)
        SECURITY_DOC.write_text(text)
    for (start, end), body in expected.items():
        found = re.search(f"{re.escape(start)}\n(.*?)\n{re.escape(end)}", text, flags=re.S)
        assert found, f"docs/security.md lacks the {start} … {end} block"
        assert found.group(1) == body, (
            f"docs/security.md is out of date (UPDATE_SECURITY_DOC=1 rewrites it); expected:\n{body}"
        )
