"""The portal: owners schedule their own toggle (and its put-back), see what is scheduled, cancel their own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from changes.models import ChangeRequest
from changes.services import change_request_create, changes_apply_due
from tenants.models import OwnerToggle
from tests.portal.conftest import build_world, client_for

pytestmark = pytest.mark.django_db

State = ChangeRequest.State


@pytest.fixture
def world(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()


def at(minutes: int) -> str:
    return (timezone.now() + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


def schedule_url(world, flag, tenant=None):
    return reverse("portal:feature_schedule", kwargs={"tenant": (tenant or world.a).slug, "flag_key": flag.key})


def changes_url(world, tenant=None):
    return reverse("portal:changes", kwargs={"tenant": (tenant or world.a).slug})


def test_an_owner_schedules_a_toggle_and_its_put_back(world):
    owner = client_for(world.a_owner)
    features = owner.get(reverse("portal:features", kwargs={"tenant": "acme"})).content.decode()
    assert schedule_url(world, world.editable) in features
    assert owner.get(schedule_url(world, world.editable)).status_code == 200
    response = owner.post(
        schedule_url(world, world.editable), {"enabled": "true", "apply_at": at(30), "revert_at": at(90)}
    )
    assert response.status_code == 302 and response["Location"] == changes_url(world)
    change = ChangeRequest.objects.get()
    assert change.state == State.SCHEDULED and change.author == world.a_owner and change.tenant == world.a
    listing = owner.get(changes_url(world)).content.decode()
    assert "Turn “new-ui” for acme on" in listing and "a-owner" in listing and "put back" in listing
    changes_apply_due(now=timezone.now() + timedelta(minutes=31))
    assert OwnerToggle.objects.get(tenant=world.a, flag=world.editable).enabled is True
    changes_apply_due(now=timezone.now() + timedelta(minutes=91))
    assert not OwnerToggle.objects.filter(tenant=world.a).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"enabled": "true", "apply_at": at(-30)}, "is in the past"),
        ({"enabled": "true", "apply_at": at(30), "revert_at": at(10)}, "must be later than apply_at"),
        ({"enabled": "true", "apply_at": "tomorrow"}, "Use a date and time"),
        ({"apply_at": at(30)}, "Say whether the feature should be on or off then"),
    ],
)
def test_a_bad_schedule_is_explained_and_nothing_is_kept(world, data, message):
    response = client_for(world.a_owner).post(schedule_url(world, world.editable), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_a_locked_flag_cannot_be_scheduled_and_members_cannot_schedule(world):
    owner = client_for(world.a_owner)
    assert owner.post(schedule_url(world, world.locked), {"enabled": "true", "apply_at": at(30)}).status_code == 403
    member = client_for(world.a_member)
    assert member.post(schedule_url(world, world.editable), {"enabled": "true", "apply_at": at(30)}).status_code == 403
    assert member.get(changes_url(world)).status_code == 403
    assert not ChangeRequest.objects.exists()


def test_platform_changes_are_listed_read_only_and_own_ones_can_be_cancelled(world, django_user_model):
    staff = django_user_model.objects.create_superuser("platform-sam", password="pw-123456789")
    platform = change_request_create(
        operation="flag.set_override",
        params={"flag": "billing-v2", "tenant": "acme", "enabled": True},
        author=staff,
        apply_at=timezone.now() + timedelta(hours=1),
    )
    owner = client_for(world.a_owner)
    owner.post(schedule_url(world, world.editable), {"enabled": "true", "apply_at": at(30)})
    own = ChangeRequest.objects.exclude(pk=platform.pk).get()
    page = owner.get(changes_url(world)).content.decode()
    assert "Override “billing-v2” for acme" in page and "The platform team" in page
    assert "platform-sam" not in page and f'value="{platform.pk}"' not in page and f'value="{own.pk}"' in page
    refused = owner.post(changes_url(world), {"change": platform.pk})
    assert refused.status_code == 403
    assert ChangeRequest.objects.get(pk=platform.pk).state == State.SCHEDULED
    assert owner.post(changes_url(world), {"change": own.pk}).status_code == 302
    assert ChangeRequest.objects.get(pk=own.pk).state == State.CANCELLED


def test_another_tenant_s_changes_are_404_and_untouched(world):
    globex = change_request_create(
        operation="flag.owner_toggle",
        params={"flag": "new-ui", "tenant": "globex", "enabled": True},
        author=world.b_owner,
        apply_at=timezone.now() + timedelta(hours=1),
    )
    owner = client_for(world.a_owner)
    assert "globex" not in owner.get(changes_url(world)).content.decode()
    assert owner.post(changes_url(world), {"change": globex.pk}).status_code == 404
    assert owner.get(changes_url(world, world.b)).status_code == 404
    assert ChangeRequest.objects.get(pk=globex.pk).state == State.SCHEDULED
