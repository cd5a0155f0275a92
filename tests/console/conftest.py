"""Users for the ops pages: a superuser, plain staff (view only), a non-staff user."""

import pytest
from django.contrib.auth.models import Permission

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def operator(django_user_model):
    """Staff with the console.operate permission."""
    user = django_user_model.objects.create_user("operator", "op@example.com", PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="operate", content_type__app_label="console"))
    return user


@pytest.fixture
def viewer(django_user_model):
    """Staff without the console.operate permission."""
    return django_user_model.objects.create_user("viewer", "viewer@example.com", PASSWORD, is_staff=True)


@pytest.fixture
def customer(django_user_model):
    """An active user who is not staff."""
    return django_user_model.objects.create_user("customer", "c@example.com", PASSWORD)
