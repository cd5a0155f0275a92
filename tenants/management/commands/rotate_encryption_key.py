"""Re-encrypt every stored secret with the current TOKEN_ENCRYPTION_KEY."""

from __future__ import annotations

from agentapi_admin.command import EXIT_FAILED, OperationCommand, UsageError
from tenants import crypto
from tenants.services.secrets import secrets_rotate


class Command(OperationCommand):
    help = (
        "Re-encrypt every tenant's upstream credentials with the current TOKEN_ENCRYPTION_KEY (audited per "
        "tenant). Put the previous key in TOKEN_ENCRYPTION_KEYS_OLD first. Batches commit one by one, so an "
        "interrupted run can simply be rerun: rows already on the current key are skipped. Exits 1 naming the "
        "tenants whose secret no configured key opens."
    )
    lock_name = "rotate_encryption_key"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=100, help="Rows per transaction (default 100).")

    def run(self, **options) -> dict:
        if not 1 <= options["batch_size"] <= 10_000:
            raise UsageError("--batch-size must be a whole number from 1 to 10000, e.g. --batch-size 100.")
        with self.ticking("secret batches") as tick:
            report = secrets_rotate(actor=None, batch_size=options["batch_size"], dry_run=self.dry_run, tick=tick)
        summary = {
            "key_id": crypto.current_key_id(),
            "rotated": report.rotated,
            "already_current": report.already_current,
            "undecryptable": len(report.undecryptable),
        }
        if report.undecryptable:
            summary["undecryptable_tenants"] = report.undecryptable
            summary["exit_code"] = EXIT_FAILED
            summary["error"] = (
                f"{len(report.undecryptable)} secret(s) could not be decrypted: {'; '.join(report.undecryptable)}. "
                "Add the key that sealed them to TOKEN_ENCRYPTION_KEYS_OLD and rerun, or set new credentials "
                "for those tenants."
            )
        return summary
