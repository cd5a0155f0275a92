"""Portal forms: they parse and explain input; the services do the writing."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from tenants.models import Membership, Tenant

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
        self.fields["scopes"].choices = scope_choices

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
    """Add an existing user to the tenant by username or email."""

    identifier = forms.CharField(
        label="Username or email",
        max_length=254,
        error_messages={"required": "Enter the username or email address of an existing user."},
    )
    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        initial=Membership.Role.MEMBER,
        error_messages={"invalid_choice": "Choose owner, admin or member."},
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def clean_identifier(self):
        identifier = self.cleaned_data["identifier"].strip()
        User = get_user_model()
        matches = list(User.objects.filter(Q(username=identifier) | Q(email__iexact=identifier), is_active=True)[:2])
        exact = [user for user in matches if user.username == identifier]
        if exact:
            user = exact[0]
        elif len(matches) == 1:
            user = matches[0]
        elif matches:
            raise forms.ValidationError("Several accounts use this email address; enter the username instead.")
        else:
            raise forms.ValidationError(
                "No active user has this username or email. They need an account before you can add them."
            )
        if Membership.objects.filter(tenant=self.tenant, user=user).exists():
            raise forms.ValidationError(f"{user.get_username()} is already a member of {self.tenant.name}.")
        return user


class MemberRoleForm(forms.Form):
    """Change a member's role."""

    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        error_messages={"required": "Choose a role.", "invalid_choice": "Choose owner, admin or member."},
    )
