"""Staff API tokens: a staff user's credential for the admin API; only a SHA-256 of the secret is stored."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StaffToken(models.Model):
    """A staff user's scoped, expiring, revocable token for `/api/v1/admin/`.

    It never grants more than its user's own Django permissions: the API checks
    them (and that the user is still active staff) on every request.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_tokens")
    name = models.CharField(max_length=100)
    # "sat_" + 8 hex: the visible start of the token, for recognition and as its rate-limit identity.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Written at most once a minute per token (a Redis SET NX guard), never on every request.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "staff API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
