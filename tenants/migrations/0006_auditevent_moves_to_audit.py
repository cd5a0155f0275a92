# The audit trail became its own app (`audit`); its table and rows stay where they are.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_outbox"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        ),
    ]
