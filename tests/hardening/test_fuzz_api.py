"""Hostile headers, bearer tokens and query parameters against the service API: 4xx JSON, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from resilience.connection import get_redis, key
from tenants.models import ApiKey, UsageDaily

from .strategies import INJECTIONS, encodable, latin1_header, text

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
tokens = st.one_of(
    text,
    st.builds(lambda s: "aak_" + s, text),
    st.builds(lambda p, s: f"aak_{p}_{s}", st.text("0123456789abcdef", min_size=8, max_size=8), text),
    st.from_regex(r"aak_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", fullmatch=True),
)
schemes = st.sampled_from(["Bearer", "bearer", "Basic", "Token", "", "Bearer  ", "BEARER"])


def _usage_keys() -> list:
    return sorted(get_redis().scan_iter(match=key("usage", "*")))


def _assert_json_error(response):
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        body = response.json()
        assert body["error"] and body["detail"], body


@FUZZ
@given(scheme=schemes, token=tokens, inm=text)
def test_hostile_credentials_are_a_401_json_and_count_nothing(world, scheme, token, inm):
    client = Client()
    usage_before, audit_before = _usage_keys(), AuditEvent.objects.count()
    response = client.get(
        "/api/v1/bootstrap",
        HTTP_AUTHORIZATION=latin1_header(f"{scheme} {token}"),
        HTTP_IF_NONE_MATCH=latin1_header(inm),
        REMOTE_ADDR="10.9.9.9",
    )
    _assert_json_error(response)
    assert response.status_code in (401, 429), response.content
    # Nothing half-written: no usage counted for anyone, no audit row, no key touched.
    assert _usage_keys() == usage_before
    assert AuditEvent.objects.count() == audit_before
    assert not ApiKey.objects.filter(last_used_at__isnull=False).exists()


@FUZZ
@given(flag=text, subject=st.one_of(st.none(), text), extra=st.dictionaries(text, text, max_size=3))
def test_hostile_flag_keys_and_query_params_are_4xx_json(world, settings, flag, subject, extra):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 1_000_000
    settings.RESILIENCE_RATE_LIMIT_BURST = 100_000
    client = Client()
    query = {encodable(k): encodable(v) for k, v in extra.items()}
    if subject is not None:
        query["subject"] = encodable(subject)
    from urllib.parse import quote

    path = "/api/v1/flags/" + quote(encodable(flag), safe="")
    response = client.get(path, query, HTTP_AUTHORIZATION=f"Bearer {world.a_secret}")
    if response.status_code == 404 and "json" not in response.get("Content-Type", ""):
        return  # the URL resolver's own 404 (e.g. a slash in the key): not the API's
    _assert_json_error(response)
    carries_nul = "\x00" in (subject or "") or any("\x00" in k + v for k, v in extra.items())
    # A NUL in the query string is refused up front (RejectNulBytesMiddleware) with a 400 JSON body.
    assert response.status_code in ((400,) if carries_nul else (200, 404, 422)), response.content
    if response.status_code == 422:
        assert response.json()["field"]
    assert not UsageDaily.objects.exists()


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_looking_bootstrap_queries_are_ignored(world, value):
    response = Client().get("/api/v1/bootstrap", {"q": value}, HTTP_AUTHORIZATION=f"Bearer {world.a_secret}")
    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == "acme"
