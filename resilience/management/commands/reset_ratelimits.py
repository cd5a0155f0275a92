"""Give rate-limited identities their full allowance back: one identity, a scope, a tenant, or everything."""

from __future__ import annotations

import difflib

from django.core.management.base import CommandError

from agentapi_admin.command import OperationCommand, UsageError
from resilience.connection import get_redis
from resilience.ratelimit.limiter import SCOPES, state_key
from resilience.ratelimit.services import ratelimit_reset_identity, ratelimit_reset_matching


class Command(OperationCommand):
    help = (
        "Reset rate-limit state (agentapi:rl:*), audited: --scope S --identity ID for one identity (with --tenant "
        "SLUG if it is a tenant's), --scope and/or --tenant for every identity they match (SCAN in batches), or "
        f"--all. Scopes: {', '.join(SCOPES)} (form = the sign-in and password-form throttles)."
    )
    lock_name = "reset_ratelimits"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant's identities.")
        parser.add_argument("--scope", help=f"Only this scope: {', '.join(SCOPES)}.")
        parser.add_argument("--identity", help="Only this identity (user id, IP, tenant slug); needs --scope.")
        parser.add_argument("--all", action="store_true", help="Every identity of every scope and tenant.")
        parser.add_argument("--reason", default="", help="Why, recorded in the audit log.")

    def run(self, **options) -> dict:
        scope, identity = options["scope"], options["identity"]
        if scope is not None and scope not in SCOPES:
            close = difflib.get_close_matches(scope, SCOPES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise CommandError(f"Unknown --scope {scope!r}: use one of {', '.join(SCOPES)}.{hint}")
        if identity is not None and scope is None:
            raise UsageError(f"--identity needs --scope (one of {', '.join(SCOPES)}), e.g. --scope ip --identity …")
        if options["all"] and (scope or options["tenant"]):
            raise UsageError("--all resets everything: leave out --tenant, --scope and --identity, or drop --all.")
        if not (options["all"] or scope or options["tenant"]):
            raise CommandError("Say what to reset: --tenant SLUG, --scope S [--identity ID], or --all.")
        tenant = self.resolve_tenant(options["tenant"]) if options["tenant"] else None
        reason = options["reason"] or "reset_ratelimits command"
        if identity is not None:
            if self.dry_run:
                had_state = bool(get_redis().exists(state_key(scope, tenant, identity)))
            else:
                had_state = ratelimit_reset_identity(
                    scope=scope, tenant=tenant, identity=identity, actor=None, reason=reason
                )
            return {"state_keys": int(had_state)}
        with self.ticking("rate-limit keys") as tick:
            report = ratelimit_reset_matching(
                scope=scope, tenant=tenant, actor=None, reason=reason, dry_run=self.dry_run, tick=tick
            )
        return {"state_keys": report.state_keys, "index_entries": report.index_entries}
