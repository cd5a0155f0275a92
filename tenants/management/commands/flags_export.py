"""Write every segment, flag, plan, tenant and override as one document (flags and tenants as code)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from tenants.services.flagsdoc import flags_document_export


def render(document: dict, fmt: str) -> str:
    """Return the document as YAML or JSON text, keys in document order."""
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


class Command(BaseCommand):
    help = (
        "Print (or write to --output FILE) every segment, flag, plan, tenant and override as one version-2 document, "
        "YAML by default, for review and for flags_import; the schema is in docs/automation.md. "
        "API keys and members are not exported."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")
        parser.add_argument("--output", metavar="FILE", help="Write the document here instead of to stdout.")

    def handle(self, *args, **options) -> None:
        text = render(flags_document_export(), options["format"])
        if not options["output"]:
            self.stdout.write(text, ending="")
            return
        try:
            Path(options["output"]).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {options['output']}: {exc.strerror}; choose another --output.") from exc
        self.stdout.write(f"flags_export: wrote {options['output']}")
