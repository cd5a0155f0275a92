"""Set a flag's default for every tenant, or one tenant's override of it (typed flags: what it serves)."""

from __future__ import annotations

import json
from contextlib import contextmanager

from django.core.management.base import CommandError

from agentapi_admin.command import UsageError
from tenants.approvals import approval_request
from tenants.exceptions import ApprovalRequired
from tenants.management.base import TenantWriteCommand
from tenants.models import PRODUCTION, Flag, TenantFlag
from tenants.services.flags import flag_clear_override, flag_set_override, flag_update


class Command(TenantWriteCommand):
    help = (
        "Change --flag KEY: --default on|off for every tenant without an override, or, with --tenant SLUG, "
        "that tenant's override: --on/--off (optionally --rollout PERCENT of subjects) or --clear. "
        "For a typed flag, --on may serve --variant KEY or --value JSON, and --owner-variants bounds the "
        "tenant owners' pick. --environment KEY acts in another of the tenant's environments than production. "
        "API answers change from the next request after commit. A flag that requires "
        "approval is changed only through a change request: add --request to create one for another staff "
        "user to approve."
    )
    permission = "tenants.change_flag"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--flag", required=True, metavar="KEY", help="The flag's key.")
        parser.add_argument("--tenant", metavar="SLUG", help="Set this tenant's override instead of the default.")
        parser.add_argument(
            "--environment",
            metavar="KEY",
            help="With --tenant: the environment whose override to set or clear (default: production).",
        )
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--default", choices=["on", "off"], help="The flag's default for every tenant.")
        what.add_argument("--on", action="store_true", help="Override: on for --tenant.")
        what.add_argument("--off", action="store_true", help="Override: off for --tenant.")
        what.add_argument("--clear", action="store_true", help="Remove --tenant's override.")
        parser.add_argument(
            "--rollout", type=int, metavar="PERCENT", help="With --on: the share of subjects it is on for (0-100)."
        )
        served = parser.add_mutually_exclusive_group()
        served.add_argument("--variant", metavar="KEY", help="With --on, a typed flag: serve this variant.")
        served.add_argument(
            "--value",
            metavar="JSON",
            help="""With --on, a typed flag: serve this value, as JSON (a string is quoted: --value '"gpt-4"').""",
        )
        parser.add_argument(
            "--owner-variants",
            metavar="KEY,KEY",
            help="With --on, a typed flag: the variants the tenant's owners may pick among ('' for none). "
            "Left out: the override keeps the ones it has.",
        )
        parser.add_argument(
            "--request",
            action="store_true",
            help="For a flag that requires approval: create a change request (applied once another staff user "
            "approves it) instead of refusing.",
        )

    def handle(self, *args, **options):
        self.check_combination(options)
        super().handle(*args, **options)

    @staticmethod
    def check_combination(options: dict) -> None:
        override = options["on"] or options["off"] or options["clear"]
        if options["default"] and options["tenant"]:
            raise UsageError(
                "--default changes the flag for every tenant, not one: drop --tenant, or use --on/--off with --tenant."
            )
        if options["environment"] is not None and not options["tenant"]:
            raise UsageError(
                "--environment names one of a tenant's environments: give --tenant SLUG too "
                "(a flag's --default is the same in every environment)."
            )
        if override and not options["tenant"]:
            used = "--on" if options["on"] else "--off" if options["off"] else "--clear"
            raise UsageError(f"{used} needs --tenant SLUG (an override is per tenant); --default sets every tenant.")
        used = "--clear" if options["clear"] else "--off" if options["off"] else "--default"
        for option in ("rollout", "variant", "value", "owner_variants"):
            if options[option] is not None and not options["on"]:
                raise UsageError(f"--{option.replace('_', '-')} applies to --on only, not to {used}.")
        if options["rollout"] is not None and not 0 <= options["rollout"] <= 100:
            raise UsageError("--rollout must be a whole number from 0 to 100.")
        if options["value"] is not None:
            try:
                options["value"] = json.loads(options["value"])
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"--value {options['value'][:80]!r} is not JSON ({exc.msg}); quote a string: --value '\"gpt-4\"'."
                ) from None
            if options["value"] is None:
                raise UsageError("--value null serves nothing: leave --value out to serve the flag's own value.")
        if options["owner_variants"] is not None:
            options["owner_variants"] = [key.strip() for key in options["owner_variants"].split(",") if key.strip()]

    @contextmanager
    def changing(self, summary: dict, options: dict):
        """Run the write; a refusal for lack of approval becomes a change request with --request, else an error."""
        try:
            with self.writing():
                yield
        except CommandError as exc:
            refusal = exc.__cause__
            if not isinstance(refusal, ApprovalRequired):
                raise
            if not options["request"]:
                raise CommandError(
                    f"{refusal.message} Rerun with --request to create the change request for another staff "
                    "user to approve."
                ) from refusal
            with self.writing():
                change = approval_request(refusal, actor=self.actor)
            summary.update(change_request=change.pk, change_request_state=change.state, changed=0)

    def run(self, **options) -> dict:
        flag = self.resolve(Flag, field="key", value=options["flag"], option="--flag")
        if options["default"]:
            return self.set_default(flag, options["default"] == "on", options)
        tenant = self.resolve_tenant(options["tenant"])
        environment = self.resolve_environment(tenant, options["environment"] or PRODUCTION)
        summary = {"flag": flag.key, "tenant": tenant.slug, "environment": environment}
        if options["clear"]:
            summary.update(cleared=True, changed=0)
            with self.changing(summary, options):
                cleared = flag_clear_override(tenant=tenant, flag=flag, environment=environment, actor=self.actor)
                summary["changed"] = int(cleared)
            return summary
        enabled = bool(options["on"])
        rollout = 100 if options["rollout"] is None else options["rollout"]
        typed = {name: options[name] for name in ("variant", "value", "owner_variants") if options[name] is not None}
        if typed and flag.kind == Flag.Kind.BOOLEAN:
            option = "--" + next(iter(typed)).replace("_", "-")
            raise UsageError(
                f"{option} is for typed flags; {flag.key} is a boolean flag: use --on/--off and --rollout."
            )
        current = TenantFlag.objects.filter(tenant=tenant, environment=environment, flag=flag).first()
        wanted = {
            "enabled": enabled,
            "rollout_percent": rollout,
            "variant": typed.get("variant", ""),
            "value": typed.get("value"),
            # The owners' bounds are the platform's grant to them: kept unless given.
            "owner_variants": typed.get("owner_variants", current.owner_variants if current else []),
        }
        shown = {**summary, "enabled": enabled, "rollout_percent": rollout, **typed}
        unchanged = current is not None and current.source == TenantFlag.Source.ADMIN
        if unchanged and all(getattr(current, name) == value for name, value in wanted.items()):
            return {**shown, "changed": 0}
        shown["changed"] = 1
        with self.changing(shown, options):
            flag_set_override(tenant=tenant, flag=flag, environment=environment, actor=self.actor, **wanted)
        return shown

    def set_default(self, flag: Flag, default: bool, options: dict) -> dict:
        if flag.default == default:
            return {"flag": flag.key, "default": default, "changed": 0}
        summary = {"flag": flag.key, "default": default, "changed": 1}
        with self.changing(summary, options):
            flag_update(flag=flag, default=default, actor=self.actor)
        return summary
