"""Bump the cache version of one tenant or every tenant and drop their flag and API-key cache entries."""

from __future__ import annotations

from tenants.management.base import TenantCommand
from tenants.services.cache import tenant_cache_purge


class Command(TenantCommand):
    help = (
        "Bump cache_version of --tenant SLUG (or --all tenants), audited, and delete only their cached flag "
        "documents (agentapi:flags:{t:<slug>}:<tenant id>:doc, found with SCAN; --all also keys named before "
        "hash tags) and cached API-key lookups. Readers rebuild from the database on their next request. Use it "
        "after editing flags or plans outside the app."
    )
    lock_name = "purge_tenant_cache"

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, required=True)
        parser.add_argument("--reason", default="", help="Why, recorded in the audit log.")

    def run(self, **options) -> dict:
        tenants = None if options["all"] else [self.resolve_tenant(options["tenant"])]
        reason = options["reason"] or "purge_tenant_cache command"
        with self.ticking("purging") as tick:
            report = tenant_cache_purge(tenants=tenants, actor=None, reason=reason, dry_run=self.dry_run, tick=tick)
        return {
            "tenants": report.tenants,
            "flag_documents": report.flag_documents,
            "apikey_entries": report.apikey_entries,
            "legacy_keys": report.legacy_keys,
        }
