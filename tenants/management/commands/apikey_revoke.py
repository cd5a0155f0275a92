"""Revoke an API key by its prefix: it answers 401 from the next request."""

from __future__ import annotations

from django.core.management.base import CommandError

from tenants.management.base import TenantWriteCommand
from tenants.models import ApiKey
from tenants.services.apikeys import apikey_revoke


class Command(TenantWriteCommand):
    help = (
        "Revoke the API key whose prefix is --prefix (the 8 hex characters after aak_, shown in the admin and "
        "portal); it answers 401 from the next request after commit. A revoked key is left as it is."
    )
    permission = "tenants.change_apikey"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--prefix", required=True, help="The key's visible prefix.")

    def run(self, **options) -> dict:
        prefix = options["prefix"].strip().removeprefix("aak_")[:16]
        api_key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
        if api_key is None:
            raise CommandError(
                f"No API key with prefix {prefix!r}; the prefix is the 8 hex characters after 'aak_' "
                "(the admin's API keys list and the tenant portal show it)."
            )
        summary = {"prefix": api_key.prefix, "tenant": api_key.tenant.slug, "name": api_key.name}
        if api_key.revoked_at is not None:
            return {**summary, "changed": 0}
        with self.writing():
            apikey_revoke(api_key=api_key, actor=self.actor)
        return {**summary, "changed": 1}
