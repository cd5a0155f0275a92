"""Promote one of a tenant's environments onto another: print the diff, and apply it only with --yes."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.db import transaction

from agentapi_admin.command import UsageError
from tenants.approvals import approval_request
from tenants.exceptions import ApprovalRequired, TenantsError
from tenants.management.base import TenantWriteCommand
from tenants.services.environments import (
    LAYERS,
    OVERRIDES,
    EnvironmentChanged,
    environment_diff,
    environment_promote,
)

SIGNS = {"add": "+", "change": "~", "remove": "-"}


def _layers(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip()) if raw else LAYERS


def _shown(state: dict | None) -> str:
    return json.dumps(state, sort_keys=True)


def change_line(change: dict) -> str:
    """Return one change as a diff line: `~ overrides beta: {"enabled": false, …} -> {"enabled": true, …}`."""
    head = f"{SIGNS[change['verb']]} {change['layer']} {change['flag']}: "
    if change["verb"] == "add":
        return head + _shown(change["after"])
    if change["verb"] == "remove":
        return head + _shown(change["before"])
    return head + f"{_shown(change['before'])} -> {_shown(change['after'])}"


class Command(TenantWriteCommand):
    help = (
        "Print what promoting SOURCE onto TARGET of TENANT would change (overrides and owner toggles, or "
        "--layers), and with --yes apply exactly that diff in one audited transaction: TARGET's layers become "
        "SOURCE's, added, changed, and removed where SOURCE has none. Without --yes nothing changes. A change to "
        "a flag that requires approval is refused; --request makes it a change request instead."
    )

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("tenant", metavar="TENANT", help="The tenant's slug.")
        parser.add_argument("source", metavar="SOURCE", help="The environment to copy from, e.g. staging.")
        parser.add_argument("target", metavar="TARGET", help="The environment to change, e.g. production.")
        parser.add_argument(
            "--layers",
            metavar="LAYER,LAYER",
            help=f"Which layers to promote: {', '.join(LAYERS)} (default: both).",
        )
        parser.add_argument("--yes", action="store_true", help="Apply the diff printed (otherwise only print it).")
        parser.add_argument(
            "--request",
            action="store_true",
            help="When a flag requires approval: create a change request another staff user approves.",
        )

    @property
    def permissions(self) -> tuple[str, ...]:
        # As the admin API: owner toggles are the tenant's (change_tenant); the platform's overrides, a flag change.
        layers = getattr(self, "layers", LAYERS)
        return ("tenants.change_tenant", "tenants.change_flag") if OVERRIDES in layers else ("tenants.change_tenant",)

    def handle(self, *args, **options) -> None:
        self.layers = _layers(options["layers"])
        super().handle(*args, **options)

    @staticmethod
    def refused(exc: TenantsError) -> CommandError:
        return UsageError(exc.message + (" (--layers)" if exc.field == "layers" else ""))

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        source = self.resolve_environment(tenant, options["source"], option="SOURCE")
        target = self.resolve_environment(tenant, options["target"], option="TARGET")
        try:
            diff = environment_diff(tenant=tenant, source=source, target=target, layers=self.layers)
        except TenantsError as exc:
            raise self.refused(exc) from exc
        summary = {
            "tenant": tenant.slug,
            "source": source,
            "target": target,
            "layers": list(diff.layers),
            "digest": diff.digest,
            "changes": [{**change.as_dict(), "verb": change.verb} for change in diff.changes],
            "applied": False,
            "changed": 0,
        }
        if not diff.changes:
            return summary
        if not options["yes"]:
            return {**summary, "next": "re-run with --yes to apply these changes"}
        try:
            with transaction.atomic():
                environment_promote(
                    tenant=tenant,
                    source=source,
                    target=target,
                    digest=diff.digest,
                    layers=diff.layers,
                    actor=self.actor,
                )
                if self.dry_run:
                    transaction.set_rollback(True)
        except EnvironmentChanged as exc:
            raise CommandError(f"{exc.message} Run environment_promote again to see the new diff.") from exc
        except ApprovalRequired as refusal:
            if not options["request"]:
                raise CommandError(
                    f"{refusal.message} Rerun with --request to create the change request for another staff "
                    "user to approve."
                ) from refusal
            with self.writing():
                change = approval_request(refusal, actor=self.actor)
            return {**summary, "change_request": change.pk, "change_request_state": change.state}
        except TenantsError as exc:
            raise self.refused(exc) from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        return {**summary, "applied": True, "changed": len(diff.changes)}

    def emit(self, summary: dict) -> None:
        if self.as_json:
            super().emit(summary)
            return
        for change in summary["changes"]:
            self.stdout.write(change_line(change))
        if not summary["changes"]:
            self.stdout.write(
                f"nothing to promote: {summary['target']}'s {' and '.join(summary['layers'])} are {summary['source']}'s"
            )
        super().emit({name: value for name, value in summary.items() if name != "changes"})
