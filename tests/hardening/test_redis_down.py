"""With Redis killed, no page of the admin, the ops pages, the portal or the API answers 500.

Signing in to the portal needs the session store: with SESSION_STORAGE=redis it answers a
clear 503 page (JSON for JSON clients) saying the session store is unavailable. Staff
sessions are database rows, so the admin keeps working (tests/hardening/test_console_outage.py).
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.portal.sweep import portal_routes

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

OPS_PAGES = ["/admin/ops/redis/", "/admin/ops/ratelimits/", "/admin/ops/breakers/", "/admin/ops/sessions/"]


@pytest.fixture
def staff(fast_hasher):
    return get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)


def _assert_session_store_503(response, *, json: bool = False):
    assert response.status_code == 503, response.content[:500]
    assert response["Retry-After"]
    if json:
        assert response.json()["error"] == "session_store_unavailable"
        assert "session store" in response.json()["detail"]
    else:
        assert response["Content-Type"].startswith("text/html")
        assert b"session store (Redis) is unavailable" in response.content


@pytest.mark.parametrize("path", ["/portal/login/"])
def test_sign_in_while_redis_is_down_is_a_clear_503_then_works_again(path, staff, world, redis_server):
    client = Client()
    username = "root" if path.startswith("/admin") else world.a_owner.username
    assert client.get(path).status_code == 200
    redis_server.kill()
    response = client.post(path, {"username": username, "password": PASSWORD})
    _assert_session_store_503(response)
    # Asked for JSON, the same failure is a JSON body.
    _assert_session_store_503(
        client.post(path, {"username": username, "password": PASSWORD}, HTTP_ACCEPT="application/json"), json=True
    )
    assert "sessionid" not in response.cookies

    redis_server.start()
    from resilience.breakers.process import redis_breaker

    redis_breaker.reset()
    assert client.post(path, {"username": username, "password": PASSWORD}).status_code == 302
    assert client.get("/admin/" if path.startswith("/admin") else "/portal/").status_code in (200, 302)


def test_signed_in_pages_while_redis_is_down_send_the_visitor_to_sign_in(staff, world, redis_server):
    client = Client()
    client.post("/portal/login/", {"username": world.a_owner.username, "password": PASSWORD})
    redis_server.kill()
    for path in ["/admin/", *OPS_PAGES, "/portal/"]:
        response = client.get(path)
        # The session cannot be read, so the visitor is anonymous: a redirect to the sign-in page.
        assert response.status_code == 302, (path, response.status_code)
        assert "login" in response.url
    response = client.post("/portal/logout/")
    assert response.status_code == 503


def _admin_urls(world) -> list[str]:
    urls = ["/admin/"]
    for model, model_admin in admin.site._registry.items():
        if not model._meta.concrete_model._meta.managed:
            continue  # the ops pages' permission holders: their pages are swept as OPS_PAGES
        info = model._meta.app_label, model._meta.model_name
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.has_add_permission(_superuser_request()):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
        first = model.objects.order_by("pk").first()
        if first is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
            urls.append(reverse("admin:{}_{}_history".format(*info), args=[first.pk]))
    return urls


def _superuser_request():
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="root")
    return request


def _portal_urls(world) -> list[str]:
    values = {
        "tenant": world.a.slug,
        "key_id": world.a_key.pk,
        "membership_id": world.a_member_membership.pk,
        "invitation_id": world.a_invitation.pk,
        "endpoint_id": world.a_endpoint.pk,
        "token": "not-a-real-invitation-token-0123456789abc",
        "uidb64": "MQ",  # a password-reset link: user id 1, base64
        "flag_key": world.editable.key,
        "environment": world.a_staging.key,
    }
    return [
        reverse(f"portal:{route.name}", kwargs={name: values[name] for name in route.kwargs})
        for route in portal_routes()
        if route.name not in ("logout", "login")
    ]


def sweep_every_page(admin_client, owner_client, world, urls: list[str]) -> dict:
    """GET every admin URL as staff and every portal URL as the owner, call the API, /readyz and one portal write."""
    answers = {url: (owner_client if url.startswith("/portal/") else admin_client).get(url) for url in urls}
    api = Client()
    for url in ["/api/v1/bootstrap", f"/api/v1/flags/{world.editable.key}", "/api/v1/openapi.json"]:
        answers[url] = api.get(url, HTTP_AUTHORIZATION=f"Bearer {world.a_secret}")
    answers["/readyz"] = api.get("/readyz")
    # A write: an owner toggles a feature.
    answers["toggle"] = owner_client.post(
        reverse("portal:feature_toggle", kwargs={"tenant": world.a.slug, "flag_key": world.editable.key}),
        {"enabled": "on", "confirm": "on"},
    )
    return answers


def test_every_page_answers_without_a_500_while_redis_is_down(settings, staff, world, redis_server):
    """Database sessions keep the visitor signed in, so every page itself is exercised without Redis."""
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"
    admin_client, owner_client = Client(), Client()
    admin_client.force_login(staff)
    owner_client.force_login(world.a_owner)
    admin_urls = _admin_urls(world) + OPS_PAGES + [f"{p}?format=json" for p in OPS_PAGES]
    portal_urls = _portal_urls(world)
    audit_before = AuditEvent.objects.count()
    redis_server.kill()
    answers = sweep_every_page(admin_client, owner_client, world, admin_urls + portal_urls)
    failures = {url: r.status_code for url, r in answers.items() if r.status_code >= 500 and r.status_code != 503}
    assert not failures
    for url, response in answers.items():
        if response.status_code == 503:
            body = response.content.decode()
            assert any(word in body.lower() for word in ("unavailable", "redis", "connect")), url
    assert answers["/readyz"].status_code == 503
    assert answers["/api/v1/bootstrap"].status_code == 200  # fail-open: served from the database
    assert all(answers[p].status_code == 200 for p in OPS_PAGES), {p: answers[p].status_code for p in OPS_PAGES}
    assert AuditEvent.objects.count() >= audit_before
