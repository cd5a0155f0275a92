"""PostgreSQL unreachable under gunicorn (2 workers): every page a 503 with Retry-After, the warm API keeps serving.

The database is the stack's own (`faults_<random>`); the outage refuses new connections
(`ALLOW_CONNECTIONS false`, superusers included) and terminates the open ones, which is
what a failover or a crashed server looks like to the app's pooled connections.
"""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.faults.harness import wait_for
from tests.portal.sweep import portal_routes

PASSWORD = "demo-pass-123"
OPS_PAGES = ["/admin/ops/redis/", "/admin/ops/ratelimits/", "/admin/ops/breakers/", "/admin/ops/sessions/"]


@pytest.fixture(scope="module")
def app(stack):
    return stack.app()


def _first_pk(stack, model) -> object | None:
    rows = stack.database.query(
        f'SELECT "{model._meta.pk.column}" FROM "{model._meta.db_table}" ORDER BY 1 LIMIT 1'  # noqa: S608 - names from the model
    )
    return rows[0][0] if rows else None


def _admin_urls(stack) -> list[str]:
    urls = ["/admin/", "/admin/password_change/", *OPS_PAGES]
    for model in admin.site._registry:
        if not model._meta.concrete_model._meta.managed:
            continue  # the ops pages' permission holders: their pages are swept as OPS_PAGES
        info = model._meta.app_label, model._meta.model_name
        urls += [reverse("admin:{}_{}_changelist".format(*info)), reverse("admin:{}_{}_add".format(*info))]
        pk = _first_pk(stack, model)
        if pk is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
            urls.append(reverse("admin:{}_{}_history".format(*info), args=[pk]))
    return urls


def _portal_urls(stack) -> list[str]:
    (tenant_id,) = stack.database.query("SELECT id FROM tenants_tenant WHERE slug = 'acme'")[0]
    values = {
        "tenant": "acme",
        "key_id": stack.database.query("SELECT id FROM tenants_apikey WHERE tenant_id = %s LIMIT 1", (tenant_id,))[0][
            0
        ],
        "membership_id": stack.database.query(
            "SELECT id FROM tenants_membership WHERE tenant_id = %s LIMIT 1", (tenant_id,)
        )[0][0],
        "flag_key": (stack.database.query("SELECT key FROM tenants_flag ORDER BY key LIMIT 1") or [("x",)])[0][0],
        # No invitation is needed: the page asks the database before it could answer 404.
        "invitation_id": 1,
        "endpoint_id": 1,
        # No environment is needed either: the page asks the database which ones the tenant has.
        "environment": "staging",
        "token": "x" * 43,
        "uidb64": "MQ",  # a password-reset link: user id 1, base64
    }
    return [
        reverse(f"portal:{route.name}", kwargs={name: values[name] for name in route.kwargs})
        for route in portal_routes()
        if route.name not in ("logout", "login")
    ]


def _assert_database_503(url: str, status: int, headers: dict, body: bytes, *, json_body: bool) -> None:
    assert status == 503, (url, status, body[:300])
    assert int(headers.get("Retry-After", "0")) > 0, url
    if json_body:
        assert json.loads(body)["error"] == "database_unavailable", (url, body[:300])
    else:
        assert headers["Content-Type"].startswith("text/html"), url
        assert b"The database is unavailable" in body, url


def test_every_page_answers_503_with_retry_after_and_the_warm_api_keeps_serving(stack, app):
    admin_client, owner_client, api, anonymous = (stack.client(app) for _ in range(4))
    assert admin_client.sign_in("/admin/login/", "admin", PASSWORD) == 302
    assert owner_client.sign_in("/portal/login/", "acme-owner", PASSWORD) == 302
    bearer = {"Authorization": f"Bearer {stack.api_key('acme')}"}
    assert api.request("GET", "/api/v1/bootstrap", headers=bearer)[0] == 200  # warms the key and the document
    admin_urls, portal_urls = _admin_urls(stack), _portal_urls(stack)
    assert len(admin_urls) > 20 and len(portal_urls) >= 8

    with stack.database.unreachable():
        for url in admin_urls:
            _assert_database_503(url, *admin_client.request("GET", url), json_body=False)
        for url in portal_urls:
            _assert_database_503(url, *owner_client.request("GET", url), json_body=False)
        for url in OPS_PAGES:
            _assert_database_503(url, *admin_client.request("GET", f"{url}?format=json"), json_body=True)
            asked = admin_client.request("GET", url, headers={"Accept": "application/json"})
            _assert_database_503(url, *asked, json_body=True)
        # The rate-limit middleware asks who is signed in before any view runs.
        status, _, body = admin_client.request("GET", "/api/v1/openapi.json")
        assert status in (200, 503), (status, body[:300])
        # Signing in needs the user row.
        assert anonymous.sign_in("/portal/login/", "acme-owner", PASSWORD) == 503
        # The warm service API path needs no database: one Redis script, every worker.
        for _ in range(20):
            status, headers, body = api.request("GET", "/api/v1/bootstrap", headers=bearer)
            assert status == 200, body[:300]
            assert "RateLimit-Limit" in headers, "limited and counted through Redis as usual"

    assert wait_for(lambda: admin_client.request("GET", "/admin/")[0] == 200, "the admin to serve again")
    assert wait_for(lambda: owner_client.request("GET", "/portal/t/acme/")[0] == 200, "the portal to serve again")


def test_readyz_names_the_database_and_the_class_never_connection_details(stack, app):
    client = stack.client(app)
    with stack.database.unreachable():
        answers = [client.request("GET", "/readyz") for _ in range(4)]  # both workers
    for status, _, body in answers:
        assert status == 503
        data = json.loads(body)
        assert data["failed"] == ["database"]
        assert data["checks"]["database"]["error"] == "OperationalError"
        text = body.decode()
        for detail in (stack.database.name, "127.0.0.1", "5432", "postgres", "accepting connections", "FATAL"):
            assert detail not in text, detail
    assert wait_for(lambda: client.request("GET", "/readyz")[0] == 200, "/readyz to be ready again")


def test_terminated_connections_alone_cost_no_500(stack, app):
    """A failover that only cuts the pooled connections: the next request reconnects, no 500."""
    client = stack.client(app)
    assert client.sign_in("/admin/login/", "admin", PASSWORD) == 302
    statuses = []
    for _ in range(5):
        stack.database.terminate_connections()
        statuses += [client.request("GET", "/admin/tenants/tenant/")[0] for _ in range(4)]
    assert 500 not in statuses and statuses.count(200) >= len(statuses) // 2, statuses
