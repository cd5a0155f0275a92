"""Django admin for change requests: list and read them, schedule one, approve, reject or cancel through services.

Requests are never edited in place: the object page is read-only and every step is an
action whose permission the service checks again (approval also refuses the author).
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from agentapi_admin.admin_base import BoundedJSONField, GuardedModelAdmin, admin_time
from agentapi_admin.client_address import client_ip
from audit.models import AuditAction
from changes.exceptions import ChangesError
from changes.models import APPROVE_PERMISSION, ChangeRequest
from changes.operations import OPERATIONS
from changes.selectors import ABSENT, change_diff
from changes.services import (
    CANCEL_PERMISSION,
    change_approve,
    change_cancel,
    change_reject,
    change_request_check,
    change_request_create,
)
from tenants.models import PRODUCTION, Flag, Tenant

# Staff schedule platform changes; an owner's own toggle is scheduled from the portal, as the owner.
STAFF_OPERATIONS = [name for name in OPERATIONS if name != AuditAction.FLAG_OWNER_TOGGLE]
# Where each error of the service belongs on the form.
FORM_FIELD = {
    "flag": "flag",
    "tenant": "tenant",
    "enabled": "enabled",
    "rollout_percent": "rollout_percent",
    "variant": "override_values",
    "value": "override_values",
    "owner_variants": "override_values",
    "environment": "environment",
    "source": "source",
    "target": "environment",
}


class ScheduleForm(forms.ModelForm):
    """Describe one change and when it applies (and reverts); checked by applying it in a rolled-back savepoint."""

    operation = forms.ChoiceField(choices=[(name, OPERATIONS[name].label) for name in STAFF_OPERATIONS])
    flag = forms.ModelChoiceField(
        Flag.objects.all(), to_field_name="key", required=False, help_text="Every change but a promotion names one."
    )
    tenant = forms.ModelChoiceField(
        Tenant.objects.all(),
        to_field_name="slug",
        required=False,
        help_text="For overrides, owner toggles and promotions.",
    )
    environment = forms.CharField(
        max_length=32,
        required=False,
        help_text="The tenant's environment an override or owner toggle is in, or a promotion's target; "
        "empty: production.",
    )
    source = forms.CharField(max_length=32, required=False, help_text="For a promotion: the environment copied from.")
    enabled = forms.TypedChoiceField(
        choices=[("", "—"), ("true", "On"), ("false", "Off")],
        coerce=lambda value: value == "true",
        empty_value=None,
        required=False,
        help_text="For an override.",
    )
    rollout_percent = forms.IntegerField(min_value=0, max_value=100, required=False, initial=100)
    override_values = BoundedJSONField(
        required=False,
        label="Override values",
        help_text='For an override of a typed flag: {"variant": "b"}, {"value": …} or {"owner_variants": ["a", "b"]}.',
    )
    flag_fields = BoundedJSONField(
        required=False,
        label="Flag fields",
        help_text='For "Change a flag": the fields and their new values, e.g. {"default": true}.',
    )

    class Meta:
        model = ChangeRequest
        fields = ["apply_at", "revert_at", "reason"]
        help_texts = {
            "apply_at": "Empty: applies now (or once approved, for a flag that requires approval).",
            "revert_at": "Optional: put back what the change found just before it applied.",
        }

    user = None  # set by ChangeRequestAdmin.get_form

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        operation = cleaned["operation"]
        params: dict = {}
        if OPERATIONS[operation].flag_scoped:
            if cleaned.get("flag") is None:
                self.add_error("flag", "Choose the flag this change is for.")
                return cleaned
            params["flag"] = cleaned["flag"].key
        if OPERATIONS[operation].tenant_scoped:
            if cleaned.get("tenant") is None:
                self.add_error("tenant", "Choose the tenant this change is for.")
                return cleaned
            params["tenant"] = cleaned["tenant"].slug
        environment = cleaned.get("environment") or ""
        if operation == AuditAction.ENVIRONMENT_PROMOTE:
            if not cleaned.get("source"):
                self.add_error("source", "Choose the environment to promote from.")
                return cleaned
            params.update({"source": cleaned["source"], "target": environment or PRODUCTION})
        elif environment and environment != PRODUCTION and OPERATIONS[operation].tenant_scoped:
            params["environment"] = environment
        if operation == AuditAction.FLAG_UPDATE:
            wanted = cleaned.get("flag_fields") or {}
            if not isinstance(wanted, dict):
                self.add_error("flag_fields", 'Give an object of fields and values, e.g. {"default": true}.')
                return cleaned
            current = {name: getattr(cleaned["flag"], name, None) for name in wanted}
            params["fields"] = {name: value for name, value in wanted.items() if current[name] != value}
            if not params["fields"]:
                self.add_error("flag_fields", "Change at least one value: these are the flag's values already.")
                return cleaned
        elif operation == AuditAction.FLAG_SET_OVERRIDE:
            if cleaned.get("enabled") is None:
                self.add_error("enabled", "Choose on or off.")
                return cleaned
            params["enabled"] = cleaned["enabled"]
            params["rollout_percent"] = 100 if cleaned.get("rollout_percent") is None else cleaned["rollout_percent"]
            extra = cleaned.get("override_values") or {}
            if not isinstance(extra, dict):
                self.add_error("override_values", 'Give an object, e.g. {"variant": "b"}.')
                return cleaned
            params.update(extra)
        try:
            self.change = {
                "operation": operation,
                "params": change_request_check(
                    operation=operation,
                    params=params,
                    author=self.user,
                    apply_at=cleaned.get("apply_at"),
                    revert_at=cleaned.get("revert_at"),
                ),
                "apply_at": cleaned.get("apply_at"),
                "revert_at": cleaned.get("revert_at"),
                "reason": cleaned.get("reason", ""),
            }
        except ChangesError as exc:
            name = exc.field or ""
            target = "flag_fields" if name.startswith("fields") else FORM_FIELD.get(name, name)
            self.add_error(target if target in self.fields else None, exc.message)
        except PermissionDenied as exc:
            self.add_error(None, str(exc))
        return cleaned


class ChangeRequestAdmin(GuardedModelAdmin):
    list_display = ["id", "summary", "state", "operation", "flag_key", "tenant", "author", "when", "created"]
    list_filter = ["state", "operation", "requires_approval", "flag_key", "tenant"]
    search_fields = ["summary", "flag_key", "tenant__slug", "author__username"]
    list_select_related = ["tenant", "author"]
    actions = ["approve", "reject", "cancel"]
    detail_fields = [
        "summary",
        "state",
        "operation",
        "author",
        "reason",
        "diff",
        "schedule",
        "approval",
        "outcome",
        "last_error",
        "params_json",
        "inverse_json",
        "created_at",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return [
                "operation",
                "flag",
                "tenant",
                "environment",
                "source",
                "enabled",
                "rollout_percent",
                "override_values",
                "flag_fields",
                "apply_at",
                "revert_at",
                "reason",
            ]
        return self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        return self.detail_fields if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = type("BoundScheduleForm", (ScheduleForm,), {"user": request.user})
            kwargs["fields"] = ScheduleForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = {}
        for name in ("operation", "flag", "tenant", "environment", "source"):
            if request.GET.get(name):
                initial[name] = request.GET[name][:64]
        flag = Flag.objects.filter(key=initial.get("flag", "")).first()
        if flag is not None:
            # The definition as it is: edit the values to change, leave the rest.
            initial["flag_fields"] = {"default": flag.default, "tenant_editable": flag.tenant_editable}
        return initial

    def save_model(self, request, obj, form, change):
        created = change_request_create(**form.change, author=request.user, ip=client_ip(request))
        for field in ChangeRequest._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        obj._state.db = created._state.db

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"Change request #{obj.pk}: {obj.get_state_display().lower()}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:changes_changerequest_change", args=[obj.pk]))

    def save_related(self, request, form, formsets, change):
        pass  # nothing relates to a request but what the service wrote

    def change_view(self, request, object_id, form_url="", extra_context=None):
        change = self.get_object(request, object_id)
        steps = []
        if change is not None:
            offered = self.get_actions(request)
            pending = change.state == ChangeRequest.State.PENDING_APPROVAL
            revert_pending = change.state == ChangeRequest.State.APPLIED and change.revert_at and not change.reverted_at
            wanted = [
                ("approve", "Approve", pending and change.author_id != request.user.pk),
                ("reject", "Reject", pending),
                (
                    "cancel",
                    "Cancel the revert" if revert_pending else "Cancel",
                    change.state in ChangeRequest.OPEN_STATES or revert_pending,
                ),
            ]
            steps = [(name, label) for name, label, shown in wanted if shown and name in offered]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "change_steps": steps})

    # ---------------------------------------------------------------- display
    @admin.display(description="when")
    def when(self, obj):
        parts = []
        if obj.apply_at:
            parts.append(format_html("applies {}", admin_time(obj.apply_at)))
        if obj.revert_at:
            parts.append(format_html("reverts {}", admin_time(obj.revert_at)))
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts)) or "on approval / at once"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return admin_time(obj.created_at)

    @admin.display(description="before / after")
    def diff(self, obj):
        diff = change_diff(obj)
        if not diff.rows:
            return "nothing to compare"
        rows = format_html_join(
            "",
            '<tr class="{}"><th>{}</th><td><code>{}</code></td><td><code>{}</code></td></tr>',
            (("changed" if row.changed else "", row.name, _json(row.before), _json(row.after)) for row in diff.rows),
        )
        return format_html(
            '<table class="change-diff"><thead><tr><th>value</th><th>{}</th><th>after the change</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            diff.before_label,
            rows,
        )

    @admin.display(description="schedule")
    def schedule(self, obj):
        apply = admin_time(obj.apply_at) if obj.apply_at else "on approval, or at once"
        revert = admin_time(obj.revert_at) if obj.revert_at else "never"
        return format_html("applies: {}<br>reverts: {}", apply, revert)

    @admin.display(description="approval")
    def approval(self, obj):
        if not obj.requires_approval:
            return "not required"
        if obj.approved_by_id:
            return format_html("approved by {} at {}", obj.approved_by, admin_time(obj.approved_at))
        if obj.closed_at and obj.state == ChangeRequest.State.REJECTED:
            return format_html(
                "rejected by {} at {}", obj.closed_by or "a user since removed", admin_time(obj.closed_at)
            )
        return "waiting for another staff user"

    @admin.display(description="outcome")
    def outcome(self, obj):
        parts = []
        if obj.applied_at:
            parts.append(format_html("applied {}", admin_time(obj.applied_at)))
        if obj.reverted_at:
            parts.append(format_html("reverted {}", admin_time(obj.reverted_at)))
        if obj.closed_at and obj.state == ChangeRequest.State.CANCELLED:
            parts.append(format_html("cancelled by {} {}", obj.closed_by, admin_time(obj.closed_at)))
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts)) or "not yet"

    @admin.display(description="params")
    def params_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.params, indent=2, sort_keys=True, ensure_ascii=False))

    @admin.display(description="revert with")
    def inverse_json(self, obj):
        if obj.inverse is None:
            return "computed when it applies" if not obj.applied_at else "nothing to restore"
        return format_html("<pre>{}</pre>", json.dumps(obj.inverse, indent=2, sort_keys=True, ensure_ascii=False))

    # ---------------------------------------------------------------- actions
    def _each(self, request, queryset, verb: str, step) -> None:
        done = 0
        for change in queryset.order_by("id"):
            try:
                result = step(change)
            except (ChangesError, PermissionDenied) as exc:
                self.message_user(request, f"#{change.pk}: {getattr(exc, 'message', exc)}", messages.ERROR)
                continue
            done += 1
            if result.state == ChangeRequest.State.FAILED:
                self.message_user(request, f"#{change.pk} failed to apply: {result.last_error}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} change request(s).", messages.SUCCESS)

    @admin.action(description="Approve selected change requests (not your own)", permissions=["approve_changerequest"])
    def approve(self, request, queryset):
        ip = client_ip(request)
        self._each(request, queryset, "Approved", lambda c: change_approve(change=c, actor=request.user, ip=ip))

    @admin.action(description="Reject selected change requests", permissions=["approve_changerequest"])
    def reject(self, request, queryset):
        ip = client_ip(request)
        self._each(request, queryset, "Rejected", lambda c: change_reject(change=c, actor=request.user, ip=ip))

    @admin.action(
        description="Cancel selected change requests (or their pending revert)", permissions=["change_changerequest"]
    )
    def cancel(self, request, queryset):
        ip = client_ip(request)
        self._each(request, queryset, "Cancelled", lambda c: change_cancel(change=c, actor=request.user, ip=ip))

    def has_approve_changerequest_permission(self, request):
        return request.user.has_perm(APPROVE_PERMISSION)

    def has_change_changerequest_permission(self, request):
        # Cancelling is the one change a request allows (the service also lets an author cancel their own).
        return request.user.has_perm(CANCEL_PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False  # a request moves only through its actions, never by editing its fields

    def has_delete_permission(self, request, obj=None):
        return False  # kept for the record


def _json(value) -> str:
    return "(none)" if value is ABSENT else json.dumps(value, ensure_ascii=False)


admin.site.register(ChangeRequest, ChangeRequestAdmin)
