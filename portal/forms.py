"""Portal forms: they parse and explain input; the services do the writing."""

from __future__ import annotations

import datetime as dt
from typing import cast

from django import forms
from django.utils import timezone

from tenants.flag_forms import EvaluateForm
from tenants.models import PRODUCTION, Membership

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


def environment_field(label: str, *, missing: str, **kwargs) -> forms.ChoiceField:
    """Return a choice among the tenant's environments (the view sets the choices)."""
    return forms.ChoiceField(
        label=label,
        choices=(),
        error_messages={
            "required": missing,
            "invalid_choice": "Select a valid choice: “%(value)s” is not one of this tenant's environments.",
        },
        **kwargs,
    )


def environment_choices(form: forms.Form, names: list[str], environments: list[str]) -> None:
    """Offer `environments` (production first) in each of the form's fields `names`."""
    for name in names:
        cast(forms.ChoiceField, form.fields[name]).choices = [(key, key) for key in environments]


class ApiKeyCreateForm(forms.Form):
    """Name, scopes, environment and optional expiry of a new API key."""

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
    environment = environment_field(
        "Environment",
        missing="Choose the environment the key reads.",
        required=False,  # a client that sends none gets production, as before environments
        initial=PRODUCTION,
        help_text="The key reads this environment's flags; it cannot be changed later.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        help_text="Optional. The key stops working at the start of this day (UTC). Leave empty for no expiry.",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )

    def __init__(self, *args, scope_choices, environments, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["scopes"]).choices = scope_choices
        environment_choices(self, ["environment"], environments)

    def clean_environment(self) -> str:
        return self.cleaned_data["environment"] or PRODUCTION

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


class ScheduleToggleForm(forms.Form):
    """An owner toggle to apply at a time (UTC), optionally put back at a later one."""

    enabled = forms.TypedChoiceField(
        choices=[("true", "On"), ("false", "Off")],
        coerce=lambda value: value == "true",
        error_messages={"required": "Say whether the feature should be on or off then."},
    )
    apply_at = forms.DateTimeField(
        label="At (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"required": "Say when, in UTC.", "invalid": "Use a date and time such as 2026-12-24T18:00."},
    )
    revert_at = forms.DateTimeField(
        label="Put back at (UTC, optional)",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="The feature goes back to what it was just before the change.",
        error_messages={"invalid": "Use a date and time such as 2026-12-26T08:00."},
    )


class EnvironmentEvaluateForm(EvaluateForm):
    """The evaluate tool's subject and context, and the environment to evaluate in."""

    env = environment_field("Environment", missing="Choose an environment.", initial=PRODUCTION, required=False)

    def __init__(self, *args, environments, **kwargs):
        super().__init__(*args, **kwargs)
        environment_choices(self, ["env"], environments)
        self.order_fields(["env"])

    def clean_env(self) -> str:
        return self.cleaned_data["env"] or PRODUCTION


class EnvironmentCreateForm(forms.Form):
    """A new environment's key and name (the service checks the pattern, duplicates and the plan's bound)."""

    key = forms.CharField(
        max_length=32,
        help_text="1-32 characters: a-z, 0-9, '-', starting with a letter, e.g. staging. Used in URLs and API keys.",
        error_messages={
            "required": "Give the environment a key, e.g. staging.",
            "max_length": "A key is at most 32 characters.",
        },
    )
    name = forms.CharField(
        max_length=100,
        required=False,
        help_text="Optional: a readable name.",
        error_messages={"max_length": "A name is at most 100 characters."},
    )


class EnvironmentPromoteForm(forms.Form):
    """Which environment's owner toggles to copy onto which, and the digest of the diff the user saw."""

    source = environment_field("From", missing="Choose the environment to promote from.")
    target = environment_field("To", missing="Choose the environment to promote to.")
    digest = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, environments, **kwargs):
        super().__init__(*args, **kwargs)
        environment_choices(self, ["source", "target"], environments)
