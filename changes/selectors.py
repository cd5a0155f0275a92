"""Reads for change requests: the before/after of one request, the requests touching a tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from changes.exceptions import ChangesError
from changes.models import ChangeRequest
from changes.operations import operation_named


class _Absent:
    """No row, so no value (an override or owner choice that does not exist)."""

    def __repr__(self) -> str:
        return "(none)"


ABSENT = _Absent()


@dataclass(frozen=True)
class DiffRow:
    """One value a change touches: what it was (or is now, before applying) and what the change makes it."""

    name: str
    before: Any
    after: Any

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class ChangeDiff:
    """The values of a change: `before_label` says whether `before` was recorded when it applied or is read now."""

    rows: list[DiffRow]
    before_label: str
    before_exists: bool
    after_exists: bool


def change_diff(change: ChangeRequest) -> ChangeDiff:
    """Return the before/after of a request: the state it found when it applied, else the state right now."""
    operation = operation_named(change.operation)
    if change.applied_at is not None:
        before, label = change.before, "before (when it applied)"
    else:
        try:
            before = operation.state(operation.resolve(change.params), change.params)
        except ChangesError:
            before = None
        label = "now"
    after = operation.outcome(change.params)
    names = sorted(set(before or {}) | set(after or {}))
    rows = [
        DiffRow(
            name,
            (before or {}).get(name, ABSENT) if before is not None else ABSENT,
            (after or {}).get(name, ABSENT) if after is not None else ABSENT,
        )
        for name in names
    ]
    return ChangeDiff(rows=rows, before_label=label, before_exists=before is not None, after_exists=after is not None)


def changes_for_tenant(tenant) -> QuerySet[ChangeRequest]:
    """Return the requests that change this tenant's overrides or owner toggles, newest first."""
    return ChangeRequest.objects.filter(tenant=tenant).select_related("author", "approved_by").order_by("-id")
