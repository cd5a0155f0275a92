"""Errors the change-request services raise; `message` is fit to show, `field` names the input at fault."""

from __future__ import annotations


class ChangesError(Exception):
    """A change request that cannot be created or moved as asked."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)


class InvalidChange(ChangesError):
    """The operation or its params do not describe a change that could apply now."""


class TransitionRefused(ChangesError):
    """The request is not in a state that allows this step (approve a cancelled request, …)."""


class SelfApproval(ChangesError):
    """The author of a change request tried to approve it: approval needs another staff user."""
