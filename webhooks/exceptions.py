"""Errors the webhooks services raise; `field` names the input at fault, for forms and APIs."""

from __future__ import annotations


class WebhooksError(Exception):
    """A webhook request that cannot be honoured as asked."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)
