"""Staff API tokens in the admin: each staff user creates, sees and revokes their own."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.template.response import TemplateResponse

from agentapi_admin.admin_base import GuardedModelAdmin
from agentapi_admin.client_address import client_ip
from automation.models import StaffToken
from automation.scopes import SCOPES, scopes_missing_permissions
from automation.services import staff_token_create, staff_token_revoke


class StaffTokenCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope}: {allows}") for scope, (allows, _) in SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = StaffToken
        fields = ["name", "scopes", "expires_at"]

    #: The signed-in user the token is for; set by StaffTokenAdmin.get_form.
    owner = None

    def clean_scopes(self):
        scopes = self.cleaned_data["scopes"]
        missing = scopes_missing_permissions(self.owner, scopes)
        if missing:
            raise forms.ValidationError(
                "A token is never broader than you: you lack "
                + "; ".join(f"{', '.join(perms)} (for {scope})" for scope, perms in missing.items())
            )
        return scopes


class OwnTokensChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)


@admin.register(StaffToken)
class StaffTokenAdmin(GuardedModelAdmin):
    list_display = ["prefix", "name", "user", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name"]
    actions = ["revoke"]

    # Django's model permissions say who may create and revoke tokens; each staff user then sees and
    # revokes only their own (a superuser sees every token, to revoke a leaked one).
    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._own(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._own(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @staticmethod
    def _own(request, obj) -> bool:
        return obj is None or request.user.is_superuser or obj.user_id == request.user.pk

    def get_changelist(self, request, **kwargs):
        # The list (and so every action) holds the user's own tokens; another's page answers 403.
        return OwnTokensChangeList

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = type("OwnStaffTokenCreateForm", (StaffTokenCreateForm,), {"owner": request.user})
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scopes", "expires_at"]
        return ["name", "prefix", "user", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            return
        token, secret = staff_token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"],
            actor=request.user,
            ip=client_ip(request),
        )
        for field in StaffToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state.adding = False
        # Shown once by response_add; never stored anywhere but in this response.
        request._created_staff_token_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_created_staff_token_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/automation/stafftoken/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "token": obj,
                "secret": secret,
                "title": "Staff API token created",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            staff_token_revoke(token=token, actor=request.user, ip=client_ip(request))
        self.message_user(request, "Revoked; the tokens are refused from the next request.")
