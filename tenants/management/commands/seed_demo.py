"""Create the demo users, tenants, flags and API keys (idempotent), and print the logins and keys."""

from django.core.management.base import CommandError

from agentapi_admin.command import OperationCommand
from tenants.exceptions import TenantsError
from tenants.services.demo import demo_seed


class Command(OperationCommand):
    help = (
        "Create demo users admin, acme-owner and globex-owner (password from DEMO_PASSWORD), plan 'standard', "
        "tenants acme and globex with their owners, demo flags and one API key per tenant. Safe to run twice: "
        "existing rows are kept and the same working API keys are printed again."
    )
    # Idempotent database writes only: no dry run, and no Redis lock (it runs before Redis is needed).
    supports_dry_run = False

    def run(self, **options) -> dict:
        try:
            return demo_seed()
        except (TenantsError, RuntimeError) as exc:
            raise CommandError(f"seed_demo failed: {exc}") from exc

    def emit(self, summary: dict) -> None:
        """Print the logins and API keys (JSON with --json)."""
        if self.as_json:
            return super().emit(summary)
        password = next(iter(summary["users"].values()))["password"]
        self.stdout.write(f"Demo logins (password {password}, from DEMO_PASSWORD):")
        for username, info in summary["users"].items():
            self.stdout.write(f"  {username:<14} {info['role']}")
        self.stdout.write("Demo API keys (curl -H 'Authorization: Bearer <key>' /api/v1/bootstrap):")
        for slug, secret in summary["api_keys"].items():
            self.stdout.write(f"  {slug:<14} {secret}")
        return None
