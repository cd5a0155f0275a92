"""Schemathesis against the service API's OpenAPI document, in process through WSGI, with a real API key."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from tests.portal.conftest import build_world

pytestmark = pytest.mark.django_db(transaction=True)


def _operations():
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    return [result.ok() for result in schema.get_all_operations()]


def test_the_document_lists_every_endpoint(settings):
    paths = {(op.method.upper(), op.path) for op in _operations()}
    assert paths == {("GET", "/api/v1/bootstrap"), ("GET", "/api/v1/flags/{key}"), ("POST", "/api/v1/evaluate")}


@pytest.mark.parametrize("path", ["/api/v1/bootstrap", "/api/v1/flags/{key}", "/api/v1/evaluate"])
def test_api_conforms_to_its_openapi_document(path, settings):
    """No 5xx, and every answer (status, headers, body) is one the document promises."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The per-IP limit applies before authentication (a 429 is right there); this test is about the schema.
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 1_000_000
    settings.RESILIENCE_RATE_LIMIT_BURST = 100_000
    world = build_world()
    operation = next(op for op in _operations() if op.path == path)
    seen = set()

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case):
        # Generated credentials exercise the 401s; the tenant's real key the documented happy paths.
        if not case.headers or "Authorization" not in case.headers or len(seen) % 2 == 0:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {world.a_secret}"}
        response = case.call_and_validate()
        seen.add(response.status_code)
        assert response.status_code < 500, response.text

    check()
    assert 200 in seen or 404 in seen
