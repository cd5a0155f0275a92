"""Operator commands: flag_set refuses a flag that requires approval unless --request; apply_changes reports."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from changes.models import ChangeRequest
from changes.services import change_request_create
from tenants.models import Flag, TenantFlag
from tests.tenants.factories import make_staff

pytestmark = pytest.mark.django_db


def run_json(*argv: str) -> dict:
    out = StringIO()
    call_command(*argv, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_flag_set_refuses_a_guarded_flag_and_names_the_way(cast):
    with pytest.raises(CommandError, match=r"requires approval.*Rerun with --request"):
        call_command("flag_set", "--flag", "payments", "--default", "on", "--actor", "alice")
    assert Flag.objects.get(key="payments").default is False and not ChangeRequest.objects.exists()


def test_flag_set_request_creates_a_change_request_for_approval(cast):
    summary = run_json("flag_set", "--flag", "payments", "--tenant", "acme", "--on", "--request", "--actor", "alice")
    change = ChangeRequest.objects.get()
    assert summary["change_request"] == change.pk and summary["changed"] == 0
    assert summary["change_request_state"] == "pending_approval"
    assert change.author == cast.author and change.params["tenant"] == "acme"
    assert not TenantFlag.objects.exists()


def test_flag_set_request_dry_run_keeps_nothing(cast):
    run_json("flag_set", "--flag", "payments", "--default", "on", "--request", "--dry-run", "--actor", "alice")
    assert not ChangeRequest.objects.exists()


def test_flag_set_on_a_plain_flag_is_unchanged_by_approvals(cast):
    assert run_json("flag_set", "--flag", "beta", "--default", "on", "--actor", "alice")["changed"] == 1
    assert Flag.objects.get(key="beta").default is True


def test_apply_changes_applies_due_requests_and_reports(cast):
    past = timezone.now() - timedelta(hours=1)
    change_request_create(
        operation="flag.update",
        params={"flag": "beta", "fields": {"default": True}},
        author=cast.author,
        apply_at=past + timedelta(minutes=5),
        now=past,
    )
    assert run_json("apply_changes", "--dry-run")["changes_due"] == 1
    assert Flag.objects.get(key="beta").default is False
    summary = run_json("apply_changes")
    assert (summary["changes_applied"], summary["changes_failed"], summary["changes_due"]) == (1, 0, 0)
    assert Flag.objects.get(key="beta").default is True


def test_flags_import_refuses_to_change_a_guarded_flag_naming_it(cast, tmp_path):
    make_staff("root")
    out = StringIO()
    call_command("flags_export", "--format", "json", stdout=out)
    document = json.loads(out.getvalue())
    document["flags"]["payments"]["default"] = True
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="“payments” requires approval"):
        call_command("flags_import", str(path), "--actor", "root")
    assert Flag.objects.get(key="payments").default is False
