"""No portal page answers 500, whatever bytes arrive: garbage queries, non-UTF-8 bodies, huge values."""

from __future__ import annotations

import pytest
from django.urls import reverse

from .sweep import portal_routes
from .test_isolation import own_kwargs

pytestmark = pytest.mark.django_db

BODIES = [
    ("application/x-www-form-urlencoded", b"enabled=%ff%fe&name=%c3%28&role=%80&identifier=%ed%a0%80&scopes=%ff"),
    ("application/x-www-form-urlencoded", b"\xff\xfe\xfd=\x80\x81"),
    ("application/x-www-form-urlencoded", b"name=" + b"A" * 2_000_000 + b"&scopes=config:read"),
    ("application/x-www-form-urlencoded", b"name=" + b"B" * 3_000_000),  # over DATA_UPLOAD_MAX_MEMORY_SIZE
    ("application/x-www-form-urlencoded", b"&&&==&=%&%%%"),
    (
        "multipart/form-data; boundary=xyz",
        b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xff\xfe\r\n--xyz--',
    ),
    ("multipart/form-data; boundary=xyz", b"not really multipart"),
    ("application/json", b'{"enabled": true}'),
]
QUERIES = ["?%ff%fe=%fd", "?next=%00", "?" + "a=1&" * 2000, "?role=" + "x" * 50_000]


def all_urls(world):
    for route in portal_routes():
        if route.name in {"login", "logout"}:
            continue
        yield reverse(f"portal:{route.name}", kwargs=own_kwargs(route, world))


def test_garbage_never_causes_a_500(world, owner_client):
    checked = 0
    for url in all_urls(world):
        for query in QUERIES:
            response = owner_client.get(url + query)
            assert response.status_code < 500, f"GET {url}{query[:40]}: {response.status_code}"
            checked += 1
        for content_type, body in BODIES:
            response = owner_client.generic("POST", url, data=body, content_type=content_type)
            assert response.status_code < 500, f"POST {url} {body[:40]!r}: {response.status_code}"
            checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    "path",
    [
        "/portal/t/%ff%fe/",
        "/portal/t/" + "a" * 51 + "/",
        "/portal/t/acme/keys/%ff/revoke/",
        "/portal/t/acme/members/99999999999999999/role/",
        "/portal/t/acme/members/0/remove/",
        "/portal/t/acme/nothing-here/",
        "/portal/t/acme/features/new-ui/%00/",
    ],
)
def test_odd_paths_are_404(world, owner_client, path):
    assert owner_client.get(path).status_code == 404
    assert owner_client.post(path).status_code == 404
