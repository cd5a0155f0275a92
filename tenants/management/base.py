"""The base of the operator write commands: an accountable actor, a rollback dry run, service errors as usage errors.

Each command is a thin wrapper over the service the admin calls, so the change is
validated, audited and delivered to Redis exactly as an admin's would be.
"""

from __future__ import annotations

import difflib
import re
from contextlib import contextmanager
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.core.validators import slug_re
from django.db import transaction

from agentapi_admin.command import OperationCommand, UsageError
from tenants.exceptions import TenantsError
from tenants.models import ENVIRONMENT_KEY_PATTERN, PRODUCTION, Environment, Tenant
from tenants.selectors import tenant_environments

# A SlugField always has a max_length (50 unless given); the field's type allows None.
SLUG_MAX_LENGTH = cast(int, Tenant._meta.get_field("slug").max_length)


class TenantCommand(OperationCommand):
    """An operations command that takes --tenant SLUG (and, optionally, --all)."""

    @staticmethod
    def add_tenant_argument(parser, *, allow_all: bool = True, required: bool = False) -> None:
        group = parser.add_mutually_exclusive_group(required=required)
        group.add_argument("--tenant", metavar="SLUG", help="Only this tenant (its slug).")
        if allow_all:
            group.add_argument("--all", action="store_true", help="Every tenant.")

    @staticmethod
    def resolve_tenant(slug: str):
        """Return the tenant with this slug or raise a CommandError listing close matches."""
        # Only a well-formed slug reaches the database (PostgreSQL refuses NUL bytes in text).
        well_formed = len(slug) <= SLUG_MAX_LENGTH and slug_re.match(slug) is not None
        tenant = Tenant.objects.filter(slug=slug).first() if well_formed else None
        if tenant is not None:
            return tenant
        slugs = list(Tenant.objects.order_by("slug").values_list("slug", flat=True)[:1000])
        close = difflib.get_close_matches(slug, slugs, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        known = ", ".join(slugs[:10]) + (" …" if len(slugs) > 10 else "") if slugs else "none yet"
        if not well_formed:
            raise UsageError(
                f"--tenant {slug[:80]!r} is not a tenant slug (letters, digits, '-' and '_', "
                f"at most {SLUG_MAX_LENGTH} characters).{hint} Known tenants: {known}."
            )
        raise UsageError(f"Unknown tenant {slug!r}.{hint} Known tenants: {known}.")


class TenantWriteCommand(TenantCommand):
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

    @staticmethod
    def resolve_environment(tenant, key: str, *, option: str = "--environment") -> str:
        """Return `key` if the tenant has that environment, or a usage error listing them and how to add one."""
        # Only a well-formed key reaches the database (PostgreSQL refuses NUL bytes in text).
        well_formed = re.match(ENVIRONMENT_KEY_PATTERN, key) is not None
        if key == PRODUCTION or (well_formed and Environment.objects.filter(tenant=tenant, key=key).exists()):
            return key
        known = tenant_environments(tenant)
        close = difflib.get_close_matches(key, known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(
            f"Unknown environment {key[:80]!r} of {tenant.slug} for {option}.{hint} Known: {', '.join(known)}. "
            f"Add one with: manage.py environment_create --tenant {tenant.slug} --key KEY --actor USERNAME."
        )


class TenantStatusCommand(TenantWriteCommand):
    """A command that moves one tenant to a status through its service; a tenant already there is left as it is."""

    permission = "tenants.change_tenant"
    #: Whether the change takes a --reason for the audit log.
    takes_reason = False

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, allow_all=False, required=True)
        if self.takes_reason:
            parser.add_argument("--reason", required=True, help="Why; shown in the audit log and the admin.")

    def already_done(self, tenant) -> bool:
        """Return True if the tenant needs no change."""
        raise NotImplementedError("subclasses of TenantStatusCommand must provide already_done()")

    def change(self, tenant, options: dict):
        """Apply the change through the service; return the tenant."""
        raise NotImplementedError("subclasses of TenantStatusCommand must provide change()")

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        if self.already_done(tenant):
            return {"tenant": tenant.slug, "status": tenant.status, "changed": 0}
        with self.writing():
            tenant = self.change(tenant, options)
        return {"tenant": tenant.slug, "status": tenant.status, "changed": 1}
