"""Hostile values in the ops pages' action forms, with Redis up and with Redis killed: never a 500."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent

from .conftest import PASSWORD
from .strategies import encodable, text

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ACTIONS = {
    "/admin/ops/ratelimits/reset/": ("scope", "tenant", "identity", "reason"),
    "/admin/ops/ratelimits/reset-tenant/": ("tenant", "reason"),
    "/admin/ops/breakers/action/": ("name", "action", "reason"),
    "/admin/ops/sessions/revoke/": ("user", "ref", "reason"),
    "/admin/ops/sessions/revoke-all/": ("user", "reason"),
}
values = st.one_of(text, st.sampled_from(["", "-", "user", "ip", "tenant", "open", "close", "reset", "1", "0", "-1"]))


def _staff_client() -> Client:
    user = get_user_model().objects.filter(username="root").first() or get_user_model().objects.create_superuser(
        "root", "root@example.test", PASSWORD
    )
    client = Client()
    client.force_login(user)
    return client


@FUZZ
@given(path=st.sampled_from(sorted(ACTIONS)), data=st.data())
def test_ops_action_forms_reject_hostile_values(world, path, data):
    client = _staff_client()
    form = {name: encodable(data.draw(values, label=name)) for name in ACTIONS[path]}
    audit_before = AuditEvent.objects.exclude(action__startswith="auth.").count()
    response = client.post(path, form)
    assert response.status_code < 500, (path, form, response.status_code)
    if response.status_code >= 400 or response.status_code == 200:
        # Refused or re-rendered with errors: nothing audited, so nothing done.
        assert AuditEvent.objects.exclude(action__startswith="auth.").count() == audit_before


@pytest.mark.parametrize("path", sorted(ACTIONS))
def test_ops_actions_while_redis_is_down_answer_without_a_500(world, settings, redis_server, path):
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"  # keep the admin signed in without Redis
    client = _staff_client()
    form = {
        "scope": "ip",
        "tenant": "-",
        "identity": "10.0.0.1",
        "reason": "incident 42",
        "name": "redis",
        "action": "open",
        "user": str(world.a_owner.pk),
        "ref": "0123456789abcdef",
    }
    redis_server.kill()
    response = client.post(path, {name: form[name] for name in ACTIONS[path]})
    assert response.status_code in (200, 302, 400, 404, 503), response.status_code
    assert "/login/" not in response.get("Location", ""), "the admin stayed signed in"
    if response.status_code == 503:
        assert b"unavailable" in response.content.lower() or b"redis" in response.content.lower()
