"""The tenant admin's environment pages: list, add and delete a tenant's environments, and promote one onto another.

Thin views: the forms parse, `tenants.services.environments` decides and writes. Reading needs
the view permission on tenants; every write needs the change permission (403 otherwise), as
the tenant page's own save does.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from agentapi_admin.admin_base import ModelAdminMixin
from agentapi_admin.client_address import client_ip
from tenants.admin_approvals import approval_requested
from tenants.exceptions import ApprovalRequired, TenantsError
from tenants.models import PRODUCTION, ApiKey, Environment, OwnerToggle, Tenant, TenantFlag
from tenants.selectors import tenant_environments
from tenants.services.environments import (
    LAYERS,
    OVERRIDES,
    OWNER_TOGGLES,
    EnvironmentChanged,
    EnvironmentDiff,
    environment_create,
    environment_delete,
    environment_diff,
    environment_promote,
    environment_require,
)

LAYER_CHOICES = ((OVERRIDES, "Platform overrides"), (OWNER_TOGGLES, "Owner toggles"))


def clean_tenant_environment(form: forms.BaseForm) -> None:
    """Check a form's `environment` against its `tenant`'s (empty: production), as an error on `environment`."""
    cleaned = form.cleaned_data
    tenant = cleaned.get("tenant")
    if tenant is not None and "environment" not in form.errors:
        try:
            cleaned["environment"] = environment_require(tenant, cleaned.get("environment") or PRODUCTION)
        except TenantsError as exc:
            form.add_error("environment", exc.message)


def environment_rows(tenant: Tenant) -> list[dict[str, Any]]:
    """Return the tenant's environments, production first, each with its layer and live API key counts."""

    def counts(rows) -> dict[str, int]:
        return dict(rows.values_list("environment").annotate(n=Count("pk")).order_by())

    overrides = counts(TenantFlag.objects.filter(tenant=tenant))
    toggles = counts(OwnerToggle.objects.filter(tenant=tenant))
    keys = counts(ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True))
    others = Environment.objects.filter(tenant=tenant).order_by("key").values_list("key", "name", "created_at")
    return [
        {
            "key": key,
            "name": name,
            "created_at": created_at,
            "overrides": overrides.get(key, 0),
            "owner_toggles": toggles.get(key, 0),
            "api_keys": keys.get(key, 0),
        }
        for key, name, created_at in [(PRODUCTION, "", None), *others]
    ]


def add_service_error(form: forms.Form, exc: TenantsError) -> None:
    """Show a service refusal on the field it names (a form-wide error when it names none of the form's)."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


class EnvironmentAddForm(forms.Form):
    key = forms.CharField(max_length=32, help_text="1-32 characters: a-z, 0-9, '-', starting with a letter.")
    name = forms.CharField(max_length=100, required=False)


class PromoteForm(forms.Form):
    source = forms.ChoiceField(help_text="Copy this environment's layers…")
    target = forms.ChoiceField(help_text="…onto this one: it ends up as the source (set, change or remove).")
    layers = forms.MultipleChoiceField(choices=LAYER_CHOICES, initial=list(LAYERS), widget=forms.CheckboxSelectMultiple)
    digest = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(key, key) for key in tenant_environments(tenant)]
        for name in ("source", "target"):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = choices
        if len(choices) > 1:
            self.fields["source"].initial, self.fields["target"].initial = choices[1][0], PRODUCTION


class TenantEnvironmentsMixin(ModelAdminMixin):
    """Add `<id>/environments/` (list, add, delete) and `<id>/environments/promote/` to the tenant admin."""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        own = [
            path(
                "<path:object_id>/environments/",
                self.admin_site.admin_view(self.environments_view),
                name="{}_{}_environments".format(*info),
            ),
            path(
                "<path:object_id>/environments/promote/",
                self.admin_site.admin_view(self.promote_view),
                name="{}_{}_promote".format(*info),
            ),
        ]
        return own + super().get_urls()

    def _tenant_or_refuse(self, request, object_id) -> Tenant | None:
        if request.method not in ("GET", "HEAD", "POST"):
            return None
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            return None
        if not self.has_view_or_change_permission(request, tenant):
            raise PermissionDenied
        if request.method == "POST" and not self.has_change_permission(request, tenant):
            raise PermissionDenied  # view-only staff read these pages and act on nothing
        return tenant

    def _render(self, request, template: str, tenant: Tenant, title: str, **extra) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "original": tenant,
            "tenant": tenant,
            "can_change": self.has_change_permission(request, tenant),
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)

    def environments_view(self, request, object_id):
        tenant = self._tenant_or_refuse(request, object_id)
        if tenant is None:
            if request.method not in ("GET", "HEAD", "POST"):
                return HttpResponseNotAllowed(["GET", "POST"])
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]  # private in the stubs; what the admin itself calls
        here = reverse("admin:tenants_tenant_environments", args=[tenant.pk])
        form = EnvironmentAddForm()
        if request.method == "POST" and request.POST.get("action") == "delete":
            key = request.POST.get("environment", "")
            if request.POST.get("confirm") != "yes":
                # What goes with it is shown first; only the confirmation deletes.
                row = next((r for r in environment_rows(tenant) if r["key"] == key and key != PRODUCTION), None)
                if row is not None:
                    return self._render(
                        request,
                        "admin/tenants/tenant/environment_delete.html",
                        tenant,
                        f"Delete environment {key} of {tenant.slug}?",
                        row=row,
                    )
            try:
                environment_delete(
                    tenant=tenant,
                    key=key,
                    actor=request.user,
                    # The platform's overrides go with it only for staff who may change them.
                    may_remove_overrides=request.user.has_perm("tenants.change_flag"),
                    ip=client_ip(request),
                )
            except TenantsError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"Deleted environment {key} with its overrides and owner toggles.")
            return HttpResponseRedirect(here)
        if request.method == "POST":
            form = EnvironmentAddForm(request.POST)
            if form.is_valid():
                try:
                    created = environment_create(
                        tenant=tenant,
                        key=form.cleaned_data["key"],
                        name=form.cleaned_data["name"],
                        actor=request.user,
                        ip=client_ip(request),
                    )
                except TenantsError as exc:
                    add_service_error(form, exc)
                else:
                    self.message_user(request, f"Added environment {created.key}.", messages.SUCCESS)
                    return HttpResponseRedirect(here)
        return self._render(
            request,
            "admin/tenants/tenant/environments.html",
            tenant,
            f"Environments: {tenant.slug}",
            rows=environment_rows(tenant),
            form=form,
            allowed=tenant.plan.max_environments,
        )

    def promote_view(self, request, object_id):
        tenant = self._tenant_or_refuse(request, object_id)
        if tenant is None:
            if request.method not in ("GET", "HEAD", "POST"):
                return HttpResponseNotAllowed(["GET", "POST"])
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]  # private in the stubs; what the admin itself calls
        data = request.POST if request.method == "POST" else (request.GET if "source" in request.GET else None)
        form = PromoteForm(data, tenant=tenant)
        diff: EnvironmentDiff | None = None
        if form.is_valid():
            source, target = form.cleaned_data["source"], form.cleaned_data["target"]
            layers = form.cleaned_data["layers"]
            if request.method == "POST":
                if OVERRIDES in layers and not request.user.has_perm("tenants.change_flag"):
                    # The overrides are the flags' (as the tenant page's override rows): the tenant's permission
                    # lets staff promote owner toggles only.
                    raise PermissionDenied("Promoting overrides needs the permission to change flags.")
                ip = client_ip(request)
                try:
                    done = environment_promote(
                        tenant=tenant,
                        source=source,
                        target=target,
                        layers=layers,
                        digest=form.cleaned_data["digest"],
                        actor=request.user,
                        ip=ip,
                    )
                except EnvironmentChanged as exc:
                    self.message_user(request, exc.message, messages.WARNING)
                except ApprovalRequired as refusal:
                    change = approval_requested(self, request, refusal, ip)
                    if change is not None:
                        return HttpResponseRedirect(request._change_request_url)
                except TenantsError as exc:
                    add_service_error(form, exc)
                else:
                    changed = len(done.changes)
                    self.message_user(
                        request,
                        f"Promoted {source} to {target}: {changed} change{'s' if changed != 1 else ''}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
            if not form.errors:
                try:
                    diff = environment_diff(tenant=tenant, source=source, target=target, layers=layers)
                except TenantsError as exc:
                    add_service_error(form, exc)
        return self._render(
            request,
            "admin/tenants/tenant/promote.html",
            tenant,
            f"Promote environments: {tenant.slug}",
            form=form,
            diff=diff,
            rows=[] if diff is None else [_diff_row(change) for change in diff.changes],
        )


def _state_text(state: dict | None) -> str:
    if state is None:
        return "—"
    parts = ["on" if state.get("enabled") else "off"]
    if state.get("rollout_percent", 100) < 100:
        parts.append(f"at {state['rollout_percent']}%")
    if state.get("variant"):
        parts.append(f"variant {state['variant']}")
    if "value" in state:
        parts.append(f"value {json.dumps(state['value'], sort_keys=True)}")
    if state.get("owner_variants"):
        parts.append(f"owner may pick {', '.join(state['owner_variants'])}")
    return ", ".join(parts)


def _diff_row(change) -> dict:
    return {
        "flag": change.flag,
        "layer": dict(LAYER_CHOICES)[change.layer],
        "verb": change.verb,
        "before": _state_text(change.before),
        "after": _state_text(change.after),
    }
