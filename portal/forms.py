"""Portal forms: they parse and explain input; the services do the writing."""

from __future__ import annotations

import datetime as dt
from typing import cast

from django import forms
from django.utils import timezone

from tenants.models import Membership

ROLE_CHOICES = Membership.Role.choices
MAX_KEY_LIFETIME_DAYS = 5 * 365


class FlagToggleForm(forms.Form):
    """Turn a tenant-editable flag on or off; risky flags also need `confirm`."""

    enabled = forms.TypedChoiceField(
        choices=[("true", "On"), ("false", "Off")],
        coerce=lambda value: value == "true",
        error_messages={
            "required": "Say whether the feature should be on or off.",
            "invalid_choice": "Choose on or off.",
        },
    )
    confirm = forms.BooleanField(required=False)
    # A typed flag's variant among those the platform opened to owners (checked by flag_owner_toggle).
    variant = forms.CharField(required=False, max_length=64)


class ApiKeyCreateForm(forms.Form):
    """Name, scopes and optional expiry of a new API key."""

    name = forms.CharField(
        max_length=100,
        help_text="What uses this key, e.g. “production replica” (up to 100 characters).",
        error_messages={"required": "Give the key a name so you can recognise it later."},
    )
    scopes = forms.MultipleChoiceField(
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope.", "invalid_choice": "“%(value)s” is not a scope."},
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        help_text="Optional. The key stops working at the start of this day (UTC). Leave empty for no expiry.",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )

    def __init__(self, *args, scope_choices, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["scopes"]).choices = scope_choices

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if any(ord(char) < 32 for char in name):
            raise forms.ValidationError("The name cannot contain control characters.")
        return name

    def clean_expires_on(self) -> dt.date | None:
        day = self.cleaned_data["expires_on"]
        if day is None:
            return None
        today = timezone.now().date()
        if day <= today:
            raise forms.ValidationError("The expiry date must be after today.")
        if day > today + dt.timedelta(days=MAX_KEY_LIFETIME_DAYS):
            raise forms.ValidationError("Keys can live at most five years; choose an earlier date.")
        return day

    def expires_at(self) -> dt.datetime | None:
        """Return the expiry as the start of the chosen UTC day."""
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


class MemberInviteForm(forms.Form):
    """Invite someone to the tenant by username or email; nothing here reveals whether an account exists."""

    identifier = forms.CharField(
        label="Username or email",
        max_length=254,
        error_messages={"required": "Enter the username or email address of the person to invite."},
    )
    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        initial=Membership.Role.MEMBER,
        error_messages={"invalid_choice": "Choose owner, admin or member."},
    )

    def clean_identifier(self):
        return self.cleaned_data["identifier"].strip()


class InvitationResponseForm(forms.Form):
    """The invitee's answer to an invitation."""

    answer = forms.ChoiceField(
        choices=[("accept", "Accept"), ("decline", "Decline")],
        error_messages={"required": "Choose accept or decline.", "invalid_choice": "Choose accept or decline."},
    )


class MemberRoleForm(forms.Form):
    """Change a member's role."""

    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        error_messages={"required": "Choose a role.", "invalid_choice": "Choose owner, admin or member."},
    )


class WebhookEndpointForm(forms.Form):
    """A tenant's webhook endpoint: where events go and which ones."""

    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="The https:// address that receives the events (public internet; redirects are not followed).",
        widget=forms.URLInput(attrs={"size": 60}),
        error_messages={"required": "Enter the URL that receives the events."},
    )
    description = forms.CharField(max_length=200, required=False, help_text="Optional: what listens there.")
    event_types = forms.MultipleChoiceField(
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        label="Events",
        error_messages={
            "required": "Choose at least one event type.",
            "invalid_choice": "“%(value)s” is not an event type this endpoint can receive.",
        },
    )
    enabled = forms.BooleanField(required=False, initial=True, help_text="Off: events are not queued for it.")

    def __init__(self, *args, event_choices, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["event_types"]).choices = event_choices
