"""Factories for automation tests: staff users with chosen permissions, and their tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from automation.scopes import SCOPES
from automation.services import staff_token_create


def grant(user, *perms: str) -> None:
    """Give `user` the permissions `app_label.codename` (and drop the cached ones)."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    for cache in ("_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cache, None)


TOKEN_ADMIN_PERMISSIONS = ("automation.view_stafftoken", "automation.add_stafftoken", "automation.change_stafftoken")


def make_operator(username: str = "robot", scopes=tuple(SCOPES)):
    """Return active staff (not a superuser) holding the permissions behind `scopes` and the token admin's."""
    user = get_user_model().objects.create_user(username, password="pw-123456789", is_staff=True)
    grant(user, *TOKEN_ADMIN_PERMISSIONS, *{perm for scope in scopes for perm in SCOPES[scope][1]})
    return user


def make_token(user, scopes=tuple(SCOPES), **fields):
    """Create a token for `user`; return (token, secret)."""
    return staff_token_create(user=user, name=fields.pop("name", "ci"), scopes=list(scopes), actor=user, **fields)
