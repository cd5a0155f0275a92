"""Pending cache invalidations name their tenants' slugs: the Redis keys they touch carry them."""

from django.db import migrations


def add_slugs(apps, schema_editor):
    OutboxMessage = apps.get_model("tenants", "OutboxMessage")
    Tenant = apps.get_model("tenants", "Tenant")
    pending = OutboxMessage.objects.filter(topic="tenants.cache", delivered_at__isnull=True)
    for message in pending.iterator(chunk_size=500):
        payload = dict(message.payload or {})
        ids = [pk for pk in payload.get("versions", {}) if pk not in (payload.get("slugs") or {})]
        if not ids:
            continue
        slugs = dict(payload.get("slugs") or {})
        slugs.update({str(pk): slug for pk, slug in Tenant.objects.filter(pk__in=ids).values_list("pk", "slug")})
        payload["slugs"] = slugs
        OutboxMessage.objects.filter(pk=message.pk).update(payload=payload)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0007_ownertoggle")]

    operations = [migrations.RunPython(add_slugs, migrations.RunPython.noop)]
