"""Create a staff API token for the admin API; its secret is printed once and never stored."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from agentapi_admin.command import OperationCommand
from agentapi_admin.envconfig import DURATION_HELP, parse_duration
from automation.exceptions import TokenError
from automation.scopes import SCOPES
from automation.services import staff_token_create


class Command(OperationCommand):
    help = (
        "Create a staff API token for --user USERNAME (an active staff user) with --scopes "
        f"(comma-separated: {', '.join(SCOPES)}) and an optional --expires duration. Each scope needs the "
        "user's own permissions, checked again on every request. The secret is printed once: store it now."
    )

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, metavar="USERNAME", help="The staff user the token acts as.")
        parser.add_argument("--scopes", required=True, metavar="SCOPE,…", help=f"Any of {', '.join(SCOPES)}.")
        parser.add_argument("--name", default="", help="What the token is for, e.g. the CI job (default: cli).")
        parser.add_argument("--expires", metavar="DURATION", help="Lifetime, e.g. 30d or 12h; default: never.")

    def run(self, **options) -> dict:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"There is no user {options['user']!r}: give --user the username of a staff account.")
        expires_at = None
        if options["expires"] is not None:
            seconds = parse_duration(options["expires"])
            if seconds is None or seconds <= 0:
                raise CommandError(
                    f"--expires {options['expires']!r} is not a positive duration: give e.g. 30d or {DURATION_HELP}."
                )
            expires_at = timezone.now() + timedelta(seconds=seconds)
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        try:
            with transaction.atomic():
                token, secret = staff_token_create(
                    user=user,
                    name=options["name"] or "cli",
                    scopes=scopes,
                    expires_at=expires_at,
                    actor=None,
                    reason="manage.py admin_token_create",
                )
                if self.dry_run:
                    transaction.set_rollback(True)
        except TokenError as exc:
            option = {"name": "--name", "scopes": "--scopes", "user": "--user", "expires_at": "--expires"}
            raise CommandError(f"{exc.message} ({option.get(exc.field or '', '--' + str(exc.field))})") from exc
        summary = {
            "user": user.get_username(),
            "prefix": token.prefix,
            "scopes": token.scopes,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        }
        if not self.dry_run:
            summary["secret"] = secret
        return summary

    def emit(self, summary: dict) -> None:
        super().emit(summary)
        if not self.as_json and "secret" in summary:
            self.stdout.write(f"Secret (shown once, not stored; keep it now): {summary['secret']}")
