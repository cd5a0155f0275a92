"""Create the demo users, tenants, flags and API keys (idempotent); see PRODUCT.md for the contract."""

import json

from django.core.management.base import BaseCommand, CommandError

from tenants.exceptions import TenantsError
from tenants.services.demo import demo_seed


class Command(BaseCommand):
    help = (
        "Create demo users admin, acme-owner and globex-owner (password from DEMO_PASSWORD), plan 'standard', "
        "tenants acme and globex with their owners, demo flags and one API key per tenant. Safe to run twice: "
        "existing rows are kept and the same working API keys are printed again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print logins and API keys as JSON.")

    def handle(self, *args, **options):
        try:
            result = demo_seed()
        except (TenantsError, RuntimeError) as exc:
            raise CommandError(f"seed_demo failed: {exc}") from exc
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write("Demo logins (password from DEMO_PASSWORD):")
        for username, info in result["users"].items():
            self.stdout.write(f"  {username:<14} {info['role']}")
        self.stdout.write("Demo API keys (curl -H 'Authorization: Bearer <key>' /api/v1/bootstrap):")
        for slug, secret in result["api_keys"].items():
            self.stdout.write(f"  {slug:<14} {secret}")
