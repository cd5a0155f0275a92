"""Moving the audit trail out of `tenants` keeps its table, its rows and the permissions granted on it."""

BEFORE = [("tenants", "0005_outbox")]


def test_rows_and_granted_permissions_survive_the_move(migrate):
    old = migrate(BEFORE)
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

    migrate()

    from django.contrib.auth.models import Group as LiveGroup
    from django.contrib.auth.models import User

    from audit.models import AuditEvent

    assert list(AuditEvent.objects.values_list("actor_label", "action")) == [("ops", "tenant.suspend")]
    assert AuditEvent._meta.db_table == "tenants_auditevent"
    auditor = User.objects.create_user("auditor", is_staff=True)
    auditor.groups.add(LiveGroup.objects.get(name="auditors"))
    assert auditor.has_perm("audit.view_auditevent")


def test_grants_on_the_old_type_reach_the_new_one_when_both_exist(migrate):
    old = migrate(BEFORE)
    ContentType = old.get_model("contenttypes", "ContentType")
    Permission = old.get_model("auth", "Permission")
    stale, _ = ContentType.objects.get_or_create(app_label="tenants", model="auditevent")
    granted, _ = Permission.objects.get_or_create(
        content_type=stale, codename="view_auditevent", defaults={"name": "Can view audit event"}
    )
    fresh, _ = ContentType.objects.get_or_create(app_label="audit", model="auditevent")
    Permission.objects.get_or_create(
        content_type=fresh, codename="view_auditevent", defaults={"name": "Can view audit event"}
    )
    old.get_model("auth", "Group").objects.create(name="auditors").permissions.add(granted)

    migrate()

    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType as LiveContentType

    assert not LiveContentType.objects.filter(app_label="tenants", model="auditevent").exists()
    codes = Group.objects.get(name="auditors").permissions.values_list("content_type__app_label", "codename")
    assert list(codes) == [("audit", "view_auditevent")]
