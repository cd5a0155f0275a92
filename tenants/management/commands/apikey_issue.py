"""Issue an API key for a tenant; its secret is printed once and never stored."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from agentapi_admin.command import UsageError
from agentapi_admin.envconfig import DURATION_HELP, parse_duration
from tenants.management.base import TenantWriteCommand
from tenants.models import PRODUCTION
from tenants.services.apikeys import SCOPES, apikey_issue


class Command(TenantWriteCommand):
    help = (
        "Issue an API key for --tenant SLUG named --name, with --scopes (comma-separated; default all: "
        f"{', '.join(SCOPES)}), an optional --expires duration and --environment (whose flags it reads; default "
        "production). The secret is printed once: store it now."
    )
    permission = "tenants.add_apikey"

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, allow_all=False, required=True)
        parser.add_argument("--name", required=True, help="What the key is for, e.g. the replica's name.")
        parser.add_argument("--scopes", metavar="SCOPE,…", help=f"Any of {', '.join(SCOPES)}.")
        parser.add_argument("--expires", metavar="DURATION", help="Lifetime, e.g. 90d or 12h; default: never.")
        parser.add_argument(
            "--environment",
            metavar="KEY",
            default=PRODUCTION,
            help="The tenant's environment whose flags the key reads, fixed at issue (default: production).",
        )

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        environment = self.resolve_environment(tenant, options["environment"])
        expires_at = None
        if options["expires"] is not None:
            seconds = parse_duration(options["expires"])
            if seconds is None or seconds <= 0:
                raise UsageError(
                    f"--expires {options['expires']!r} is not a positive duration: give e.g. 30d or {DURATION_HELP}."
                )
            expires_at = timezone.now() + timedelta(seconds=seconds)
        scopes = None
        if options["scopes"] is not None:
            scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        with self.writing():
            api_key, secret = apikey_issue(
                tenant=tenant,
                name=options["name"],
                scopes=scopes,
                expires_at=expires_at,
                environment=environment,
                actor=self.actor,
            )
        summary = {
            "tenant": tenant.slug,
            "environment": api_key.environment,
            "prefix": api_key.prefix,
            "scopes": api_key.scopes,
            "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
        }
        if not self.dry_run:
            summary["secret"] = secret
        return summary

    def emit(self, summary: dict) -> None:
        super().emit(summary)
        if not self.as_json and "secret" in summary:
            self.stdout.write(f"Secret (shown once, not stored; keep it now): {summary['secret']}")
