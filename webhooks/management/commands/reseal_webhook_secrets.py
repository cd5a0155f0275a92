"""Re-encrypt every webhook signing secret with the current TOKEN_ENCRYPTION_KEY."""

from __future__ import annotations

from agentapi_admin.command import EXIT_FAILED, OperationCommand
from tenants import crypto
from webhooks.services.endpoints import webhook_secrets_reseal


class Command(OperationCommand):
    help = (
        "Re-encrypt every webhook signing secret with the current TOKEN_ENCRYPTION_KEY (the secrets themselves "
        "do not change, receivers notice nothing). Run it with rotate_encryption_key, before the old key leaves "
        "TOKEN_ENCRYPTION_KEYS_OLD; rerunning is safe. Exits 1 naming the endpoints whose secret no configured "
        "key opens."
    )
    lock_name = "reseal_webhook_secrets"

    def run(self, **options) -> dict:
        report = webhook_secrets_reseal(dry_run=self.dry_run)
        summary = {
            "key_id": crypto.current_key_id(),
            "resealed": report.resealed,
            "would_reseal": report.would_reseal,
            "already_current": report.already_current,
            "undecryptable": len(report.undecryptable),
        }
        if report.undecryptable:
            summary["exit_code"] = EXIT_FAILED
            summary["error"] = (
                f"{len(report.undecryptable)} signing secret(s) could not be decrypted: "
                f"{'; '.join(report.undecryptable)}. Add the key that sealed them to TOKEN_ENCRYPTION_KEYS_OLD and "
                "rerun, or rotate those endpoints' secrets (their receivers need the new one)."
            )
        return summary
