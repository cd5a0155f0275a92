"""Errors the change-request services raise; `message` is fit to show, `field` names the input at fault."""

from __future__ import annotations

from tenants.exceptions import TenantsError


class ChangesError(TenantsError):
    """A change request that cannot be created or moved as asked.

    A TenantsError, so the callers below this app that route a refused write here
    (the tenants admin and commands, through tenants.approvals) can show it as they show theirs.
    """


class InvalidChange(ChangesError):
    """The operation or its params do not describe a change that could apply now."""


class TransitionRefused(ChangesError):
    """The request is not in a state that allows this step (approve a cancelled request, …)."""


class SelfApproval(ChangesError):
    """The author of a change request tried to approve it: approval needs another staff user."""
