"""Owner toggles get their own table, so an owner's choice never replaces the platform's override."""

from django.conf import settings
from django.db import migrations, models


def move_owner_rows(apps, schema_editor):
    TenantFlag = apps.get_model("tenants", "TenantFlag")
    OwnerToggle = apps.get_model("tenants", "OwnerToggle")
    rows = TenantFlag.objects.filter(source="owner")
    OwnerToggle.objects.bulk_create(
        OwnerToggle(tenant_id=row.tenant_id, flag_id=row.flag_id, enabled=row.enabled, updated_by_id=row.updated_by_id)
        for row in rows
    )
    rows.delete()


def restore_owner_rows(apps, schema_editor):
    TenantFlag = apps.get_model("tenants", "TenantFlag")
    OwnerToggle = apps.get_model("tenants", "OwnerToggle")
    for toggle in OwnerToggle.objects.all():
        # Before 0007 one row held either choice; the platform's wins where both exist.
        TenantFlag.objects.get_or_create(
            tenant_id=toggle.tenant_id,
            flag_id=toggle.flag_id,
            defaults={"enabled": toggle.enabled, "source": "owner", "updated_by_id": toggle.updated_by_id},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0006_auditevent_moves_to_audit"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="OwnerToggle",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("enabled", models.BooleanField()),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "flag",
                    models.ForeignKey(
                        on_delete=models.deletion.CASCADE, related_name="owner_toggles", to="tenants.flag"
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=models.deletion.CASCADE, related_name="owner_toggles", to="tenants.tenant"
                    ),
                ),
                (
                    "updated_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "flag"), name="ownertoggle_unique_tenant_flag")
                ]
            },
        ),
        migrations.AlterField(
            model_name="tenantflag",
            name="source",
            field=models.CharField(
                choices=[("admin", "Admin override"), ("owner", "Owner toggle (before 0007)")],
                default="admin",
                max_length=8,
            ),
        ),
        migrations.RunPython(move_owner_rows, restore_owner_rows),
    ]
