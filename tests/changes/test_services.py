"""Change requests: created only if they could apply, approved by someone else, applied and reverted once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from changes.exceptions import InvalidChange, SelfApproval, TransitionRefused
from changes.models import ChangeRequest
from changes.services import change_approve, change_cancel, change_reject, change_request_create, changes_apply_due
from tenants.exceptions import ApprovalRequired
from tenants.models import Flag, OwnerToggle, TenantFlag
from tenants.services.flags import flag_clear_override, flag_owner_toggle, flag_set_override, flag_update

pytestmark = pytest.mark.django_db

State = ChangeRequest.State


def later(minutes: int = 10):
    return timezone.now() + timedelta(minutes=minutes)


def create(cast, operation="flag.update", params=None, **kwargs):
    params = params if params is not None else {"flag": "beta", "fields": {"default": True}}
    kwargs.setdefault("author", cast.author)
    return change_request_create(operation=operation, params=params, **kwargs)


# ------------------------------------------------------------------ create
def test_a_change_without_a_time_to_a_plain_flag_applies_at_once(cast):
    change = create(cast)
    assert change.state == State.APPLIED and change.applied_at is not None
    assert Flag.objects.get(key="beta").default is True
    assert change.before == {"default": False}
    assert change.inverse == {"operation": "flag.update", "params": {"flag": "beta", "fields": {"default": False}}}
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_label", "reason"))[-3:]
    assert [a for a, _, _ in actions] == [
        AuditAction.CHANGE_REQUEST_CREATE,
        AuditAction.FLAG_UPDATE,
        AuditAction.CHANGE_REQUEST_APPLY,
    ]
    assert actions[1][1] == "alice" and f"[via change request #{change.pk}, scheduled by alice]" in actions[1][2]


def test_a_scheduled_change_waits_for_its_time(cast):
    change = create(cast, apply_at=later())
    assert change.state == State.SCHEDULED
    assert Flag.objects.get(key="beta").default is False
    assert changes_apply_due().applied == 0
    report = changes_apply_due(now=later(11))
    assert report.applied == 1
    change.refresh_from_db()
    assert change.state == State.APPLIED and Flag.objects.get(key="beta").default is True
    assert changes_apply_due(now=later(12)).applied == 0, "applied once, never again"


@pytest.mark.parametrize(
    ("operation", "params", "field"),
    [
        ("flag.nope", {"flag": "beta"}, "operation"),
        ("flag.update", {"flag": "nope", "fields": {"default": True}}, "flag"),
        ("flag.update", {"flag": "beta", "fields": {}}, "fields"),
        ("flag.update", {"flag": "beta", "fields": {"key": "x"}}, "fields.key"),
        ("flag.update", {"flag": "beta", "fields": {"default": "yes"}}, "fields.default"),
        ("flag.set_override", {"flag": "beta", "tenant": "nope", "enabled": True}, "tenant"),
        ("flag.set_override", {"flag": "beta", "tenant": "acme"}, "enabled"),
        (
            "flag.set_override",
            {"flag": "beta", "tenant": "acme", "enabled": True, "rollout_percent": 101},
            "rollout_percent",
        ),
        ("flag.set_override", {"flag": "beta", "tenant": "acme", "enabled": True, "colour": 1}, "colour"),
    ],
)
def test_bad_params_are_refused_at_once_naming_the_field(cast, operation, params, field):
    with pytest.raises(InvalidChange) as excinfo:
        create(cast, operation, params, apply_at=later())
    assert excinfo.value.field == field, excinfo.value.message
    assert not ChangeRequest.objects.exists()


def test_a_schedule_in_the_past_or_a_revert_before_the_apply_is_refused(cast):
    with pytest.raises(InvalidChange, match=r"apply_at: .* is in the past") as excinfo:
        create(cast, apply_at=timezone.now() - timedelta(minutes=5))
    assert excinfo.value.field == "apply_at"
    with pytest.raises(InvalidChange, match="revert_at: must be later than apply_at"):
        create(cast, apply_at=later(10), revert_at=later(5))
    with pytest.raises(InvalidChange, match="revert_at: must be later than now"):
        create(cast, revert_at=timezone.now() - timedelta(seconds=1))
    assert not ChangeRequest.objects.exists()


def test_a_change_the_service_would_refuse_is_refused_when_scheduled_not_at_its_time(cast):
    # An owner toggle of a flag tenants may not edit: the service's refusal, now.
    with pytest.raises(InvalidChange, match="not editable by tenant owners"):
        create(cast, "flag.owner_toggle", {"flag": "beta", "tenant": "acme", "enabled": True}, author=cast.owner)
    assert not ChangeRequest.objects.exists() and not OwnerToggle.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.FLAG_OWNER_TOGGLE).exists(), "the check left no trace"


def test_the_author_needs_the_permission_of_the_change(cast):
    with pytest.raises(PermissionDenied, match=r"lacks the permission tenants\.change_flag"):
        create(cast, author=cast.viewer, apply_at=later())
    with pytest.raises(PermissionDenied, match="owner or admin"):
        create(cast, "flag.owner_toggle", {"flag": "new-ui", "tenant": "globex", "enabled": True}, author=cast.owner)


# ------------------------------------------------------------------ approval
def test_direct_changes_to_a_flag_that_requires_approval_are_refused(cast):
    guarded = cast.guarded
    with pytest.raises(ApprovalRequired) as excinfo:
        flag_update(flag=guarded, default=True, actor=cast.author)
    assert excinfo.value.operation == "flag.update"
    assert excinfo.value.params == {"flag": "payments", "fields": {"default": True}}
    with pytest.raises(ApprovalRequired) as excinfo:
        flag_set_override(tenant=cast.tenant, flag=guarded, enabled=True, rollout_percent=50, actor=cast.author)
    assert excinfo.value.params == {"flag": "payments", "tenant": "acme", "enabled": True, "rollout_percent": 50}
    flag_set_override(tenant=cast.tenant, flag=guarded, enabled=True, actor=cast.author, approved=True)
    with pytest.raises(ApprovalRequired):
        flag_clear_override(tenant=cast.tenant, flag=guarded, actor=cast.author)
    assert Flag.objects.get(key="payments").default is False and TenantFlag.objects.filter(flag=guarded).exists()


def test_owners_toggle_a_flag_that_requires_approval_without_it(cast):
    # Bounded by the platform's override already: an owner's own choice is not a platform change.
    toggle = flag_owner_toggle(tenant=cast.tenant, flag=cast.guarded, enabled=True, actor=cast.owner)
    assert toggle.enabled is True


def test_a_change_to_a_guarded_flag_waits_for_another_staff_user(cast):
    change = create(cast, params={"flag": "payments", "fields": {"default": True}})
    assert change.state == State.PENDING_APPROVAL and change.requires_approval
    assert Flag.objects.get(key="payments").default is False
    with pytest.raises(SelfApproval, match="another staff user must approve it"):
        change_approve(change=change, actor=cast.author)
    assert ChangeRequest.objects.get(pk=change.pk).state == State.PENDING_APPROVAL
    with pytest.raises(PermissionDenied, match=r"changes\.approve_changerequest"):
        change_approve(change=change, actor=cast.viewer)
    change = change_approve(change=change, actor=cast.approver)
    assert change.state == State.APPLIED and change.approved_by == cast.approver
    assert Flag.objects.get(key="payments").default is True
    update = AuditEvent.objects.filter(action=AuditAction.FLAG_UPDATE, object_id=str(cast.guarded.pk)).latest("id")
    assert update.actor_label == "alice"
    assert f"change request #{change.pk}, scheduled by alice, approved by bob" in update.reason
    assert AuditEvent.objects.filter(action=AuditAction.CHANGE_REQUEST_APPROVE, actor_label="bob").count() == 1


def test_an_approved_change_with_a_time_waits_for_it(cast):
    change = create(cast, params={"flag": "payments", "fields": {"default": True}}, apply_at=later())
    change = change_approve(change=change, actor=cast.approver)
    assert change.state == State.APPROVED
    assert changes_apply_due(now=later(11)).applied == 1
    assert ChangeRequest.objects.get(pk=change.pk).state == State.APPLIED


def test_reject_and_cancel(cast):
    first = create(cast, params={"flag": "payments", "fields": {"default": True}})
    change_reject(change=first, actor=cast.approver, reason="not during the freeze")
    with pytest.raises(TransitionRefused, match="rejected: it cannot be approved"):
        change_approve(change=first, actor=cast.approver)
    second = create(cast, apply_at=later())
    with pytest.raises(PermissionDenied, match="Only its author"):
        change_cancel(change=second, actor=cast.viewer)
    assert change_cancel(change=second, actor=cast.author).state == State.CANCELLED
    assert changes_apply_due(now=later(60)).applied == 0
    assert Flag.objects.get(key="beta").default is False


# ------------------------------------------------------------------ revert
def test_a_revert_restores_the_state_found_just_before_applying(cast):
    change = create(
        cast,
        "flag.set_override",
        {"flag": "beta", "tenant": "acme", "enabled": True, "rollout_percent": 20},
        apply_at=later(10),
        revert_at=later(20),
    )
    flag_set_override(tenant=cast.tenant, flag=cast.flag, enabled=False, rollout_percent=100, actor=cast.author)
    changes_apply_due(now=later(11))
    assert TenantFlag.objects.values_list("enabled", "rollout_percent").get(flag=cast.flag) == (True, 20)
    assert changes_apply_due(now=later(21)).reverted == 1
    assert TenantFlag.objects.values_list("enabled", "rollout_percent").get(flag=cast.flag) == (False, 100)
    change.refresh_from_db()
    assert change.state == State.REVERTED and change.reverted_at is not None


def test_reverting_an_override_that_did_not_exist_clears_it(cast):
    create(
        cast,
        "flag.set_override",
        {"flag": "beta", "tenant": "acme", "enabled": True},
        apply_at=later(10),
        revert_at=later(20),
    )
    changes_apply_due(now=later(11))
    assert TenantFlag.objects.filter(flag=cast.flag).exists()
    changes_apply_due(now=later(21))
    assert not TenantFlag.objects.filter(flag=cast.flag).exists()


def test_an_owner_schedules_their_own_toggle_and_its_revert(cast):
    change = create(
        cast,
        "flag.owner_toggle",
        {"flag": "new-ui", "tenant": "acme", "enabled": True},
        author=cast.owner,
        apply_at=later(10),
        revert_at=later(20),
    )
    assert change.state == State.SCHEDULED and change.tenant == cast.tenant
    changes_apply_due(now=later(11))
    assert OwnerToggle.objects.get(flag=cast.editable).enabled is True
    changes_apply_due(now=later(21))
    assert not OwnerToggle.objects.filter(flag=cast.editable).exists()


def test_cancelling_an_applied_change_calls_off_its_revert_only(cast):
    change = create(cast, revert_at=later(20))
    assert change.state == State.APPLIED
    change = change_cancel(change=change, actor=cast.author)
    assert change.state == State.APPLIED and change.revert_at is None
    assert changes_apply_due(now=later(30)).reverted == 0
    assert Flag.objects.get(key="beta").default is True


# ------------------------------------------------------------------ failure
def test_a_change_that_fails_at_its_time_is_recorded_and_not_retried(cast):
    change = create(
        cast,
        "flag.owner_toggle",
        {"flag": "new-ui", "tenant": "acme", "enabled": True},
        author=cast.owner,
        apply_at=later(),
    )
    # Before its time the platform turns the flag off for acme: an owner toggle can no longer turn it on.
    flag_set_override(tenant=cast.tenant, flag=cast.editable, enabled=False, actor=cast.author)
    report = changes_apply_due(now=later(11))
    assert (report.applied, report.failed) == (0, 1)
    change.refresh_from_db()
    assert change.state == State.FAILED and "turned “new-ui” off" in change.last_error
    assert not OwnerToggle.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.CHANGE_REQUEST_FAIL).count() == 1
    assert changes_apply_due(now=later(12)).failed == 0, "a failure is not retried"


def test_not_even_a_superuser_approves_their_own_request(cast, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-123456789")
    change = create(cast, params={"flag": "payments", "fields": {"default": True}}, author=root)
    with pytest.raises(SelfApproval):
        change_approve(change=change, actor=root)
    assert change_approve(change=change, actor=cast.approver).state == State.APPLIED
