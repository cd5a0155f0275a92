"""GET /metrics: protected by a bearer token or a CIDR allowlist, exempt from the HTTPS redirect, cheap to read."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import Client

from .conftest import TOKEN

pytestmark = pytest.mark.django_db


def test_refused_when_neither_a_token_nor_networks_are_configured(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_CIDRS = "", []
    response = Client().get("/metrics")
    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.json()["detail"] and "METRICS_ALLOWED_CIDRS" in response.json()["detail"]


def test_the_bearer_token_admits_and_a_wrong_one_is_refused(metrics_token):
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token-0000000000").status_code == 403
    assert Client().get("/metrics").status_code == 403
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"# TYPE agentapi_http_requests_total counter" in response.content
    assert b"agentapi_redis_up 1.0" in response.content


def test_networks_admit_the_direct_peer_only_never_x_forwarded_for(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_CIDRS = [ipaddress.ip_network("10.0.0.0/8")]
    spoofed = Client().get("/metrics", HTTP_X_FORWARDED_FOR="10.1.2.3")  # the peer is 127.0.0.1
    assert spoofed.status_code == 403
    inside = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert inside.status_code == 200


def test_metrics_is_exempt_from_the_https_redirect_like_readyz(settings, metrics_token):
    settings.SECURE_SSL_REDIRECT = True
    assert Client().get("/admin/login/").status_code == 301
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200


def test_disabled_metrics_answer_404(settings, metrics_token):
    settings.METRICS_ENABLED = False
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"METRICS_ALLOWED_CIDRS": "10.0.0.0/8,not-a-network"}, "METRICS_ALLOWED_CIDRS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"HISTORY_SAMPLE_INTERVAL": "soon"}, "HISTORY_SAMPLE_INTERVAL"),
    ],
)
def test_bad_values_fail_at_start_naming_the_variable(load_settings, env, needle):
    values, error = load_settings(["METRICS_TOKEN"], DEBUG="true", **env)
    assert values is None
    assert "ImproperlyConfigured" in error and needle in error


def test_good_values_are_read(load_settings):
    values, error = load_settings(
        ["METRICS_TOKEN", "METRICS_ALLOWED_CIDRS", "LOG_FORMAT", "METRICS_ENABLED"],
        DEBUG="true",
        METRICS_TOKEN=TOKEN,
        METRICS_ALLOWED_CIDRS="10.0.0.0/8, 127.0.0.1",
        LOG_FORMAT="json",
    )
    assert values, error
    assert values["METRICS_ALLOWED_CIDRS"] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert values["LOG_FORMAT"] == "json" and values["METRICS_ENABLED"] is True
