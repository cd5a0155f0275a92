"""Apply a flags document: show the diff, then make it in one audited transaction."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.core.management.base import CommandError

from tenants.management.base import TenantWriteCommand
from tenants.services.flagsdoc import (
    IMPORT_PERMISSIONS,
    flags_document_apply,
    flags_document_parse,
    flags_document_plan,
)


def read_document(path: str):
    """Return the parsed YAML or JSON content of `path` (JSON is YAML), or raise a CommandError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CommandError(f"{path} is not valid YAML or JSON{where}: {getattr(exc, 'problem', exc)}.") from exc


class Command(TenantWriteCommand):
    help = (
        "Make the database match FILE (a flags_export document, YAML or JSON): print the diff, then apply it "
        "in one transaction through the services, one audit row per change as --actor. Idempotent: a second "
        "run changes nothing. Without --prune, what the file leaves out is kept; with it, flags are archived, "
        "segments and environments deleted and overrides cleared. Tenants and plans are never deleted. "
        "Version 1 files are read too."
    )
    permission = IMPORT_PERMISSIONS

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("file", metavar="FILE", help="The document to apply.")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Archive flags, delete segments and environments, clear overrides that FILE leaves out.",
        )

    def run(self, **options) -> dict:
        data = read_document(options["file"])
        with self.writing():
            document = flags_document_parse(data)
            changes = flags_document_plan(document, prune=options["prune"])
            if changes:
                flags_document_apply(document, actor=self.actor, prune=options["prune"])
        return {
            "changes": len(changes),
            "applied": bool(changes) and not self.dry_run,
            "diff": [change.line() for change in changes],
        }

    def emit(self, summary: dict) -> None:
        if self.as_json:
            super().emit(summary)
            return
        for line in summary["diff"]:
            self.stdout.write(line)
        if not summary["changes"]:
            self.stdout.write("flags_import: no changes; the database already matches the file.")
        elif self.dry_run:
            self.stdout.write(f"flags_import: {summary['changes']} changes (dry run: nothing changed).")
        else:
            self.stdout.write(f"flags_import: applied {summary['changes']} changes.")
