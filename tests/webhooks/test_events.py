"""Which changes become which events, for which endpoints, with what payload; endpoint input rules."""

from __future__ import annotations

import pytest
from django.test import override_settings

from resilience.breakers import breaker
from resilience.breakers.services import breaker_force_close, breaker_force_open
from tenants.services.apikeys import apikey_revoke
from tenants.services.flags import (
    flag_clear_override,
    flag_owner_reset,
    flag_owner_toggle,
    flag_set_override,
    flag_update,
)
from tenants.services.tenants import tenant_resume, tenant_suspend
from tests.tenants.factories import make_flag, make_key, make_staff, make_tenant, make_user
from webhooks.exceptions import WebhooksError
from webhooks.models import EventType, WebhookDelivery, WebhookEvent
from webhooks.selectors import tenant_event_choices
from webhooks.services.endpoints import endpoint_create, endpoint_update

pytestmark = pytest.mark.django_db

ALL = list(EventType.values)


def _events(endpoint) -> list[dict]:
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event").order_by("id")
    return [d.event.payload for d in deliveries]


def test_every_tenant_change_becomes_its_event_with_before_and_after(tenant):
    owner = make_user("acme-owner")
    from tenants.models import Membership
    from tenants.services.memberships import membership_add

    membership_add(tenant=tenant, user=owner, role=Membership.Role.OWNER, actor=None)
    endpoint, _ = endpoint_create(tenant=tenant, url="https://hooks.example.com/in", event_types=ALL, actor=None)
    flag = make_flag("beta", tenant_editable=True)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, actor=None)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=False, actor=owner)
    flag_clear_override(tenant=tenant, flag=flag, actor=None)
    flag_owner_reset(tenant=tenant, flag=flag, actor=None)
    tenant_suspend(tenant=tenant, reason="unpaid invoice", actor=None)
    tenant_resume(tenant=tenant, actor=None)
    api_key, _ = make_key(tenant)
    apikey_revoke(api_key=api_key, actor=None)

    events = _events(endpoint)
    assert [e["type"] for e in events] == [
        "override.set",
        "owner.toggled",
        "override.cleared",
        "owner.toggled",
        "tenant.status_changed",
        "tenant.status_changed",
        "key.issued",
        "key.revoked",
    ]
    assert all(e["data"]["tenant"] == "acme" for e in events)
    toggled = events[1]["data"]
    assert toggled["actor"] == "acme-owner"
    assert toggled["object"] == {"type": "owner_toggle", "flag": "beta", "environment": "production"}
    assert (toggled["before"], toggled["after"]) == (None, {"enabled": False})
    assert events[2]["data"]["after"] is None
    reset = events[3]["data"]
    assert (reset["before"], reset["after"], reset["actor"]) == ({"enabled": False}, None, "system")
    suspended = events[4]["data"]
    assert suspended["object"] == {"type": "tenant", "slug": "acme"}
    assert suspended["before"] == {"status": "trial", "status_reason": ""}
    assert suspended["after"] == {"status": "suspended", "status_reason": "unpaid invoice"}
    issued, revoked = events[6]["data"], events[7]["data"]
    assert issued["object"]["prefix"] == api_key.prefix and issued["before"] is None
    assert revoked["before"]["revoked_at"] is None and revoked["after"]["revoked_at"]
    assert "secret" not in str(events) and "secret_hash" not in str(events)


def test_platform_endpoints_get_every_tenant_and_platform_events_tenant_endpoints_only_theirs(tenant):
    other = make_tenant("globex")
    platform, _ = endpoint_create(tenant=None, url="https://ops.example.com/hook", event_types=ALL, actor=None)
    mine, _ = endpoint_create(tenant=tenant, url="https://acme.example.com/hook", event_types=ALL, actor=None)
    theirs, _ = endpoint_create(tenant=other, url="https://globex.example.com/h", event_types=ALL, actor=None)
    flag = make_flag("beta")  # a definition: platform-wide
    flag_set_override(tenant=tenant, flag=flag, enabled=True, actor=None)

    assert [e["type"] for e in _events(platform)] == ["flag.changed", "override.set"]
    assert [e["type"] for e in _events(mine)] == ["override.set"]
    assert _events(theirs) == []
    created = _events(platform)[0]["data"]
    assert created["tenant"] is None and created["object"] == {"type": "flag", "key": "beta"}


def test_only_subscribed_enabled_endpoints_get_an_event_and_unchanged_saves_make_none(tenant):
    keys_only, _ = endpoint_create(tenant=tenant, url="https://a.example.com/", event_types=["key.issued"], actor=None)
    off, _ = endpoint_create(tenant=None, url="https://b.example.com/", event_types=ALL, actor=None)
    endpoint_update(endpoint=off, enabled=False, actor=None)
    flag = make_flag("beta")
    flag_update(flag=flag, description=flag.description, actor=None)  # nothing changed
    flag_set_override(tenant=tenant, flag=flag, enabled=True, actor=None)
    make_key(tenant)
    assert [e["type"] for e in _events(keys_only)] == ["key.issued"]
    assert _events(off) == []
    assert WebhookEvent.objects.count() == 1  # no endpoint wanted the others: no row


def test_breaker_transitions_are_events_except_the_endpoint_breakers():
    platform, _ = endpoint_create(
        tenant=None, url="https://ops.example.com/", event_types=["breaker.opened", "breaker.closed"], actor=None
    )
    cb = breaker("upstream.acme", fail_max=1, reset_timeout=60)
    with pytest.raises(Exception):  # noqa: B017 - pybreaker raises CircuitBreakerError on the trip
        cb.call(lambda: 1 / 0)
    staff = make_staff()
    breaker_force_close(name="upstream.acme", actor=staff, reason="incident over")
    webhook_cb = breaker("webhook.999", fail_max=1, reset_timeout=60)
    with pytest.raises(Exception):  # noqa: B017
        webhook_cb.call(lambda: 1 / 0)

    events = _events(platform)
    assert [(e["type"], e["data"]["object"]["name"]) for e in events] == [
        ("breaker.opened", "upstream.acme"),
        ("breaker.closed", "upstream.acme"),
    ]
    assert events[1]["data"]["actor"] == staff.username and "incident over" in events[1]["data"]["reason"]


def test_forced_open_is_an_event_too():
    platform, _ = endpoint_create(
        tenant=None, url="https://ops.example.com/", event_types=["breaker.opened"], actor=None
    )
    breaker("redis.cache", fail_max=5, reset_timeout=60)
    breaker_force_open(name="redis.cache", actor=make_staff(), reason="maintenance")
    [event] = _events(platform)
    assert event["data"]["after"] == {"state": "open"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/", "Only http:// and https://"),
        ("https://user:pw@hooks.example.com/", "user:password@"),
        ("http:///nohost", "no host"),
        ("", "give the http(s) URL"),
        ("https://" + "a" * 2000 + ".com/", "at most 2000"),
    ],
)
def test_bad_urls_are_refused_naming_the_field(tenant, url, message):
    with pytest.raises(WebhooksError) as excinfo:
        endpoint_create(tenant=tenant, url=url, event_types=ALL, actor=None)
    assert excinfo.value.field == "url" and message in excinfo.value.message


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/", "http://10.1.2.3/", "http://169.254.169.254/", "http://localhost/", "http://[::1]/"],
)
def test_tenant_endpoints_may_not_target_private_addresses(tenant, url):
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False), pytest.raises(WebhooksError) as excinfo:
        endpoint_create(tenant=tenant, url=url, event_types=ALL, actor=None)
    assert excinfo.value.field == "url" and "public internet" in excinfo.value.message


def test_platform_endpoints_may_target_private_addresses():
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False):
        endpoint, _ = endpoint_create(tenant=None, url="http://10.1.2.3/hook", event_types=ALL, actor=None)
    assert endpoint.url == "http://10.1.2.3/hook"


@pytest.mark.parametrize(
    ("types", "message"),
    [([], "at least one"), (["flag.deleted"], "unknown flag.deleted"), ("key.issued", "at least one")],
)
def test_bad_event_types_are_refused_naming_the_field(tenant, types, message):
    with pytest.raises(WebhooksError) as excinfo:
        endpoint_create(tenant=tenant, url="https://hooks.example.com/", event_types=types, actor=None)
    assert excinfo.value.field == "event_types" and message in excinfo.value.message


def test_typed_flag_events_carry_what_is_served(tenant):
    owner = make_user("acme-owner")
    from tenants.models import Membership
    from tenants.services.memberships import membership_add

    membership_add(tenant=tenant, user=owner, role=Membership.Role.OWNER, actor=None)
    platform, _ = endpoint_create(tenant=None, url="https://hooks.example.com/p", event_types=ALL, actor=None)
    variants = [{"key": "small", "value": "gpt-s", "weight": 0}, {"key": "large", "value": "gpt-l", "weight": 0}]
    flag = make_flag("model", kind="string", default_value="gpt-m", variants=variants, tenant_editable=True)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, variant="small", owner_variants=["large"], actor=None)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=True, variant="large", actor=owner)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, value="gpt-x", owner_variants=["large"], actor=None)

    defined, chosen, picked, valued = (e["data"] for e in _events(platform))
    assert defined["after"]["kind"] == "string" and defined["after"]["default_value"] == "gpt-m"
    assert defined["after"]["variants"] == variants
    assert chosen["after"] == {
        "enabled": True,
        "rollout_percent": 100,
        "variant": "small",
        "owner_variants": ["large"],
        "source": "admin",
    }
    assert (picked["before"], picked["after"]) == (None, {"enabled": True, "variant": "large"})
    assert valued["before"]["variant"] == "small" and valued["after"]["value"] == "gpt-x"
    assert "variant" not in valued["after"]


def test_segment_changes_reach_platform_endpoints_only(tenant):
    from tenants.models import Segment
    from tenants.services.flags import segment_create, segment_delete, segment_update

    platform, _ = endpoint_create(tenant=None, url="https://hooks.example.com/p", event_types=ALL, actor=None)
    own, _ = endpoint_create(tenant=tenant, url="https://hooks.example.com/t", event_types=ALL, actor=None)
    eu = [{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}]
    segment = segment_create(key="eu", conditions=eu, actor=make_staff("root"))
    segment_update(segment=segment, description="GDPR", actor=None)
    segment_update(segment=Segment.objects.get(key="eu"), description="GDPR", actor=None)  # unchanged: no event
    segment_delete(segment=segment, actor=None)

    events = _events(platform)
    assert [e["type"] for e in events] == ["segment.changed"] * 3
    created, updated, deleted = (e["data"] for e in events)
    assert created["object"] == {"type": "segment", "key": "eu"} and created["actor"] == "root"
    assert created["before"] is None and created["after"]["conditions"] == eu
    assert (updated["before"]["description"], updated["after"]["description"]) == ("", "GDPR")
    assert deleted["object"] == {"type": "segment", "key": "eu"} and deleted["after"] is None
    assert _events(own) == [] and "segment.changed" not in [value for value, _ in tenant_event_choices()]
