# The ops pages' index entries (unmanaged, no table) moved to the `console` app.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("resilience", "0001_ops_pages"),
    ]

    operations = [
        migrations.DeleteModel(name="BreakersPage"),
        migrations.DeleteModel(name="RateLimitsPage"),
        migrations.DeleteModel(name="RedisHealthPage"),
        migrations.DeleteModel(name="SessionsPage"),
        migrations.DeleteModel(name="OpsPage"),
    ]
