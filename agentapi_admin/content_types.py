"""Carry models' content types (and the permissions granted on them) over when the models move app.

Data migrations call it, so it touches only the historical models it is given.
"""

from __future__ import annotations


def content_types_move(apps, *, models: list[str], source: str, target: str) -> None:
    """Relabel the content types of `models` from app `source` to app `target`, keeping every grant."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    for model in models:
        old = ContentType.objects.filter(app_label=source, model=model).first()
        if old is None:
            continue
        new = ContentType.objects.filter(app_label=target, model=model).first()
        if new is None:
            old.app_label = target
            old.save(update_fields=["app_label"])
            continue
        # Both exist (a migrate in between created the new one): carry every grant over, then drop the old type.
        for permission in Permission.objects.filter(content_type=old):
            twin = Permission.objects.filter(content_type=new, codename=permission.codename).first()
            if twin is None:
                permission.content_type = new
                permission.save(update_fields=["content_type"])
                continue
            for group in permission.group_set.all():
                group.permissions.add(twin)
            for user in permission.user_set.all():
                user.user_permissions.add(twin)
        old.delete()
