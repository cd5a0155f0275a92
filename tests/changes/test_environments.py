"""Change requests in environments: overrides, toggles and resets name one; a promotion is a change request."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from changes.exceptions import InvalidChange, SelfApproval
from changes.models import ChangeRequest
from changes.selectors import change_diff
from changes.services import change_approve, change_request_create, changes_apply_due
from tenants.approvals import approval_request
from tenants.exceptions import ApprovalRequired
from tenants.models import PRODUCTION, OwnerToggle, TenantFlag
from tenants.services.environments import environment_create, environment_diff, environment_promote
from tenants.services.flags import flag_owner_toggle, flag_set_override
from tests.changes.conftest import make_staff_with

pytestmark = pytest.mark.django_db

State = ChangeRequest.State


def later(minutes: int = 10):
    return timezone.now() + timedelta(minutes=minutes)


@pytest.fixture
def staging(cast):
    return environment_create(tenant=cast.tenant, key="staging", name="Staging", actor=None)


def create(cast, operation, params, **kwargs):
    kwargs.setdefault("author", cast.author)
    return change_request_create(operation=operation, params=params, **kwargs)


def override(cast, flag, environment=PRODUCTION):
    return TenantFlag.objects.filter(tenant=cast.tenant, flag=flag, environment=environment).first()


# ------------------------------------------------------------------ overrides, toggles, resets
def test_an_override_change_names_its_environment_and_reverts_there(cast, staging):
    flag_set_override(tenant=cast.tenant, flag=cast.flag, enabled=False, actor=None)  # production's own
    change = create(
        cast,
        "flag.set_override",
        {"flag": "beta", "tenant": "acme", "environment": "staging", "enabled": True, "rollout_percent": 20},
        apply_at=later(10),
        revert_at=later(20),
    )
    assert change.summary == "Override “beta” for acme in staging: on at 20 %"
    changes_apply_due(now=later(11))
    assert (override(cast, cast.flag, "staging").enabled, override(cast, cast.flag, "staging").rollout_percent) == (
        True,
        20,
    )
    assert override(cast, cast.flag).enabled is False, "production's override is untouched"
    change.refresh_from_db()
    assert change.before is None
    assert change.inverse == {
        "operation": "flag.clear_override",
        "params": {"flag": "beta", "tenant": "acme", "environment": "staging"},
    }
    assert changes_apply_due(now=later(21)).reverted == 1
    assert override(cast, cast.flag, "staging") is None and override(cast, cast.flag).enabled is False


def test_the_state_and_inverse_read_the_environment_of_the_change(cast, staging):
    flag_set_override(tenant=cast.tenant, flag=cast.flag, enabled=True, rollout_percent=30, actor=None)
    flag_set_override(
        tenant=cast.tenant, flag=cast.flag, enabled=False, rollout_percent=100, environment="staging", actor=None
    )
    change = create(cast, "flag.clear_override", {"flag": "beta", "tenant": "acme", "environment": "staging"})
    assert change.state == State.APPLIED and change.summary == "Clear the override “beta” for acme in staging"
    before = {"enabled": False, "rollout_percent": 100, "variant": "", "value": None, "owner_variants": []}
    assert change.before == before
    assert change.inverse == {
        "operation": "flag.set_override",
        "params": {"flag": "beta", "tenant": "acme", "environment": "staging", **before},
    }
    assert override(cast, cast.flag, "staging") is None and override(cast, cast.flag).rollout_percent == 30


def test_production_changes_read_as_before(cast, staging):
    change = create(cast, "flag.set_override", {"flag": "beta", "tenant": "acme", "enabled": True})
    assert change.summary == "Override “beta” for acme: on at 100 %"
    assert change.inverse == {"operation": "flag.clear_override", "params": {"flag": "beta", "tenant": "acme"}}
    assert override(cast, cast.flag).environment == PRODUCTION


def test_owner_toggles_and_resets_name_their_environment(cast, staging):
    flag_owner_toggle(tenant=cast.tenant, flag=cast.editable, enabled=True, actor=cast.owner)
    change = create(
        cast,
        "flag.owner_toggle",
        {"flag": "new-ui", "tenant": "acme", "environment": "staging", "enabled": False},
        author=cast.owner,
    )
    assert change.summary == "Turn “new-ui” for acme in staging off (owner toggle)"
    assert change.inverse == {
        "operation": "flag.owner_reset",
        "params": {"flag": "new-ui", "tenant": "acme", "environment": "staging"},
    }
    toggles = dict(OwnerToggle.objects.filter(flag=cast.editable).values_list("environment", "enabled"))
    assert toggles == {PRODUCTION: True, "staging": False}

    reset = create(cast, "flag.owner_reset", {"flag": "new-ui", "tenant": "acme", "environment": "staging"})
    assert reset.summary == "Reset the owner's toggle of “new-ui” for acme in staging"
    assert reset.before == {"enabled": False}
    assert reset.inverse == {
        "operation": "flag.owner_toggle",
        "params": {"flag": "new-ui", "tenant": "acme", "environment": "staging", "enabled": False, "on_behalf": True},
    }
    assert list(OwnerToggle.objects.values_list("environment", flat=True)) == [PRODUCTION]


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("flag.set_override", {"flag": "beta", "tenant": "acme", "enabled": True, "environment": "qa"}),
        ("flag.set_override", {"flag": "beta", "tenant": "acme", "enabled": True, "environment": 7}),
        ("flag.clear_override", {"flag": "beta", "tenant": "acme", "environment": "qa"}),
        ("flag.owner_reset", {"flag": "new-ui", "tenant": "acme", "environment": ["staging"]}),
        ("flag.owner_toggle", {"flag": "new-ui", "tenant": "acme", "enabled": True, "environment": "qa"}),
    ],
)
def test_an_unknown_environment_is_refused_naming_the_field(cast, staging, operation, params):
    author = cast.owner if operation == "flag.owner_toggle" else cast.author
    with pytest.raises(InvalidChange) as excinfo:
        create(cast, operation, params, author=author, apply_at=later())
    assert excinfo.value.field == "environment", excinfo.value.message
    assert not ChangeRequest.objects.exists()


# ------------------------------------------------------------------ promotion
def promote_params(**extra):
    return {"tenant": "acme", "source": "staging", "target": "production", **extra}


def test_a_promotion_of_plain_flags_applies_at_once_as_one_audited_action(cast, staging):
    flag_set_override(tenant=cast.tenant, flag=cast.flag, enabled=True, environment="staging", actor=None)
    change = create(cast, "environment.promote", promote_params())
    assert change.summary == "Promote staging → production for acme (1 change)"
    assert change.state == State.APPLIED and not change.requires_approval
    assert change.tenant == cast.tenant and change.flag_key == "beta"
    assert override(cast, cast.flag).enabled is True
    promote = AuditEvent.objects.get(action=AuditAction.ENVIRONMENT_PROMOTE)
    assert promote.actor_label == "alice" and f"[via change request #{change.pk}" in promote.reason
    assert change.before == {"overrides": {}, "owner_toggles": {}}
    # The before/after view: the target's layers as they were, and the source's.
    diff = change_diff(change)
    assert [(row.name, row.before, row.after) for row in diff.rows] == [
        (
            "overrides",
            {},
            {"beta": {"enabled": True, "rollout_percent": 100, "variant": "", "value": None, "owner_variants": []}},
        ),
        ("owner_toggles", {}, {}),
    ]


def test_a_promotion_touching_a_guarded_flag_is_approved_by_another_user_and_applied_by_run_maintenance(cast, staging):
    flag_set_override(
        tenant=cast.tenant, flag=cast.guarded, enabled=True, environment="staging", actor=None, approved=True
    )
    past = timezone.now() - timedelta(hours=1)
    change = change_request_create(
        operation="environment.promote",
        params=promote_params(),
        author=cast.author,
        apply_at=past + timedelta(minutes=5),
        now=past,
    )
    assert change.state == State.PENDING_APPROVAL and change.requires_approval
    assert change.flag_key == "payments"
    assert change.summary == "Promote staging → production for acme (1 change)"
    assert override(cast, cast.guarded) is None, "nothing applies before approval"
    with pytest.raises(SelfApproval):
        change_approve(change=change, actor=cast.author)
    change = change_approve(change=change, actor=cast.approver, now=past + timedelta(minutes=1))
    assert change.state == State.APPROVED

    # Staging moves on after approval: the promotion applies the diff of its time, not the reviewed one.
    flag_set_override(
        tenant=cast.tenant, flag=cast.flag, enabled=True, rollout_percent=40, environment="staging", actor=None
    )
    out = StringIO()
    call_command("run_maintenance", "--once", "--json", stdout=out)
    summaries = [json.loads(line) for line in out.getvalue().splitlines()]
    applied = next(s for s in summaries if s["command"] == "apply_changes")
    assert applied["changes_applied"] == 1 and applied["changes_failed"] == 0

    change.refresh_from_db()
    assert change.state == State.APPLIED and change.approved_by == cast.approver
    assert override(cast, cast.guarded).enabled is True
    assert override(cast, cast.flag).rollout_percent == 40
    assert environment_diff(tenant=cast.tenant, source="staging", target=PRODUCTION).changes == ()
    promote = AuditEvent.objects.get(action=AuditAction.ENVIRONMENT_PROMOTE)
    assert promote.actor_label == "alice"
    assert f"change request #{change.pk}, scheduled by alice, approved by bob" in promote.reason
    assert set(promote.after) == {"overrides.beta", "overrides.payments"}


def test_a_refused_direct_promotion_becomes_a_change_request(cast, staging):
    flag_set_override(
        tenant=cast.tenant, flag=cast.guarded, enabled=True, environment="staging", actor=None, approved=True
    )
    diff = environment_diff(tenant=cast.tenant, source="staging", target=PRODUCTION)
    with pytest.raises(ApprovalRequired) as excinfo:
        environment_promote(tenant=cast.tenant, source="staging", target=PRODUCTION, digest=diff.digest, actor=None)
    change = approval_request(excinfo.value, actor=cast.author)
    assert change.operation == "environment.promote" and change.state == State.PENDING_APPROVAL
    assert change.params == {**promote_params(), "layers": ["overrides", "owner_toggles"], "digest": diff.digest}
    assert change_approve(change=change, actor=cast.approver).state == State.APPLIED
    assert override(cast, cast.guarded).enabled is True


def test_an_approved_promotion_applies_the_reviewed_diff_or_fails(cast, staging):
    flag_set_override(
        tenant=cast.tenant, flag=cast.guarded, enabled=True, environment="staging", actor=None, approved=True
    )
    diff = environment_diff(tenant=cast.tenant, source="staging", target=PRODUCTION)
    with pytest.raises(ApprovalRequired) as excinfo:
        environment_promote(tenant=cast.tenant, source="staging", target=PRODUCTION, digest=diff.digest, actor=None)
    change = approval_request(excinfo.value, actor=cast.author)
    # Staging moves on after the review: what the approver would approve is not what was reviewed.
    flag_set_override(tenant=cast.tenant, flag=cast.flag, enabled=True, environment="staging", actor=None)
    assert change_approve(change=change, actor=cast.approver).state == State.FAILED
    assert override(cast, cast.guarded) is None and override(cast, cast.flag) is None


def test_a_promotion_of_one_layer_leaves_the_other(cast, staging):
    flag_set_override(tenant=cast.tenant, flag=cast.flag, enabled=True, environment="staging", actor=None)
    flag_owner_toggle(tenant=cast.tenant, flag=cast.editable, enabled=False, environment="staging", actor=cast.owner)
    change = create(cast, "environment.promote", promote_params(layers=["owner_toggles"]))
    assert change.summary == "Promote staging → production for acme (1 change, owner toggles)"
    assert override(cast, cast.flag) is None
    assert OwnerToggle.objects.get(tenant=cast.tenant, environment=PRODUCTION).enabled is False


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tenant": "nope", "source": "staging", "target": "production"}, "tenant"),
        (promote_params(source="qa"), "source"),
        (promote_params(target="qa"), "target"),
        (promote_params(target="staging"), "target"),
        (promote_params(layers=["rules"]), "layers"),
        (promote_params(layers="overrides"), "layers"),
        ({"tenant": "acme", "target": "production"}, "source"),
        (promote_params(flag="beta"), "flag"),
    ],
)
def test_bad_promotions_are_refused_naming_the_field(cast, staging, params, field):
    with pytest.raises(InvalidChange) as excinfo:
        create(cast, "environment.promote", params, apply_at=later())
    assert excinfo.value.field == field, excinfo.value.message
    assert not ChangeRequest.objects.exists()


def test_a_promotion_is_not_put_back_by_a_revert(cast, staging):
    with pytest.raises(InvalidChange) as excinfo:
        create(cast, "environment.promote", promote_params(), apply_at=later(10), revert_at=later(20))
    assert excinfo.value.field == "revert_at" and "promote" in excinfo.value.message


def test_a_promotion_needs_the_permissions_of_what_it_changes(cast, staging):
    flags_only = make_staff_with("carol", "tenants.change_flag")
    with pytest.raises(PermissionDenied, match=r"tenants\.change_tenant"):
        create(cast, "environment.promote", promote_params(), author=flags_only)
    assert create(cast, "environment.promote", promote_params(layers=["overrides"]), author=flags_only)


def test_a_scheduled_promotion_that_now_touches_a_guarded_flag_fails_instead_of_skipping_approval(cast, staging):
    flag_set_override(tenant=cast.tenant, flag=cast.flag, enabled=True, environment="staging", actor=None)
    change = create(cast, "environment.promote", promote_params(), apply_at=later(10))
    assert change.state == State.SCHEDULED and not change.requires_approval
    flag_set_override(
        tenant=cast.tenant, flag=cast.guarded, enabled=True, environment="staging", actor=None, approved=True
    )
    assert changes_apply_due(now=later(11)).failed == 1
    change.refresh_from_db()
    assert change.state == State.FAILED and "payments requires approval now" in change.last_error
    assert override(cast, cast.flag) is None and override(cast, cast.guarded) is None
