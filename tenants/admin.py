"""Django admin for tenants, plans, flags, API keys and usage; every write goes through a service."""

from __future__ import annotations

import json
import re
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from agentapi_admin.admin_base import GuardedModelAdmin, admin_time, adopt_created
from agentapi_admin.admin_export import Export, ExportActionsMixin
from agentapi_admin.client_address import client_ip
from audit.models import AuditEvent
from tenants.admin_approvals import approval_requested
from tenants.admin_environments import TenantEnvironmentsMixin, clean_tenant_environment, environment_rows
from tenants.admin_flags import FlagAdmin, SegmentAdmin  # noqa: F401 - registered there
from tenants.admin_history import AuditHistoryMixin
from tenants.charts import usage_chart
from tenants.exceptions import ApprovalRequired, InvalidSettings, TenantsError
from tenants.flag_forms import add_service_errors, typed_text, typed_value
from tenants.flag_text import layers_text
from tenants.models import (
    PROBE_UPSTREAM_PERMISSION,
    PRODUCTION,
    ApiKey,
    Flag,
    Membership,
    OwnerToggle,
    Plan,
    Tenant,
    TenantFlag,
    UsageDaily,
)
from tenants.selectors import apikeys_with_last_use, flags_explain, tenant_environments, usage_daily
from tenants.services.apikeys import SCOPE_LABELS, SCOPES, apikey_issue, apikey_revoke
from tenants.services.flags import flag_clear_override, flag_override_errors, flag_owner_reset, flag_set_override
from tenants.services.memberships import membership_add, membership_change_role, membership_remove
from tenants.services.plans import plan_create, plan_update
from tenants.services.tenants import (
    EDITABLE_FIELDS,
    labels_validate,
    tenant_activate,
    tenant_create,
    tenant_offboard,
    tenant_resume,
    tenant_set_upstream_credentials,
    tenant_suspend,
    tenant_update,
)
from tenants.settings_form import PREFIX as SETTING_PREFIX
from tenants.settings_form import SettingsFields, settings_from_fields
from tenants.settings_schema import settings_validate
from tenants.upstream import upstream_check


# ----------------------------------------------------------------------- plans
class PlanForm(forms.ModelForm):
    flags_on = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="On for this plan's tenants by default."
    )
    flags_off = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Off for this plan's tenants by default. Unticked in both lists: the flag's own default.",
    )

    class Meta:
        model = Plan
        fields = ["code", "name", "rate_limit_per_minute", "burst", "daily_quota", "max_environments", "default_flags"]
        labels = {"default_flags": "Raw JSON (advanced)"}
        help_texts = {"default_flags": 'Flag defaults as JSON, {"flag_key": true}. Edit here or in the lists above.'}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(key, key) for key in Flag.objects.filter(archived=False).values_list("key", flat=True)]
        stored = (self.instance.default_flags if self.instance.pk else {}) or {}
        for name, wanted in (("flags_on", True), ("flags_off", False)):
            cast(forms.MultipleChoiceField, self.fields[name]).choices = choices
            self.initial.setdefault(name, sorted(k for k, v in stored.items() if v is wanted))
        if "default_flags" in self.fields:  # absent for a view-only user
            self.fields["default_flags"].required = False

    @property
    def flags_changed(self) -> bool:
        return bool({"default_flags", "flags_on", "flags_off"} & set(self.changed_data))

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns; its stub says it may be None
        lists = {"flags_on", "flags_off"} & set(self.changed_data)
        if lists and "default_flags" in self.changed_data:
            raise ValidationError("Change the flag defaults either in the lists or in the raw JSON, not both.")
        if lists and not self.errors:
            both = sorted(set(cleaned.get("flags_on", [])) & set(cleaned.get("flags_off", [])))
            if both:
                self.add_error("flags_off", f"A flag cannot be both on and off: {', '.join(both)}.")
            else:
                cleaned["default_flags"] = {
                    **{key: True for key in cleaned.get("flags_on", [])},
                    **{key: False for key in cleaned.get("flags_off", [])},
                }
        return cleaned

    def clean_default_flags(self):
        value = self.cleaned_data["default_flags"] or {}
        if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
            raise ValidationError('Map flag keys to true/false, e.g. {"beta": true}.')
        unknown = sorted(set(value) - set(Flag.objects.filter(key__in=list(value)).values_list("key", flat=True)))
        if unknown:
            raise ValidationError(f"Unknown flags: {', '.join(unknown)}.")
        return value


@admin.register(Plan)
class PlanAdmin(AuditHistoryMixin, GuardedModelAdmin):
    form = PlanForm
    list_display = ["code", "name", "rate_limit_per_minute", "burst", "daily_quota", "max_environments", "tenant_count"]
    search_fields = ["code", "name"]

    @admin.display(description="tenants")
    def tenant_count(self, obj):
        return obj.tenants.count()

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj else []

    def get_fieldsets(self, request, obj=None):
        main = ["code", "name", "rate_limit_per_minute", "burst", "daily_quota", "max_environments"]
        return [
            (None, {"fields": main}),
            ("Flag defaults", {"fields": ["flags_on", "flags_off"]}),
            ("Flag defaults: raw JSON (advanced)", {"fields": ["default_flags"], "classes": ["collapse"]}),
        ]

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in PlanForm.Meta.fields[1:]}
        if form.flags_changed:
            data["default_flags"] = form.cleaned_data["default_flags"]
        if change:
            plan_update(plan=obj, actor=request.user, ip=client_ip(request), **data)
        else:
            fields = {k: form.cleaned_data[k] for k in PlanForm.Meta.fields if k not in ("code", "name")}
            created = plan_create(
                code=form.cleaned_data["code"],
                name=form.cleaned_data["name"],
                actor=request.user,
                ip=client_ip(request),
                **fields,
            )
            adopt_created(obj, created)

    def has_delete_permission(self, request, obj=None):
        return False


# --------------------------------------------------------------------- tenants
class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        had_owner = self.instance.pk and Membership.objects.filter(tenant=self.instance, role="owner").exists()
        owners = [
            f
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("role") == "owner"
        ]
        if had_owner and not owners:
            raise ValidationError("A tenant must keep at least one owner: make another member owner first.")


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]
    extra = 0


class OverrideForm(forms.ModelForm):
    """A platform override: on/off with a rollout; for typed flags also what it serves and the owner's bounds."""

    value = forms.CharField(
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"size": 16}),
        help_text="Typed flags: a value to serve (text for strings, 30, JSON); or a variant key. Not both.",
    )
    owner_variants = forms.CharField(
        required=False,
        label="owner may pick",
        widget=forms.TextInput(attrs={"size": 16}),
        help_text="Variant keys the tenant's owners may choose among, comma-separated.",
    )

    environment = forms.ChoiceField(
        required=False,  # left out: production, as before environments
        initial=PRODUCTION,
        help_text="The environment this override applies in (fixed once saved).",
    )

    class Meta:
        model = TenantFlag
        fields = ["environment", "flag", "enabled", "rollout_percent", "variant"]
        widgets = {"variant": forms.TextInput(attrs={"size": 10})}

    tenant: Tenant | None = None  # set by OverrideInline.get_formset

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        if "environment" in self.fields:  # absent for a view-only user
            field = cast(forms.ChoiceField, self.fields["environment"])
            keys = tenant_environments(self.tenant) if self.tenant is not None else [PRODUCTION]
            if instance.pk and instance.environment not in keys:
                keys.append(instance.environment)
            field.choices = [(key, key) for key in keys]
            # Moving an override to another environment would leave the old one: add a row there instead.
            field.disabled = bool(instance.pk)
        if instance.pk:
            self.initial["value"] = typed_text(instance.flag.kind, instance.value)
            self.initial["owner_variants"] = ", ".join(instance.owner_variants)

    def clean_environment(self) -> str:
        return self.cleaned_data.get("environment") or PRODUCTION

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns; its stub says it may be None
        flag = cleaned.get("flag") or (self.instance.flag if self.instance.pk else None)
        if flag is None or cleaned.get("DELETE"):
            return cleaned
        text = cleaned.get("value", "")
        value = None
        if text.strip() or (flag.kind == "string" and text):
            try:
                value = typed_value(flag.kind, text if flag.kind == "string" else text.strip())
            except ValidationError as exc:
                self.add_error("value", exc.messages[0])
                return cleaned
        owner_variants = [v.strip() for v in cleaned.get("owner_variants", "").split(",") if v.strip()]
        cleaned["value"], cleaned["owner_variants"] = value, owner_variants
        errors = flag_override_errors(
            flag=flag, variant=cleaned.get("variant", ""), value=value, owner_variants=owner_variants
        )
        add_service_errors(self, errors, fallback="variant")
        return cleaned


class OverrideInline(admin.TabularInline):
    model = TenantFlag
    form = OverrideForm
    fields = [
        "environment",
        "flag",
        "enabled",
        "rollout_percent",
        "variant",
        "value",
        "owner_variants",
        "source",
        "updated_by",
    ]
    readonly_fields = ["source", "updated_by"]
    extra = 0
    verbose_name = "flag override"
    ordering = ["environment", "flag__key"]

    def get_formset(self, request, obj=None, **kwargs):
        # The environment choices are the tenant's: the form learns which tenant it edits.
        kwargs["form"] = type("TenantOverrideForm", (self.form,), {"tenant": obj})
        return super().get_formset(request, obj, **kwargs)


class TenantForm(forms.ModelForm, SettingsFields):
    new_upstream_credentials = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted (AES-256-GCM). Leave empty to keep the current value.",
    )
    clear_upstream_credentials = forms.BooleanField(required=False)
    upstream_url = forms.URLField(
        required=False, assume_scheme="https", help_text="AgentAPI base URL; health is GET <url>/status."
    )

    labels = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Tags segments can target (tenant.labels), comma-separated, e.g. eu, beta.",
    )

    class Meta:
        model = Tenant
        fields = ["slug", "name", "plan", "labels", "settings", "upstream_url"]
        labels = {"settings": "Raw JSON (advanced)"}
        help_texts = {"settings": "The stored settings as JSON. Edit here or in the fields above, not both."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = (self.instance.settings if self.instance.pk else {}) or {}
        for name in SettingsFields.base_fields:
            key = name.removeprefix(SETTING_PREFIX)
            if key in stored:
                self.initial.setdefault(name, stored[key])
        if "settings" in self.fields:  # absent for a view-only user: everything is read-only then
            self.fields["settings"].required = False
        self.stored_labels = list(self.instance.labels or []) if self.instance.pk else []
        self.initial["labels"] = ", ".join(self.stored_labels)

    def clean_labels(self) -> list[str]:
        text = self.cleaned_data["labels"]
        try:
            return labels_validate([part for part in re.split(r"[,\s]+", text) if part])
        except TenantsError as exc:
            raise ValidationError(exc.message) from None

    @property
    def settings_changed(self) -> bool:
        return "settings" in self.changed_data or any(n.startswith(SETTING_PREFIX) for n in self.changed_data)

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns; its stub says it may be None
        typed = [name for name in self.changed_data if name.startswith(SETTING_PREFIX)]
        if typed and "settings" in self.changed_data:
            raise ValidationError("Change the settings either in the fields or in the raw JSON, not both.")
        value: object
        if typed:
            stored = self.instance.settings if self.instance.pk else {}
            value = settings_from_fields(stored, cleaned, skip=set(self.errors))
        elif "settings" in self.errors:
            return cleaned
        else:
            value = cleaned.get("settings")
        try:
            cleaned["settings"] = settings_validate(value)
        except InvalidSettings as exc:
            # Every error at once, each on its own field (the raw JSON box when that is what changed).
            for key in exc.errors:
                target = SETTING_PREFIX + key if typed and SETTING_PREFIX + key in self.fields else "settings"
                self.add_error(target, exc.messages_for(key) if target != "settings" else exc.lines_for(key))
        return cleaned


class TenantActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=500, help_text="Required to suspend or offboard.")


@admin.register(Tenant)
class TenantAdmin(TenantEnvironmentsMixin, AuditHistoryMixin, GuardedModelAdmin):
    form = TenantForm
    action_form = TenantActionForm
    list_display = ["slug", "name", "status", "plan", "created_at"]
    list_filter = ["status", "plan"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline, OverrideInline]
    actions = ["activate", "suspend", "resume", "offboard", "reset_owner_toggles", "test_upstream"]
    readonly_fields = [
        "status",
        "status_reason",
        "status_changed_at",
        "cache_version",
        "credentials",
        "usage_chart",
        "environments",
        "owner_toggles",
        "effective_flags",
        "recent_audit",
    ]

    def get_fieldsets(self, request, obj=None):
        main = ["slug", "name", "plan", "labels", "upstream_url"]
        creds = ["new_upstream_credentials", "clear_upstream_credentials"]
        settings = [
            ("Settings", {"fields": list(SettingsFields.base_fields)}),
            ("Settings: raw JSON (advanced)", {"fields": ["settings"], "classes": ["collapse"]}),
        ]
        if obj is None:
            return [(None, {"fields": main}), *settings, ("Upstream credentials", {"fields": creds})]
        return [
            (None, {"fields": main}),
            *settings,
            ("Status", {"fields": ["status", "status_reason", "status_changed_at", "cache_version"]}),
            ("Upstream credentials", {"fields": ["credentials", *creds]}),
            ("Usage (last 30 days)", {"fields": ["usage_chart"]}),
            ("Environments", {"fields": ["environments"]}),
            ("Flags for this tenant", {"fields": ["effective_flags"]}),
            ("Owner toggles", {"fields": ["owner_toggles"]}),
            ("Audit", {"fields": ["recent_audit"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "slug"] if obj else []

    @admin.display(description="credentials")
    def credentials(self, obj):
        return "set (encrypted)" if obj.upstream_credentials else "not set"

    @admin.display(description="requests per day")
    def usage_chart(self, obj):
        return usage_chart(usage_daily(obj, days=30), title="API requests per day (UTC)").html()

    @admin.display(description="Owner toggles (the tenant's own choices, applied within the overrides)")
    def owner_toggles(self, obj):
        toggles = (
            OwnerToggle.objects.filter(tenant=obj)
            .select_related("flag", "updated_by")
            .order_by("environment", "flag__key")
        )
        if not toggles:
            return "none"
        return format_html(
            "<ul>{}</ul><p class='help'>Reset them with the action “Reset the owners' feature toggles”.</p>",
            format_html_join(
                "",
                "<li><code>{}</code>{} {} by {} at {}</li>",
                (
                    (
                        toggle.flag.key,
                        # Production's read as before environments; the others name theirs.
                        "" if toggle.environment == PRODUCTION else f" in {toggle.environment}:",
                        "on" if toggle.enabled else "off",
                        toggle.updated_by or "someone since removed",
                        toggle.updated_at.strftime("%Y-%m-%d %H:%M"),
                    )
                    for toggle in toggles
                ),
            ),
        )

    @admin.display(description="environments")
    def environments(self, obj):
        rows = environment_rows(obj)
        table = format_html(
            '<div class="results"><table class="tenant-environments"><thead><tr><th scope="col">environment</th>'
            '<th scope="col">name</th><th scope="col">overrides</th><th scope="col">owner toggles</th>'
            '<th scope="col">live API keys</th></tr></thead><tbody>{}</tbody></table></div>',
            format_html_join(
                "",
                '<tr data-environment="{}"><th scope="row"><a href="#flags-{}"><code>{}</code></a></th>'
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (r["key"], r["key"], r["key"], r["name"] or "—", r["overrides"], r["owner_toggles"], r["api_keys"])
                    for r in rows
                ),
            ),
        )
        return format_html(
            '{}<p class="help">{} of {} allowed by the plan · <a class="environments-link" href="{}">Add or delete '
            'environments…</a> · <a class="promote-link" href="{}">Promote one onto another…</a></p>',
            table,
            len(rows),
            obj.plan.max_environments,
            reverse("admin:tenants_tenant_environments", args=[obj.pk]),
            reverse("admin:tenants_tenant_promote", args=[obj.pk]),
        )

    @admin.display(description="effective flags (for the tenant itself as subject), per environment")
    def effective_flags(self, obj):
        sections = [self._flags_table(obj, environment) for environment in tenant_environments(obj)]
        link = reverse("admin:tenants_flag_evaluate") + f"?tenant={obj.slug}"
        return format_html(
            '{}<p class="help"><a href="{}">Evaluate for a subject and context…</a></p>',
            format_html_join("", "{}", ((section,) for section in sections)),
            link,
        )

    @staticmethod
    def _flags_table(obj, environment: str):
        rows = flags_explain(obj, from_database=True, environment=environment)  # as stored; warms no cache
        # Production keeps the row ids it had before environments.
        prefix = "tenant-flag-" if environment == PRODUCTION else f"tenant-flag-{environment}-"
        heading = format_html('<h3 id="flags-{}" class="environment-flags">{}</h3>', environment, environment)
        if not rows:
            return format_html("{}<p>no flags</p>", heading)
        return format_html(
            '{}<div class="results"><table class="evaluation tenant-flags" data-environment="{}"><thead><tr>'
            '<th scope="col">flag</th><th scope="col">kind</th>'
            '<th scope="col">enabled</th><th scope="col">value</th><th scope="col">variant</th>'
            '<th scope="col">reason</th><th scope="col">platform · owner</th></tr></thead>'
            "<tbody>{}</tbody></table></div>",
            heading,
            environment,
            format_html_join(
                "",
                '<tr id="{}{}"><th scope="row"><a href="{}"><code>{}</code></a></th><td>{}</td><td>{}</td>'
                "<td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        prefix,
                        row.key,
                        reverse("admin:tenants_flag_changelist") + f"?q={row.key}",
                        row.key,
                        row.kind,
                        "on" if row.enabled else "off",
                        json.dumps(row.value),
                        row.variant or "—",
                        row.reason,
                        layers_text(row),
                    )
                    for row in rows
                ),
            ),
        )

    @admin.display(description="latest changes")
    def recent_audit(self, obj):
        events = AuditEvent.objects.filter(tenant=obj).order_by("-created_at", "-id")[:10]
        if not events:
            return "none"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{} {} {}</a></li>',
                (
                    (
                        reverse("admin:audit_auditevent_change", args=[e.pk]),
                        e.created_at.strftime("%Y-%m-%d %H:%M"),
                        e.actor_label,
                        e.action,
                    )
                    for e in events
                ),
            ),
        )

    @transaction.atomic
    def save_model(self, request, obj, form, change):
        ip = client_ip(request)
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
            if "labels" in data and data["labels"] == form.stored_labels:
                del data["labels"]
            if form.settings_changed:
                data["settings"] = form.cleaned_data["settings"]
            if data:
                tenant_update(tenant=obj, actor=request.user, ip=ip, **data)
        else:
            created = tenant_create(
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
                plan=form.cleaned_data["plan"],
                settings=form.cleaned_data["settings"],
                upstream_url=form.cleaned_data["upstream_url"],
                actor=request.user,
                ip=ip,
            )
            adopt_created(obj, created)
            if form.cleaned_data.get("labels"):
                tenant_update(tenant=obj, labels=form.cleaned_data["labels"], actor=request.user, ip=ip)
        secret = form.cleaned_data.get("new_upstream_credentials")
        if secret or form.cleaned_data.get("clear_upstream_credentials"):
            tenant_set_upstream_credentials(tenant=obj, secret=secret or "", actor=request.user, ip=ip)

    def save_formset(self, request, form, formset, change):
        tenant, ip = form.instance, client_ip(request)
        # The admin's change message reads these; the services do the saving.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if formset.model is Membership:
            self._save_memberships(request, tenant, formset, ip)
        elif formset.model is TenantFlag:
            self._save_overrides(request, tenant, formset, ip)

    def _save_memberships(self, request, tenant, formset, ip):
        # Promotions first, then demotions and removals, so the owner check sees the new owners.
        forms_in_order = sorted(
            formset.forms,
            key=lambda f: 0 if f.cleaned_data.get("role") == "owner" and not f.cleaned_data.get("DELETE") else 1,
        )
        for f in forms_in_order:
            if not f.cleaned_data or (not f.has_changed() and not f.cleaned_data.get("DELETE")):
                continue
            try:
                if f.instance.pk is None:
                    if not f.cleaned_data.get("DELETE"):
                        formset.new_objects.append(f.instance)
                        membership_add(
                            tenant=tenant,
                            user=f.cleaned_data["user"],
                            role=f.cleaned_data["role"],
                            actor=request.user,
                            ip=ip,
                        )
                elif f.cleaned_data.get("DELETE"):
                    formset.deleted_objects.append(f.instance)
                    membership_remove(membership=f.instance, actor=request.user, ip=ip)
                else:
                    formset.changed_objects.append((f.instance, f.changed_data))
                    membership_change_role(
                        membership=f.instance, role=f.cleaned_data["role"], actor=request.user, ip=ip
                    )
            except TenantsError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    def _save_overrides(self, request, tenant, formset, ip):
        for f in formset.forms:
            if not f.cleaned_data or (not f.has_changed() and not f.cleaned_data.get("DELETE")):
                continue
            flag = f.cleaned_data.get("flag") or f.instance.flag
            environment = f.instance.environment if f.instance.pk else f.cleaned_data.get("environment") or PRODUCTION
            if f.cleaned_data.get("DELETE"):
                if f.instance.pk is not None:
                    formset.deleted_objects.append(f.instance)
                    try:
                        flag_clear_override(
                            tenant=tenant, flag=flag, environment=environment, actor=request.user, ip=ip
                        )
                    except ApprovalRequired as refusal:
                        approval_requested(self, request, refusal, ip)
                    except TenantsError as exc:
                        self.message_user(request, f"{flag.key} in {environment}: {exc.message}", messages.ERROR)
                continue
            if f.instance.pk is None:
                formset.new_objects.append(f.instance)
            else:
                formset.changed_objects.append((f.instance, f.changed_data))
            try:
                flag_set_override(
                    tenant=tenant,
                    flag=flag,
                    enabled=f.cleaned_data["enabled"],
                    rollout_percent=f.cleaned_data["rollout_percent"],
                    variant=f.cleaned_data.get("variant", ""),
                    value=f.cleaned_data.get("value"),
                    owner_variants=f.cleaned_data.get("owner_variants", []),
                    environment=environment,
                    actor=request.user,
                    ip=ip,
                )
            except ApprovalRequired as refusal:
                approval_requested(self, request, refusal, ip)
            except TenantsError as exc:  # e.g. the environment was deleted since the page was shown
                self.message_user(request, f"{flag.key} in {environment}: {exc.message}", messages.ERROR)

    def _each(self, request, queryset, service, **kwargs) -> int:
        """Run a lifecycle service on each selected tenant; a refusal is an error message naming the tenant."""
        done = 0
        for tenant in queryset:
            try:
                service(tenant=tenant, actor=request.user, ip=client_ip(request), **kwargs)
                done += 1
            except TenantsError as exc:
                self.message_user(request, f"{tenant.slug}: {exc.message}", messages.ERROR)
        return done

    def _reason(self, request, verb: str) -> str | None:
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, f"Give a reason in the Reason box to {verb}.", messages.ERROR)
            return None
        return reason

    @admin.action(description="Activate selected trial tenants", permissions=["change"])
    def activate(self, request, queryset):
        done = self._each(request, queryset, tenant_activate)
        self.message_user(request, f"Activated {done} tenant(s).")

    @admin.action(description="Suspend selected tenants (reason required)", permissions=["change"])
    def suspend(self, request, queryset):
        reason = self._reason(request, "suspend")
        if reason is None:
            return
        done = self._each(request, queryset, tenant_suspend, reason=reason)
        self.message_user(request, f"Suspended {done} tenant(s); their API keys are refused from now on.")

    @admin.action(description="Resume selected tenants (back to trial or active)", permissions=["change"])
    def resume(self, request, queryset):
        done = self._each(request, queryset, tenant_resume)
        self.message_user(request, f"Resumed {done} tenant(s).")

    @admin.action(description="Offboard selected tenants for good (reason required)", permissions=["change"])
    def offboard(self, request, queryset):
        reason = self._reason(request, "offboard")
        if reason is None:
            return
        done = self._each(request, queryset, tenant_offboard, reason=reason)
        self.message_user(
            request,
            f"Offboarded {done} tenant(s): API access refused, upstream credentials erased; "
            "rows and the audit trail are kept.",
        )

    @admin.action(description="Reset the owners' feature toggles of selected tenants", permissions=["change"])
    def reset_owner_toggles(self, request, queryset):
        done, ip = 0, client_ip(request)
        for toggle in OwnerToggle.objects.filter(tenant__in=queryset).select_related("tenant", "flag"):
            try:
                done += flag_owner_reset(
                    tenant=toggle.tenant, flag=toggle.flag, environment=toggle.environment, actor=request.user, ip=ip
                )
            except ApprovalRequired as refusal:
                approval_requested(self, request, refusal, ip)
        self.message_user(request, f"Reset {done} owner toggle(s); the overrides and defaults apply again.")

    @admin.action(
        description="Test upstream connection (GET <upstream URL>/status through its breaker)",
        permissions=["probe_upstream"],
    )
    def test_upstream(self, request, queryset):
        for tenant in queryset[:20]:  # each probe may wait for a timeout: keep the request bounded
            result = upstream_check(tenant)
            if result.ok:
                self.message_user(
                    request,
                    f"Upstream of {tenant.slug}: HTTP {result.status_code} in {result.latency_ms:g} ms "
                    f"(breaker {result.breaker} {result.breaker_state}).",
                    messages.SUCCESS,
                )
            else:
                detail = f"HTTP {result.status_code}" if result.status_code else result.error
                self.message_user(
                    request,
                    f"Upstream of {tenant.slug} failed: {detail} (breaker {result.breaker} {result.breaker_state}).",
                    messages.ERROR,
                )

    def has_probe_upstream_permission(self, request):
        # Probing makes an outbound call with the tenant's decrypted credentials: not part of "change".
        return request.user.has_perm(PROBE_UPSTREAM_PERMISSION)

    def has_delete_permission(self, request, obj=None):
        # Rows stay for the audit trail; suspend instead.
        return False


# --------------------------------------------------------------------- API keys
class ApiKeyIssueForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=list(SCOPES.items()), widget=forms.CheckboxSelectMultiple, initial=list(SCOPES)
    )
    environment = forms.CharField(
        required=False,
        max_length=32,
        initial=PRODUCTION,
        help_text="The environment whose flags the key reads (fixed at issue): production or one of the tenant's.",
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "environment", "name", "scopes", "expires_at"]

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns; its stub says it may be None
        clean_tenant_environment(self)
        return cleaned


class ApiKeyChangeList(ChangeList):
    """The key list, showing a use the service API recorded in Redis before it reaches the database."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = apikeys_with_last_use(self.result_list)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditHistoryMixin, GuardedModelAdmin):
    # Compact columns: at 1366 px beside the filter sidebar, eight full-width dates pushed "Last used" off screen.
    list_display = ["prefix", "name", "tenant_environment", "scope_labels", "state", "created", "last_used"]
    list_filter = ["tenant", "environment", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["tenant"]
    search_fields = ["prefix", "name", "tenant__slug"]
    actions = ["revoke"]

    def get_changelist(self, request, **kwargs):
        return ApiKeyChangeList

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        return None if obj is None else apikeys_with_last_use([obj])[0]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyIssueForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["tenant", "environment", "name", "scopes", "expires_at"]
        return [
            "tenant",
            "environment",
            "name",
            "prefix",
            "scope_labels",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    @admin.display(description="tenant", ordering="tenant__slug")
    def tenant_environment(self, obj):
        # One column for both: at 1366 px another column would push "Last used" off screen.
        if obj.environment == PRODUCTION:
            return str(obj.tenant)
        return format_html('{} <span class="quiet">· {}</span>', obj.tenant, obj.environment)

    @admin.display(description="scopes")
    def scope_labels(self, obj):
        return (
            format_html_join(
                mark_safe("<br>"),
                '<span class="scope" title="{}">{}</span>',
                ((f"{s}: {SCOPES.get(s, 'unknown scope')}", SCOPE_LABELS.get(s, s)) for s in obj.scopes),
            )
            or "none"
        )

    @admin.display(description="state", ordering="revoked_at")
    def state(self, obj):
        if obj.revoked_at:
            return format_html("revoked {}", admin_time(obj.revoked_at))
        if obj.expires_at and obj.expires_at <= timezone.now():
            return format_html("expired {}", admin_time(obj.expires_at))
        if obj.expires_at:
            return format_html("active, expires {}", admin_time(obj.expires_at))
        return "active"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return admin_time(obj.created_at)

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, obj):
        return admin_time(obj.last_used_at) if obj.last_used_at else "never"

    def save_model(self, request, obj, form, change):
        if change:
            return
        created, secret = apikey_issue(
            tenant=form.cleaned_data["tenant"],
            environment=form.cleaned_data["environment"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"],
            actor=request.user,
            ip=client_ip(request),
        )
        adopt_created(obj, created)
        # Shown once by response_add; never stored anywhere but in this response.
        request._issued_api_key_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_issued_api_key_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/tenants/apikey/issued.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "api_key": obj,
                "secret": secret,
                "title": "API key issued",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            apikey_revoke(api_key=api_key, actor=request.user, ip=client_ip(request))
        self.message_user(request, "Revoked; the keys are refused from the next request.")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(UsageDaily)
class UsageDailyAdmin(ExportActionsMixin, GuardedModelAdmin):
    list_display = ["day", "tenant", "metric", "count"]
    list_filter = ["metric", "tenant"]
    date_hierarchy = "day"
    export = Export(
        stem="usage",
        columns=(("day", "day"), ("tenant", "tenant__slug"), ("metric", "metric"), ("count", "count")),
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# ------------------------------------------------------------------------- auth
# Django's own user and group admins, on the project's guarded base (bad selections are a message).
class UserAdmin(GuardedModelAdmin, auth_admin.UserAdmin):
    pass


class GroupAdmin(GuardedModelAdmin, auth_admin.GroupAdmin):
    pass


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, GroupAdmin)
