"""Errors the automation app raises."""

from __future__ import annotations

from tenants.exceptions import TenantsError


class TokenError(TenantsError):
    """A staff token cannot be created as asked; `message` says how to fix it."""
