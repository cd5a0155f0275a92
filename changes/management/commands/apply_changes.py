"""Apply the change requests that are due, revert those whose revert time has come, report what waits."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from agentapi_admin.command import OperationCommand
from changes.models import ChangeRequest
from changes.services import changes_apply_due


class Command(OperationCommand):
    help = (
        "Apply every scheduled or approved change request whose apply time has come and revert every applied "
        "one whose revert time has, each as its author and in its own transaction. Safe beside a second copy "
        "(another replica's run_maintenance): each request is locked with SKIP LOCKED and applies exactly once. "
        "A failure is recorded on the request (state failed, last_error), never retried. run_maintenance runs "
        "it every round. With --dry-run, only reports what is due."
    )

    def run(self, **options) -> dict:
        now = timezone.now()
        summary: dict = {}
        if not self.dry_run:
            report = changes_apply_due(now=now)
            summary.update(
                changes_applied=report.applied, changes_reverted=report.reverted, changes_failed=report.failed
            )
        due = ChangeRequest.objects.filter(
            Q(state__in=ChangeRequest.DUE_STATES, apply_at__lte=now)
            | Q(state=ChangeRequest.State.APPLIED, revert_at__lte=now, reverted_at__isnull=True)
        )
        waiting = ChangeRequest.objects.filter(state__in=ChangeRequest.OPEN_STATES)
        summary.update(changes_due=due.count(), changes_open=waiting.count())
        return summary
