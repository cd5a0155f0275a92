"""Structured logs: one JSON object per line with the request's id, route, status, duration and tenant."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from agentapi_admin.logformat import JsonFormatter, PlainFormatter, RequestContextFilter
from tests.tenants.factories import make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    """Capture every record (root and the non-propagating django logger) as the JSON lines production writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    loggers = [logging.getLogger(), logging.getLogger("django")]
    for logger in loggers:
        logger.addHandler(handler)
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    for logger in loggers:
        logger.removeHandler(handler)
    logging.getLogger().setLevel(previous)


def test_a_request_writes_one_json_line_with_its_context(json_log):
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    response = Client().get(
        "/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_REQUEST_ID="req-abcdef-0123456789"
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-abcdef-0123456789"
    [line] = [entry for entry in json_log() if entry["logger"] == "agentapi.request"]
    assert line["request_id"] == "req-abcdef-0123456789"
    assert line["route"] == "/api/v1/bootstrap" and line["method"] == "GET" and line["status"] == 200
    assert line["level"] == "info" and line["duration_ms"] > 0
    assert line["tenant_id"] == str(tenant.pk) and line["tenant"] == "acme"  # learnt on the cold fill
    assert line["time"].endswith("+00:00") and line["message"] == "GET /api/v1/bootstrap 200"


def test_a_malformed_request_id_is_replaced_by_a_generated_one(json_log):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID='bad id "with quotes"')
    generated = response["X-Request-ID"]
    assert generated != 'bad id "with quotes"' and len(generated) == 32
    assert Client().get("/healthz")["X-Request-ID"] != generated


def test_records_logged_during_a_request_carry_its_id(json_log, redis_server):
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    redis_server.kill()  # the gateway logs a warning while serving without Redis
    response = Client().get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")
    request_id = response["X-Request-ID"]
    gateway = [entry for entry in json_log() if entry["logger"] == "tenants.api.gateway"]
    assert gateway and all(entry["request_id"] == request_id for entry in gateway)


def test_one_line_per_refused_request_not_two(json_log):
    tenant = make_tenant("acme", plan=make_plan("tiny", rate_limit_per_minute=1, burst=0))
    _, secret = make_key(tenant)
    client = Client()
    statuses = [client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code for _ in range(6)]
    assert statuses == [200] + [429] * 5
    lines = json_log()
    refused = [entry for entry in lines if entry.get("status") == 429]
    assert len(refused) == 5
    assert all(entry["level"] == "warning" and entry["tenant"] == "acme" for entry in refused)
    assert not [entry for entry in lines if entry["logger"] == "django.request"]
    # Refusals answered by a middleware before URL resolution still name the route they guarded.
    assert {entry["route"] for entry in refused} == {"/api/v1/bootstrap"}


def test_portal_lines_name_the_tenant_from_the_url(json_log, django_user_model):
    owner = django_user_model.objects.create_user("owner", "o@example.com", "right-pass-123")
    tenant = make_tenant("globex", owner=owner)
    client = Client()
    client.force_login(owner)
    assert client.get(reverse("portal:keys", kwargs={"tenant": tenant.slug})).status_code == 200
    [line] = [e for e in json_log() if e["logger"] == "agentapi.request" and "<" in e["route"]]
    assert line["route"].startswith("/portal/")
    assert line["tenant"] == "globex"


def test_plain_format_appends_the_request_id():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.request_id = "abc12345"
    assert PlainFormatter().format(record).endswith("INFO x hello world [request_id=abc12345]")


def test_json_lines_never_include_record_arguments_or_the_request_object():
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", ("/x",), None)
    record.request = object()
    record.secret_argument = "should-not-appear"
    data = json.loads(JsonFormatter().format(record))
    assert set(data) == {"time", "level", "logger", "message"}


def test_an_api_key_sent_as_request_id_is_never_echoed_or_logged(json_log):
    secret = "aak_11111111_" + "B" * 43  # underscores are outside the request-id alphabet
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=secret)
    assert response["X-Request-ID"] != secret
    assert secret not in json.dumps(json_log())
