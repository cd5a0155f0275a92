"""CSV and JSON export of the audit log and daily usage: admin actions that stream, on any number of rows."""

import csv
import datetime as dt
import io
import json

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.models import UsageDaily
from tenants.services.tenants import tenant_suspend, tenant_update

from .factories import make_plan, make_staff, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(make_staff("root"))
    return client


def export(client, path, action, pks=None, **extra):
    data = {"action": action, "index": "0", "_selected_action": pks, **extra}
    return client.post(path, data)


def every_row(model):
    """The form the admin posts for "select all N": the first page's ids plus select_across."""
    return {"pks": list(model.objects.values_list("pk", flat=True)[:100]), "select_across": "1"}


def body(response) -> str:
    assert response.streaming, "exports stream: a large set never builds one huge string"
    return b"".join(response.streaming_content).decode()


def test_audit_csv_has_names_json_snapshots_and_utc_times(staff_client):
    tenant = make_tenant("acme")
    tenant_update(tenant=tenant, name="Acme Inc", plan=make_plan("gold"), actor=None, ip="2001:db8::1")
    event = AuditEvent.objects.get(action="tenant.update")

    response = export(staff_client, "/admin/audit/auditevent/", "export_csv", [event.pk])

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert (
        response["Content-Disposition"].startswith('attachment; filename="audit-')
        and ".csv" in response["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert len(rows) == 1
    row = rows[0]
    assert row["action"] == "tenant.update" and row["tenant"] == "acme" and row["ip"] == "2001:db8::1"
    assert row["created_at"].endswith("+00:00")
    assert json.loads(row["after"])["name"] == "Acme Inc" and json.loads(row["before"])["name"] == "Acme"


def test_audit_json_is_one_valid_array(staff_client):
    tenant = make_tenant("acme")
    tenant_suspend(tenant=tenant, reason="unpaid", actor=None)
    pks = list(AuditEvent.objects.filter(tenant=tenant).values_list("pk", flat=True))

    response = export(staff_client, "/admin/audit/auditevent/", "export_json", pks)

    assert response["Content-Type"].startswith("application/json")
    data = json.loads(body(response))
    assert [e["action"] for e in data] == ["tenant.suspend", "tenant.create"]
    assert data[0]["reason"] == "unpaid" and data[0]["after"]["status"] == "suspended"


def test_csv_cells_cannot_become_spreadsheet_formulas(staff_client):
    tenant = make_tenant("acme")
    tenant_suspend(tenant=tenant, reason='=HYPERLINK("http://evil.example","x")', actor=None)
    event = AuditEvent.objects.get(action="tenant.suspend")
    rows = list(
        csv.DictReader(io.StringIO(body(export(staff_client, "/admin/audit/auditevent/", "export_csv", [event.pk]))))
    )
    assert rows[0]["reason"].startswith("'=")


def test_usage_export_of_every_row_streams_in_few_queries(staff_client, django_assert_max_num_queries):
    tenants = [make_tenant(f"t{n}") for n in range(5)]
    start = dt.date(2026, 1, 1)
    UsageDaily.objects.bulk_create(
        UsageDaily(tenant=t, day=start + dt.timedelta(days=d), metric=m, count=d)
        for t in tenants
        for d in range(400)
        for m in ("requests", "rate_limited")
    )

    with django_assert_max_num_queries(20):
        response = export(staff_client, "/admin/tenants/usagedaily/", "export_csv", **every_row(UsageDaily))
        text = body(response)

    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4000
    assert set(rows[0]) == {"day", "tenant", "metric", "count"}
    as_json = export(staff_client, "/admin/tenants/usagedaily/", "export_json", **every_row(UsageDaily))
    json_rows = json.loads(body(as_json))
    assert len(json_rows) == 4000 and {r["tenant"] for r in json_rows} == {f"t{n}" for n in range(5)}


def test_a_view_only_staff_member_may_export_and_a_user_without_view_may_not(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    make_tenant("acme")
    viewer = get_user_model().objects.create_user("viewer", password="pw-123456789", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client = Client()
    client.force_login(viewer)
    pks = list(AuditEvent.objects.values_list("pk", flat=True))
    assert export(client, "/admin/audit/auditevent/", "export_csv", pks).status_code == 200
    assert export(client, "/admin/tenants/usagedaily/", "export_csv", **every_row(UsageDaily)).status_code == 403
