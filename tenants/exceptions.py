"""Errors the tenants app raises; each carries a message fit to show a user."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied  # noqa: F401 - reused, re-exported for callers


class TenantsError(Exception):
    """Base error of the tenants app; `message` is safe to show to the user."""

    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, field: str | None = None):
        self.message = message or self.default_message
        self.field = field
        super().__init__(self.message)


class LastOwnerError(TenantsError):
    default_message = "A tenant must keep at least one owner: add another owner first."


class FlagNotEditable(TenantsError):
    default_message = "This flag is not editable by tenant owners; ask a platform admin."


class InvalidSettings(TenantsError):
    default_message = "The tenant settings do not match the schema."

    def __init__(self, message: str | None = None, *, field: str | None = None, errors: dict | None = None):
        super().__init__(message, field=field)
        # {top-level setting: [messages]}: every error of the value at once (settings_schema.settings_error).
        self.errors: dict[str, list[str]] = errors or {}


class DecryptionError(TenantsError):
    default_message = "The secret could not be decrypted: unknown key id or tampered ciphertext."


class TenantNotServing(TenantsError):
    default_message = "The tenant is suspended."


class InvitationInvalid(TenantsError):
    default_message = "This invitation link is not valid: it was used, declined, revoked or never existed."


class InvitationExpired(InvitationInvalid):
    default_message = "This invitation has expired; ask the tenant's owner for a new one."


class InvitationNotForYou(TenantsError):
    default_message = "This invitation is for another account. Sign in with the username or email it was sent to."
