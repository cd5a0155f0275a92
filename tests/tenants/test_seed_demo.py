"""seed_demo: the demo logins of PRODUCT.md, idempotent."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


@pytest.mark.django_db
def test_seed_demo_creates_logins_and_is_idempotent(capsys, settings):
    settings.DEMO_PASSWORD = "another-demo-pass"
    call_command("seed_demo")
    call_command("seed_demo", "--json")
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["users"]) == {"admin", "acme-owner", "globex-owner"}
    User = get_user_model()
    assert User.objects.count() == 3
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("another-demo-pass")
    assert not User.objects.get(username="acme-owner").is_staff
