"""Admin API authentication: a token is checked, scoped, bound to its user's permissions and rate limited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.utils import timezone

from automation.models import StaffToken
from automation.services import staff_token_revoke
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import make_operator, make_token
from tests.tenants.factories import make_tenant

pytestmark = pytest.mark.django_db


def test_missing_and_malformed_credentials_are_401_with_a_challenge(api):
    missing = problem(api.get("/tenants", secret=""), 401, "missing_token")
    assert missing and api.get("/tenants", secret="")["WWW-Authenticate"].startswith("Bearer")
    for header in ("Basic abc", "Bearer sat_nope", "Bearer aak_12345678_" + "a" * 43):
        response = api.client.get("/api/v1/admin/tenants", headers={"Authorization": header})
        problem(response, 401, "invalid_token")
        assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_a_revoked_token_is_refused_on_the_next_request(api, token, plan):
    make_tenant("acme", plan=plan)
    assert api.get("/tenants/acme").status_code == 200
    staff_token_revoke(token=token[0], actor=token[0].user)
    problem(api.get("/tenants/acme"), 401, "revoked_token")


def test_an_expired_token_is_refused(api, token):
    StaffToken.objects.filter(pk=token[0].pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    problem(api.get("/tenants"), 401, "expired_token")


def test_a_user_who_lost_a_permission_is_refused_at_once(api, operator, plan):
    make_tenant("acme", plan=plan)
    assert api.get("/tenants/acme").status_code == 200
    operator.user_permissions.remove(Permission.objects.get(codename="view_tenant"))
    body = problem(api.get("/tenants/acme"), 403, "permission_denied")
    assert "tenants.view_tenant" in body["detail"]
    # Other permissions behind the same scope still work: the check is per endpoint.
    assert api.get("/plans").status_code == 200


def test_a_deactivated_user_is_refused_at_once(api, operator):
    assert api.get("/tenants").status_code == 200
    operator.is_active = False
    operator.save()
    problem(api.get("/tenants"), 401, "inactive_user")


def test_a_user_who_is_no_longer_staff_is_refused(api, operator):
    operator.is_staff = False
    operator.save()
    problem(api.get("/tenants"), 403, "not_staff")


def test_a_token_without_the_scope_is_refused_even_if_the_user_may(plan):
    user = make_operator("reader")
    _, secret = make_token(user, scopes=["tenants:read"])
    reader = AdminApi(secret)
    assert reader.get("/tenants").status_code == 200
    body = problem(reader.post("/tenants", {"slug": "x", "name": "X", "plan": "standard"}), 403, "insufficient_scope")
    assert "tenants:write" in body["detail"]
    problem(reader.get("/audit-events"), 403, "insufficient_scope")


@override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=2)
def test_each_token_has_its_own_rate_limit(api, operator, redis_client):
    answers = [api.get("/tenants") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    body = problem(answers[-1], 429, "rate_limited")
    assert answers[-1]["Retry-After"] and body["retry_after"] >= 1 and answers[0]["RateLimit-Remaining"] == "2"
    # Another token of the same user has its own allowance.
    _, other = make_token(operator, name="other")
    assert AdminApi(other).get("/tenants").status_code == 200
    # agentapi:rl:{<slot tag>}:user:-:key-sat_… (keys.call_keys): the identity is the token's prefix.
    assert any(":user:-:key-sat_" in k for k in redis_client.scan_iter("agentapi:rl:*"))


@override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=1)
def test_requests_without_a_usable_token_spend_the_client_address_budget(api):
    statuses = [api.get("/tenants", secret="sat_wrong").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_last_use_is_recorded(api, token):
    assert StaffToken.objects.get(pk=token[0].pk).last_used_at is None
    api.get("/tenants")
    assert StaffToken.objects.get(pk=token[0].pk).last_used_at is not None


def test_the_limit_and_its_headers_hold_without_the_rate_limit_middleware(settings):
    # API paths may skip browser middleware; the token's limit lives in the API itself.
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("RateLimitMiddleware")]
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 60
    settings.RESILIENCE_RATE_LIMIT_BURST = 1
    _, secret = make_token(make_operator("bare"))
    bare = AdminApi(secret)
    answers = [bare.get("/tenants") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0]["RateLimit-Limit"] == "60" and answers[1]["RateLimit-Remaining"] == "0"
    assert problem(answers[2], 429, "rate_limited") and answers[2]["Retry-After"]


def test_a_read_costs_four_queries_and_no_write(api, plan, django_assert_num_queries):
    make_tenant("acme", plan=plan)
    api.get("/tenants/acme")  # the first use of the minute records last_used_at
    # The token with its user, the user's and the groups' permissions (fresh each request), the tenant.
    with django_assert_num_queries(4):
        assert api.get("/tenants/acme").status_code == 200
