"""A NUL character in a query string is a clear 400, before any view or database sees it."""

import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def staff_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789"))
    return client


@pytest.mark.parametrize(
    "path",
    ["/admin/tenants/tenant/?status=%00", "/admin/tenants/tenant/?q=a%00b", "/admin/ops/sessions/?user=%00"],
)
def test_nul_in_a_query_is_a_400_page(staff_client, path):
    response = staff_client.get(path)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


@pytest.mark.parametrize("path", ["/api/v1/flags/beta?subject=a%00", "/api/v1/admin/tenants?q=%00"])
def test_nul_in_an_api_query_is_a_400_problem(client, path):
    response = client.get(path)
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["error"] == "bad_request" and body["status"] == 400 and body["field"] == "query"


def test_nul_in_a_form_field_stays_a_form_error(staff_client):
    from tenants.models import Plan

    response = staff_client.post("/admin/tenants/plan/add/", {"code": "gold", "name": "Gold\x00"})
    assert response.status_code == 200
    assert "Null characters are not allowed" in response.content.decode()
    assert not Plan.objects.exists()


def test_ordinary_requests_pass(staff_client):
    assert staff_client.get("/admin/tenants/tenant/?q=acme").status_code == 200


def test_an_encoded_percent_sign_followed_by_zeros_is_not_a_nul(staff_client):
    assert staff_client.get("/admin/tenants/tenant/?q=%2500").status_code == 200
