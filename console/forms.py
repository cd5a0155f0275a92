"""Input of the ops pages: filters (GET) and confirmations with a reason (POST)."""

from typing import cast

from django import forms

# SCAN / ZSCAN cursors are unsigned 64-bit integers: anything larger is bad input (400), not a Redis failure.
SCAN_CURSOR_MAX = 2**64 - 1


def scan_cursor_field() -> forms.IntegerField:
    return forms.IntegerField(
        required=False,
        min_value=0,
        max_value=SCAN_CURSOR_MAX,
        widget=forms.HiddenInput,
        error_messages={"max_value": "cursor must be a SCAN cursor (0 to 2^64 - 1): use the page's own links."},
    )


class ReasonForm(forms.Form):
    """The confirmation every ops action asks for: why, in words, for the audit trail."""

    reason = forms.CharField(
        max_length=500,
        min_length=3,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "Why? (kept in the audit trail)"}),
        help_text="Required. Stored in the audit trail with your name and the time.",
    )


class SessionSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=150, label="User", help_text="Username or e-mail contains.")
    user = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    cursor = scan_cursor_field()


class SessionTargetForm(forms.Form):
    """Which session (or which user's sessions) an action is about."""

    user = forms.IntegerField(min_value=1)
    ref = forms.RegexField(regex=r"^[0-9a-f]{16}$", required=False, error_messages={"invalid": "Unknown session."})


NO_TENANT_CHOICE = ("-", "— no tenant —")
SCOPE_CHOICES = [("user", "user"), ("ip", "ip"), ("tenant", "tenant"), ("form", "form")]


def _tenant_choices() -> list[tuple[str, str]]:
    from tenants.models import Tenant

    return [
        ("", "All tenants"),
        NO_TENANT_CHOICE,
        *((slug, slug) for slug in Tenant.objects.values_list("slug", flat=True)),
    ]


class RateLimitFilterForm(forms.Form):
    tenant = forms.ChoiceField(required=False)
    scope = forms.ChoiceField(required=False, choices=[("", "All scopes"), *SCOPE_CHOICES])
    q = forms.CharField(required=False, max_length=200, label="Identity contains")
    cursor = scan_cursor_field()
    count = forms.IntegerField(required=False, min_value=1, max_value=500, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["tenant"]).choices = _tenant_choices()


class ThrottleLookupForm(forms.Form):
    """Which form-throttle counters (failed sign-ins per IP and per account) to look up."""

    ip = forms.GenericIPAddressField(required=False, label="IP address")
    username = forms.CharField(required=False, max_length=150)

    def clean(self):
        super().clean()
        data = self.cleaned_data  # what Form.clean() returns; its stub says it may be None
        if not (data.get("ip") or data.get("username")):
            raise forms.ValidationError("Give an IP address or a username.")
        return data


class IdentityTargetForm(forms.Form):
    """One rate-limit identity an action is about."""

    scope = forms.ChoiceField(choices=SCOPE_CHOICES)
    tenant = forms.RegexField(regex=r"^(-|[-a-zA-Z0-9_]{1,50})$", error_messages={"invalid": "Unknown tenant."})
    identity = forms.CharField(max_length=200)


class TenantTargetForm(forms.Form):
    tenant = forms.RegexField(regex=r"^(-|[-a-zA-Z0-9_]{1,50})$", error_messages={"invalid": "Unknown tenant."})


BREAKER_ACTIONS = {
    "force_open": "Force open",
    "force_close": "Force close",
    "reset": "Reset",
}


class BreakerTargetForm(forms.Form):
    name = forms.RegexField(regex=r"^[a-z0-9_.-]{1,100}$", error_messages={"invalid": "Unknown breaker."})
    action = forms.ChoiceField(choices=list(BREAKER_ACTIONS.items()))
