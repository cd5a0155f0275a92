"""Print the flags that look stale: one answer for every tenant for N days, or asked for by no request."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from tenants.flagreport import flags_staleness


class Command(BaseCommand):
    help = (
        "List flags whose answer has been the same for every tenant (value and reason class, by no user or "
        "context) with no change to the flag, its overrides, owner toggles, segments or plans for --days days, "
        "and flags no request asked for in that time (asks come from flush_flag_asks). Reads the tenants' "
        "cached documents from Redis in batches; archived flags are left out."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=30, help="How far back to look (default 30).")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument("--all", action="store_true", help="List every live flag, stale or not.")

    def handle(self, *args, **options) -> None:
        days = options["days"]
        if not 1 <= days <= 3650:
            raise CommandError("--days must be a whole number from 1 to 3650, e.g. --days 30.", returncode=64)
        report = flags_staleness(days)
        flags = report.flags if options["all"] else report.stale
        if options["format"] == "json":
            document = {
                "days": days,
                "since": report.since.isoformat(),
                "counted_since": report.counted_since.isoformat() if report.counted_since else None,
                "flags": [flag.as_dict() for flag in flags],
            }
            self.stdout.write(json.dumps(document, sort_keys=True))
            return
        if not flags:
            self.stdout.write(f"flags_stale: no stale flags over the last {days} days")
            return
        for flag in flags:
            why = ", ".join(flag.stale_because) or "not stale"
            answer = json.dumps(flag.answer, sort_keys=True) if flag.answer else flag.varied_by or "-"
            self.stdout.write(f"{flag.key}\t{why}\tanswer={answer}\tasks={flag.asks}\tasked_all={flag.asked_all}")
