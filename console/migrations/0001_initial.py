# The ops pages' index entries (unmanaged models, no table) moved here from
# `resilience`. Their content types move with them, so the `operate` permission
# already granted to users and groups keeps working (as `console.operate`).

from django.db import migrations, models

from agentapi_admin.content_types import content_types_move

MODELS = ["opspage", "redishealthpage", "ratelimitspage", "breakerspage", "sessionspage"]


def forwards(apps, schema_editor):
    content_types_move(apps, models=MODELS, source="resilience", target="console")


def backwards(apps, schema_editor):
    content_types_move(apps, models=MODELS, source="console", target="resilience")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("resilience", "0002_ops_pages_move_to_console"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.CreateModel(
            name='OpsPage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
            ],
            options={
                'verbose_name': 'operations page',
                'permissions': [('operate', 'Can act from the ops pages: reset rate limits, force breakers, revoke sessions')],
                'managed': False,
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='BreakersPage',
            fields=[
            ],
            options={
                'verbose_name': 'Circuit breakers',
                'verbose_name_plural': 'Circuit breakers',
                'proxy': True,
                'default_permissions': (),
                'indexes': [],
                'constraints': [],
            },
            bases=('console.opspage',),
        ),
        migrations.CreateModel(
            name='RateLimitsPage',
            fields=[
            ],
            options={
                'verbose_name': 'Rate-limit counters',
                'verbose_name_plural': 'Rate-limit counters',
                'proxy': True,
                'default_permissions': (),
                'indexes': [],
                'constraints': [],
            },
            bases=('console.opspage',),
        ),
        migrations.CreateModel(
            name='RedisHealthPage',
            fields=[
            ],
            options={
                'verbose_name': 'Redis health',
                'verbose_name_plural': 'Redis health',
                'proxy': True,
                'default_permissions': (),
                'indexes': [],
                'constraints': [],
            },
            bases=('console.opspage',),
        ),
        migrations.CreateModel(
            name='SessionsPage',
            fields=[
            ],
            options={
                'verbose_name': 'Sessions',
                'verbose_name_plural': 'Sessions',
                'proxy': True,
                'default_permissions': (),
                'indexes': [],
                'constraints': [],
            },
            bases=('console.opspage',),
        ),
        migrations.RunPython(forwards, backwards),
    ]
