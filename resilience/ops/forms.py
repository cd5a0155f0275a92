"""Input of the ops pages: filters (GET) and confirmations with a reason (POST)."""

from django import forms


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
    cursor = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


class SessionTargetForm(forms.Form):
    """Which session (or which user's sessions) an action is about."""

    user = forms.IntegerField(min_value=1)
    ref = forms.RegexField(regex=r"^[0-9a-f]{16}$", required=False, error_messages={"invalid": "Unknown session."})
