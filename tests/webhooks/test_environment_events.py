"""Environments in webhook events: override and owner events name theirs; a promotion is one event."""

from __future__ import annotations

import pytest

from audit.services import audit_via
from tenants.models import Membership
from tenants.services.environments import environment_create, environment_diff, environment_promote
from tenants.services.flags import flag_clear_override, flag_owner_reset, flag_owner_toggle, flag_set_override
from tenants.services.memberships import membership_add
from tests.tenants.factories import make_flag, make_tenant, make_user
from webhooks.models import EventType, WebhookDelivery
from webhooks.selectors import tenant_event_choices
from webhooks.services.endpoints import endpoint_create

pytestmark = pytest.mark.django_db

ALL = list(EventType.values)


def _events(endpoint) -> list[dict]:
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event").order_by("id")
    return [d.event.payload for d in deliveries]


@pytest.fixture
def owner(tenant):
    user = make_user("acme-owner")
    membership_add(tenant=tenant, user=user, role=Membership.Role.OWNER, actor=None)
    environment_create(tenant=tenant, key="staging", actor=None)
    return user


def test_override_and_owner_events_name_their_environment(tenant, owner):
    endpoint, _ = endpoint_create(tenant=tenant, url="https://hooks.example.com/in", event_types=ALL, actor=None)
    flag = make_flag("beta", tenant_editable=True)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, rollout_percent=50, environment="staging", actor=None)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=False, environment="staging", actor=owner)
    flag_clear_override(tenant=tenant, flag=flag, environment="staging", actor=None)
    flag_owner_reset(tenant=tenant, flag=flag, environment="staging", actor=None)
    flag_set_override(tenant=tenant, flag=flag, enabled=False, actor=None)

    events = [e["data"] for e in _events(endpoint)]
    assert [e["object"] for e in events] == [
        {"type": "flag_override", "flag": "beta", "environment": "staging"},
        {"type": "owner_toggle", "flag": "beta", "environment": "staging"},
        {"type": "flag_override", "flag": "beta", "environment": "staging"},
        {"type": "owner_toggle", "flag": "beta", "environment": "staging"},
        {"type": "flag_override", "flag": "beta", "environment": "production"},
    ]
    # The environment names the row; before and after are its state, as for production.
    assert events[0]["after"] == {"enabled": True, "rollout_percent": 50, "source": "admin"}
    assert (events[1]["before"], events[1]["after"]) == (None, {"enabled": False})
    assert events[2]["before"] == {"enabled": True, "rollout_percent": 50, "source": "admin"}
    assert (events[3]["before"], events[3]["after"]) == ({"enabled": False}, None)


def test_a_promotion_is_one_tenant_event_with_source_target_and_changes(tenant, owner):
    platform, _ = endpoint_create(tenant=None, url="https://hooks.example.com/all", event_types=ALL, actor=None)
    mine, _ = endpoint_create(
        tenant=tenant, url="https://hooks.example.com/in", event_types=["environment.promoted"], actor=None
    )
    other, _ = endpoint_create(
        tenant=make_tenant("globex"),
        url="https://hooks.example.com/globex",
        event_types=["environment.promoted"],
        actor=None,
    )
    beta, theme = make_flag("beta", tenant_editable=True), make_flag("my.theme")
    flag_set_override(tenant=tenant, flag=beta, enabled=True, environment="staging", actor=None)
    flag_set_override(tenant=tenant, flag=theme, enabled=False, environment="staging", actor=None)
    flag_set_override(tenant=tenant, flag=theme, enabled=True, rollout_percent=10, actor=None)
    flag_owner_toggle(tenant=tenant, flag=beta, enabled=True, actor=owner)
    diff = environment_diff(tenant=tenant, source="staging", target="production")
    with audit_via("change request #7, scheduled by alice"):
        environment_promote(tenant=tenant, source="staging", target="production", digest=diff.digest, actor=owner)

    [event] = _events(mine)
    assert event["type"] == "environment.promoted"
    data = event["data"]
    assert data["tenant"] == "acme" and data["actor"] == "acme-owner"
    assert data["object"] == {"type": "environment", "key": "production"}
    assert (data["source"], data["target"]) == ("staging", "production")
    assert data["changes"] == [
        {
            "layer": "overrides",
            "flag": "beta",
            "before": None,
            "after": {"enabled": True, "rollout_percent": 100},
        },
        {
            "layer": "overrides",
            "flag": "my.theme",
            "before": {"enabled": True, "rollout_percent": 10},
            "after": {"enabled": False, "rollout_percent": 100},
        },
        {"layer": "owner_toggles", "flag": "beta", "before": {"enabled": True}, "after": None},
    ]
    assert [e["type"] for e in _events(platform)][-1] == "environment.promoted"
    assert _events(other) == []


def test_a_promotion_without_changes_sends_no_event(tenant, owner):
    endpoint, _ = endpoint_create(tenant=tenant, url="https://hooks.example.com/in", event_types=ALL, actor=None)
    diff = environment_diff(tenant=tenant, source="staging", target="production")
    environment_promote(tenant=tenant, source="staging", target="production", digest=diff.digest, actor=None)
    assert _events(endpoint) == []


def test_tenant_endpoints_may_subscribe_to_promotions():
    assert "environment.promoted" in dict(tenant_event_choices())
