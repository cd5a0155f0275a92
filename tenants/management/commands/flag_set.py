"""Set a flag's default for every tenant, or one tenant's override of it (typed flags: what it serves)."""

from __future__ import annotations

import json

from agentapi_admin.command import UsageError
from tenants.management.base import TenantWriteCommand
from tenants.models import Flag, TenantFlag
from tenants.services.flags import flag_clear_override, flag_set_override, flag_update


class Command(TenantWriteCommand):
    help = (
        "Change --flag KEY: --default on|off for every tenant without an override, or, with --tenant SLUG, "
        "that tenant's override: --on/--off (optionally --rollout PERCENT of subjects) or --clear. "
        "For a typed flag, --on may serve --variant KEY or --value JSON, and --owner-variants bounds the "
        "tenant owners' pick. API answers change from the next request after commit."
    )
    permission = "tenants.change_flag"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--flag", required=True, metavar="KEY", help="The flag's key.")
        parser.add_argument("--tenant", metavar="SLUG", help="Set this tenant's override instead of the default.")
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

    def run(self, **options) -> dict:
        flag = self.resolve(Flag, field="key", value=options["flag"], option="--flag")
        if options["default"]:
            return self.set_default(flag, options["default"] == "on")
        tenant = self.resolve_tenant(options["tenant"])
        summary = {"flag": flag.key, "tenant": tenant.slug}
        if options["clear"]:
            with self.writing():
                cleared = flag_clear_override(tenant=tenant, flag=flag, actor=self.actor)
            return {**summary, "cleared": True, "changed": int(cleared)}
        enabled = bool(options["on"])
        rollout = 100 if options["rollout"] is None else options["rollout"]
        typed = {name: options[name] for name in ("variant", "value", "owner_variants") if options[name] is not None}
        if typed and flag.kind == Flag.Kind.BOOLEAN:
            option = "--" + next(iter(typed)).replace("_", "-")
            raise UsageError(
                f"{option} is for typed flags; {flag.key} is a boolean flag: use --on/--off and --rollout."
            )
        current = TenantFlag.objects.filter(tenant=tenant, flag=flag).first()
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
        with self.writing():
            flag_set_override(tenant=tenant, flag=flag, actor=self.actor, **wanted)
        return {**shown, "changed": 1}

    def set_default(self, flag: Flag, default: bool) -> dict:
        if flag.default == default:
            return {"flag": flag.key, "default": default, "changed": 0}
        with self.writing():
            flag_update(flag=flag, default=default, actor=self.actor)
        return {"flag": flag.key, "default": default, "changed": 1}
