"""Redis refusing writes (full, read-only, MISCONF) and an unreachable database: a 503, never a 500."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.hardening.test_redis_down import OPS_PAGES, _admin_urls, _portal_urls, sweep_every_page

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

MODES = ("oom", "readonly", "misconf")


@pytest.fixture
def staff(fast_hasher):
    return get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)


def _assert_503(response, *, json: bool, error: str, words: str):
    assert response.status_code == 503, response.content[:500]
    assert int(response["Retry-After"]) > 0
    if json:
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"] == error
    else:
        assert response["Content-Type"].startswith("text/html")
        assert words in response.content.decode()


@pytest.mark.parametrize("mode", MODES)
def test_a_redis_write_refused_in_a_view_is_a_503_page_or_json(settings, redis_refusing_writes, mode):
    settings.ROOT_URLCONF = "tests.hardening.unavailable_urls"
    client = Client()
    with redis_refusing_writes(mode):
        html = client.get("/test/redis-write/")
        api = client.get("/api/v1/test/redis-write")
        asked = client.get("/test/redis-write/", HTTP_ACCEPT="application/json")
    _assert_503(html, json=False, error="", words="Redis")
    _assert_503(api, json=True, error=api.json().get("error"), words="")
    assert api.json()["error"].endswith("_unavailable")
    _assert_503(asked, json=True, error=asked.json().get("error"), words="")
    assert client.get("/test/redis-write/").status_code == 200


def test_an_unreachable_database_in_a_view_is_a_503_page_or_json(settings):
    settings.ROOT_URLCONF = "tests.hardening.unavailable_urls"
    client = Client()
    html = client.get("/test/database/")
    _assert_503(html, json=False, error="", words="The database is unavailable")
    _assert_503(client.get("/api/v1/test/database"), json=True, error="database_unavailable", words="")
    _assert_503(
        client.get("/test/database/", HTTP_ACCEPT="application/json"), json=True, error="database_unavailable", words=""
    )
    # The driver's message names the database; the page does not.
    assert "no_such_database" not in html.content.decode() and "nonexistent" not in html.content.decode()


@pytest.mark.parametrize("path", ["/admin/login/?next=/admin/", "/portal/login/"])
def test_sign_in_while_redis_is_full_is_never_a_500(path, staff, world, redis_refusing_writes):
    client = Client()
    username = "root" if path.startswith("/admin") else world.a_owner.username
    assert client.get(path).status_code == 200
    with redis_refusing_writes("oom"):
        response = client.post(path, {"username": username, "password": PASSWORD})
        asked_json = client.post(path, {"username": username, "password": PASSWORD}, HTTP_ACCEPT="application/json")
    # Staff sessions may be kept where Redis is not needed; anyone else's sign-in needs a Redis write.
    assert response.status_code in (302, 503), response.content[:500]
    if response.status_code == 503:
        _assert_503(response, json=False, error="", words="unavailable")
        _assert_503(asked_json, json=True, error=asked_json.json().get("error", ""), words="")
        assert "unavailable" in asked_json.json()["error"]
    assert client.post(path, {"username": username, "password": PASSWORD}).status_code == 302


@pytest.mark.parametrize("mode", MODES)
def test_every_page_answers_without_a_500_while_redis_refuses_writes(
    settings, staff, world, redis_refusing_writes, mode
):
    admin_client, owner_client = Client(), Client()
    admin_client.force_login(staff)
    owner_client.force_login(world.a_owner)
    urls = _admin_urls(world) + OPS_PAGES + [f"{p}?format=json" for p in OPS_PAGES] + _portal_urls(world)
    with redis_refusing_writes(mode):
        answers = sweep_every_page(admin_client, owner_client, world, urls)
    failures = {url: r.status_code for url, r in answers.items() if r.status_code >= 500 and r.status_code != 503}
    assert not failures
    for url, response in answers.items():
        if response.status_code == 503:
            assert response["Retry-After"], url
            assert "unavailable" in response.content.decode().lower(), url
    assert answers["/readyz"].status_code == 200 and answers["/readyz"].json()["status"] == "degraded"
