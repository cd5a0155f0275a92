"""Create the demo users (idempotent); see PRODUCT.md for the contract."""

import json

from django.core.management.base import BaseCommand

from tenants.services.demo import demo_seed


class Command(BaseCommand):
    help = "Create demo users admin, acme-owner and globex-owner (password from DEMO_PASSWORD). Safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the created logins as JSON.")

    def handle(self, *args, **options):
        result = demo_seed()
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write("Demo logins (password from DEMO_PASSWORD):")
        for username, info in result["users"].items():
            self.stdout.write(f"  {username:<14} {info['role']}")
