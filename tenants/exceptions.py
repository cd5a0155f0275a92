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


class ApprovalRequired(TenantsError):
    """A write to a flag that requires approval, refused: it must become a change request another staff user approves.

    `operation` (the audit action of the write) and `params` (natural keys: flag key, tenant slug, values)
    describe the refused write, so a caller can turn it into a change request (`tenants.approvals`).
    """

    default_message = "This flag requires approval: the change must be a change request another staff user approves."

    def __init__(self, message: str | None = None, *, operation: str, params: dict, field: str | None = None):
        super().__init__(message, field=field)
        self.operation, self.params = operation, params


class InvalidSettings(TenantsError):
    default_message = "The tenant settings do not match the schema."

    def __init__(self, message: str | None = None, *, field: str | None = None, errors: dict | None = None):
        super().__init__(message, field=field)
        # {top-level setting: [(path below it, message)]}: every error at once (settings_schema.settings_error).
        self.errors: dict[str, list[tuple[str, str]]] = errors or {}

    def messages_for(self, key: str) -> list[str]:
        """Return the errors of one top-level setting, for a field showing that setting ("a: ..." below it)."""
        return [f"{path}: {message}" if path else message for path, message in self.errors.get(key, [])]

    def lines_for(self, key: str) -> list[str]:
        """Return the errors of one top-level setting with their full path ("settings.labels.a: ...")."""
        lines = []
        for path, message in self.errors.get(key, []):
            # Key "settings" is the value itself (not an object): no second "settings".
            parts = ["settings", *([] if key == "settings" else [key]), *([path] if path else [])]
            lines.append(f"{'.'.join(parts)}: {message}")
        return lines


class DecryptionError(TenantsError):
    default_message = "The secret could not be decrypted: unknown key id or tampered ciphertext."


class InvitationInvalid(TenantsError):
    default_message = "This invitation link is not valid: it was used, declined, revoked or never existed."


class InvitationExpired(InvitationInvalid):
    default_message = "This invitation has expired; ask the tenant's owner for a new one."


class InvitationNotForYou(TenantsError):
    default_message = "This invitation is for another account. Sign in with the username or email it was sent to."
