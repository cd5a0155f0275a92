"""The service API skips browser-only middleware and gets fixed security headers; pages keep theirs."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from agentapi_admin import middleware as app_middleware
from tests.tenants.factories import make_key, make_tenant

API_CSP = "default-src 'none'; frame-ancestors 'none'"

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret():
    return make_key(make_tenant("acme"))[1]


@pytest.fixture
def signed_in():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789"))
    return client


@override_settings(ROOT_URLCONF="tests.agentapi_admin.probe_urls")
def test_api_paths_skip_sessions_auth_messages_and_csp(signed_in):
    assert signed_in.get("/api/probe").json() == {
        "session": False,
        "user": False,
        "messages": False,
        "csp_nonce": False,
    }
    assert signed_in.get("/page/probe").json() == {"session": True, "user": True, "messages": True, "csp_nonce": True}


def assert_api_headers(response):
    assert response["Content-Security-Policy"] == API_CSP
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Set-Cookie" not in response and "Cookie" not in response.get("Vary", "")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/bootstrap", 200),
        ("/api/v1/bootstrap?x=1", 200),
        ("/api/v1/nowhere", 404),
        ("/api/v1/openapi.json", 200),
    ],
)
def test_api_responses_carry_fixed_security_headers(signed_in, secret, path, status):
    response = signed_in.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == status
    assert_api_headers(response)
    assert int(response["Content-Length"]) == len(response.content)


def test_api_refusals_carry_them_too(client):
    response = client.get("/api/v1/bootstrap")
    assert response.status_code == 401
    assert_api_headers(response)
    response = client.post("/api/v1/bootstrap", HTTP_AUTHORIZATION="Bearer x")
    assert response.status_code in (401, 405)
    assert_api_headers(response)


def test_browser_pages_keep_the_full_policy_built_once(client, monkeypatch):
    calls = []
    real = app_middleware.build_policy

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(app_middleware, "build_policy", counting)
    app_middleware.browser_csp_headers.cache_clear()
    first = client.get("/admin/login/")
    second = client.get("/portal/login/")
    assert first["Content-Security-Policy"] == second["Content-Security-Policy"]
    assert "script-src 'self'" in first["Content-Security-Policy"] and first["X-Frame-Options"] == "DENY"
    assert len(calls) == 1  # the report-only policy is empty: one build for both requests
    policy = {"DIRECTIVES": {"default-src": ["'self'"], "img-src": ["'self'", "https://img.example"]}}
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        assert "img-src 'self' https://img.example" in client.get("/admin/login/")["Content-Security-Policy"]
    assert "img-src 'self' data:" in client.get("/admin/login/")["Content-Security-Policy"]


def test_a_per_response_policy_is_still_honoured(rf):
    from csp.decorators import csp_update
    from django.http import HttpResponse

    @csp_update({"img-src": ["https://cdn.example"]})
    def view(request):
        return HttpResponse("ok")

    request = rf.get("/page")
    mw = app_middleware.BrowserOnlyCSPMiddleware(view)
    response = mw(request)
    assert "https://cdn.example" in response["Content-Security-Policy"]


def test_admin_sign_in_still_needs_the_csrf_token():
    get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/")
    token = page.cookies["csrftoken"].value
    refused = client.post("/admin/login/", {"username": "root", "password": "pw-123456789"})
    assert refused.status_code == 403
    signed = client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": "pw-123456789", "csrfmiddlewaretoken": token, "next": "/admin/"},
    )
    assert signed.status_code == 302 and "sessionid" in signed.cookies
    assert client.get("/admin/").status_code == 200


def test_deploy_check_still_wants_framing_and_csrf_protection(settings):
    from agentapi_admin.checks import check_browser_security_middleware

    assert check_browser_security_middleware(None) == []
    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if "XFrameOptions" not in path and "Csrf" not in path]
    assert [warning.id for warning in check_browser_security_middleware(None)] == [
        "agentapi_admin.W002",
        "agentapi_admin.W003",
    ]
