"""Moving the audit trail out of `tenants` keeps its table, its rows and the permissions granted on it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("tenants", "0005_outbox"),
    ("auth", "0012_alter_user_first_name_max_length"),
    ("contenttypes", "0002_remove_content_type_name"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_rows_and_granted_permissions_survive_the_move():
    old = _migrate(BEFORE)
    ContentType = old.get_model("contenttypes", "ContentType")
    Permission = old.get_model("auth", "Permission")
    Group = old.get_model("auth", "Group")
    ctype, _ = ContentType.objects.get_or_create(app_label="tenants", model="auditevent")
    view, _ = Permission.objects.get_or_create(
        content_type=ctype, codename="view_auditevent", defaults={"name": "Can view audit event"}
    )
    auditors = Group.objects.create(name="auditors")
    auditors.permissions.add(view)
    old.get_model("tenants", "AuditEvent").objects.create(actor_label="ops", action="tenant.suspend")

    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())

    from django.contrib.auth.models import Group as LiveGroup
    from django.contrib.auth.models import User

    from audit.models import AuditEvent

    assert list(AuditEvent.objects.values_list("actor_label", "action")) == [("ops", "tenant.suspend")]
    assert AuditEvent._meta.db_table == "tenants_auditevent"
    auditor = User.objects.create_user("auditor", is_staff=True)
    auditor.groups.add(LiveGroup.objects.get(name="auditors"))
    assert auditor.has_perm("audit.view_auditevent")

