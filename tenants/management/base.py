"""The base of the operator write commands: an accountable actor, a rollback dry run, service errors as usage errors.

Each command is a thin wrapper over the service the admin calls, so the change is
validated, audited and delivered to Redis exactly as an admin's would be.
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.db import transaction

from agentapi_admin.command import OperationCommand
from tenants.exceptions import TenantsError


class TenantWriteCommand(OperationCommand):
    """An operations command that changes tenants' data as a named staff user."""

    #: The Django permission(s) the admin requires for the same change, e.g. "tenants.change_tenant".
    permission: str | tuple[str, ...] = ""

    @property
    def permissions(self) -> tuple[str, ...]:
        return (self.permission,) if isinstance(self.permission, str) else tuple(self.permission)

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--actor",
            metavar="USERNAME",
            help=f"The staff user the change is audited as (required; needs {', '.join(self.permissions)}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.actor = self.resolve_actor(options.get("actor"))
        super().handle(*args, **options)

    def resolve_actor(self, username: str | None):
        """Return the active staff user `username` holding `permission`, or raise a CommandError saying why not."""
        if not username:
            raise CommandError(
                f"{self.command_name} changes tenant data: name yourself with --actor USERNAME "
                "(an active staff user), so the audit log says who did it."
            )
        user = get_user_model().objects.filter(username=username, is_active=True, is_staff=True).first()
        if user is None:
            raise CommandError(
                f"There is no active staff user {username!r}: give --actor the username of an active staff account."
            )
        missing = [permission for permission in self.permissions if not user.has_perm(permission)]
        if missing:
            raise CommandError(
                f"{username} lacks the permission {', '.join(missing)} that the admin requires for this change; "
                "grant it in the admin (Users or Groups) or run the command as another --actor."
            )
        return user

    @contextmanager
    def writing(self):
        """Run the services in one transaction; roll it back on --dry-run, so nothing (outbox included) is kept."""
        try:
            with transaction.atomic():
                yield
                if self.dry_run:
                    transaction.set_rollback(True)
        except TenantsError as exc:
            option = f" (--{exc.field.replace('_', '-')})" if exc.field else ""
            raise CommandError(f"{exc.message}{option}") from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc

    @staticmethod
    def resolve(model, *, field: str, value: str, option: str):
        """Return the row of `model` whose `field` is `value`, or a CommandError listing close values."""
        row = model.objects.filter(**{field: value}).first()
        if row is not None:
            return row
        known = list(model.objects.order_by(field).values_list(field, flat=True)[:1000])
        close = difflib.get_close_matches(value, known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        listed = ", ".join(known[:10]) + (" …" if len(known) > 10 else "") if known else "none yet"
        raise CommandError(f"Unknown {model._meta.verbose_name} {value!r} for {option}.{hint} Known: {listed}.")
