"""Add an environment to a tenant (within its plan's bound), audited as the operator."""

from __future__ import annotations

from tenants.management.base import TenantWriteCommand
from tenants.models import Environment
from tenants.services.environments import environment_create


class Command(TenantWriteCommand):
    help = (
        "Add the environment --key KEY (e.g. staging) to --tenant SLUG, within its plan's max_environments "
        "(production included). Its overrides, owner toggles and API keys are its own: set them with "
        "flag_set --environment and apikey_issue --environment, and promote them with environment_promote. "
        "An environment that exists is left as it is."
    )
    # An environment is part of its tenant: the admin's change_tenant, as the admin API asks.
    permission = "tenants.change_tenant"

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, allow_all=False, required=True)
        parser.add_argument(
            "--key", required=True, help="1-32 characters a-z, 0-9, '-', starting with a letter: staging."
        )
        parser.add_argument("--name", default="", help="Display name, e.g. Staging.")

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        summary = {"tenant": tenant.slug, "environment": options["key"]}
        if Environment.objects.filter(tenant=tenant, key=options["key"]).exists():
            return {**summary, "changed": 0}
        with self.writing():
            environment_create(tenant=tenant, key=options["key"], name=options["name"], actor=self.actor)
        return {**summary, "changed": 1}
