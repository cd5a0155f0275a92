"""The ops pages' entries on the admin index; the console has no database tables.

The unmanaged models below have no table: they give the admin ops pages an entry on
the admin index (and in the sidebar) and carry the permission that guards the
pages' actions.
"""

from django.db import models

OPERATE_PERMISSION = "console.operate"


class OpsPage(models.Model):
    """An admin operations page (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("operate", "Can act from the ops pages: reset rate limits, force breakers, revoke sessions")]
        verbose_name = "operations page"

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


class RedisHealthPage(OpsPage):
    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = verbose_name_plural = "Redis health"


class RateLimitsPage(OpsPage):
    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = verbose_name_plural = "Rate-limit counters"


class BreakersPage(OpsPage):
    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = verbose_name_plural = "Circuit breakers"


class SessionsPage(OpsPage):
    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = verbose_name_plural = "Sessions"
