"""Moving the ops pages from `resilience` to `console` keeps the operate permission already granted."""

BEFORE = [("resilience", "0001_ops_pages")]


def test_a_group_granted_operate_before_the_move_keeps_it(migrate):
    old = migrate(BEFORE)
    ContentType = old.get_model("contenttypes", "ContentType")
    Permission = old.get_model("auth", "Permission")
    ctype, _ = ContentType.objects.get_or_create(app_label="resilience", model="opspage")
    operate, _ = Permission.objects.get_or_create(
        content_type=ctype, codename="operate", defaults={"name": "Can act from the ops pages"}
    )
    old.get_model("auth", "Group").objects.create(name="on-call").permissions.add(operate)

    migrate()

    from django.contrib.auth.models import Group, User

    from console.models import OPERATE_PERMISSION

    assert OPERATE_PERMISSION == "console.operate"
    on_call = User.objects.create_user("on-call", is_staff=True)
    on_call.groups.add(Group.objects.get(name="on-call"))
    assert on_call.has_perm(OPERATE_PERMISSION)
