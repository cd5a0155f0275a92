"""Django admin for flag definitions and segments, and the evaluate tool; every write goes through a service.

The forms parse rows and typed values and show every problem at once, each on its field: the
services (`flag_definition_errors`, `segment_definition_errors`) say what is valid.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_GET

from agentapi_admin.admin_base import GuardedModelAdmin, adopt_created
from agentapi_admin.client_address import client_ip
from tenants import flagrules
from tenants.admin_approvals import ApprovalRedirectMixin, approval_requested
from tenants.admin_environments import clean_tenant_environment
from tenants.admin_flagviews import FlagViewsMixin
from tenants.admin_history import AuditHistoryMixin
from tenants.exceptions import ApprovalRequired, TenantsError
from tenants.flag_forms import (
    Column,
    EvaluateForm,
    RowsField,
    add_service_errors,
    bounded_json,
    typed_text,
    typed_value,
)
from tenants.flagreport import environment_keys
from tenants.models import PRODUCTION, Flag, Segment, Tenant
from tenants.selectors import flags_evaluate_explained
from tenants.services.flags import (
    flag_create,
    flag_definition_errors,
    flag_update,
    segment_create,
    segment_definition_errors,
    segment_delete,
    segment_update,
    segment_users,
)

KIND_CHOICES = [(kind, Flag.Kind(kind).label) for kind in flagrules.KINDS]
SERVE_CHOICES = (("on", "on"), ("off", "off"), ("variant", "variant…"), ("value", "value…"))
VALUE_HELP = {
    "boolean": "Boolean flags have no value: “On by default” decides.",
    "string": "Served when the flag is on and no variant or rule value applies. Text as typed.",
    "number": "Served when the flag is on and no variant or rule value applies, e.g. 30 or 0.25.",
    "json": "Served when the flag is on and no variant or rule value applies: a JSON document.",
}
NEW_VALUE_HELP = (
    "String, number and JSON flags: the value served when on and no variant or rule value applies "
    "(string: text as typed; number: 30; JSON: a document). Boolean flags: leave empty."
)


def _segment_choices() -> list[tuple[str, str]]:
    return [("", "everyone"), *((key, key) for key in Segment.objects.values_list("key", flat=True))]


class FlagForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=KIND_CHOICES,
        initial="boolean",
        required=False,  # empty: boolean, as before flags had kinds
        help_text="Fixed once the flag exists: clients parse its values by kind.",
    )
    default_value = forms.CharField(
        required=False,
        strip=False,
        label="Default value",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60, "spellcheck": "false"}),
        help_text=NEW_VALUE_HELP,
    )
    variants = RowsField(
        [
            Column("key", "Key", size=16),
            Column("value", "Value", size=30),
            Column("weight", "Weight %", kind="number", size=5),
        ],
        total="weight",
        help_text="Named values (typed flags). Weights are whole percentages adding up to 100 (a split of "
        "subjects) or all 0 (no split: rules and overrides pick a variant).",
    )
    schema = forms.CharField(
        required=False,
        label="JSON Schema",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "spellcheck": "false"}),
        help_text="JSON flags: every value (default, variants, rules, overrides) must match it. Empty: none.",
    )
    rules = RowsField(
        [
            Column("segment", "Audience", kind="select"),
            Column("percent", "Percent", kind="number", size=5),
            Column("bucket_by", "Bucket by", kind="select", choices=(("subject", "subject"), ("tenant", "tenant"))),
            Column("serve", "Serve", kind="select", choices=SERVE_CHOICES),
            Column("serve_arg", "Variant key or value", size=24),
        ],
        label="Rules",
        help_text="In order: the first rule whose audience matches and whose percentage admits the subject "
        "decides. Below tenant overrides and owner toggles, above plan defaults. Percent empty: 100.",
    )

    class Meta:
        model = Flag
        fields = ["key", "description", "default", "requires_approval", "tenant_editable", "risky", "archived"]
        labels = {"default": "On by default"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        flag = self.instance if self.instance.pk else None
        if "rules" in self.fields:
            columns = self.fields["rules"].widget.columns
            columns[0] = Column("segment", "Audience", kind="select", choices=tuple(_segment_choices()))
        if flag is None:
            return
        kind = flag.kind
        self.initial.update(
            {
                "kind": flag.kind,
                "default_value": typed_text(kind, flag.default_value),
                "schema": json.dumps(flag.schema, indent=2) if flag.schema else "",
                "variants": [
                    {"key": v["key"], "value": typed_text(kind, v["value"]), "weight": str(v.get("weight", 0))}
                    for v in flag.variants
                ],
                "rules": [self._rule_row(kind, rule) for rule in flag.rules],
            }
        )
        if "default_value" in self.fields:
            self.fields["default_value"].help_text = VALUE_HELP[kind]
            if kind in ("string", "number"):
                self.fields["default_value"].widget = forms.TextInput(attrs={"size": 40})
        if kind != "json":
            self.fields.pop("schema", None)
        if kind == "boolean":
            self.fields.pop("default_value", None)
            self.fields.pop("variants", None)

    @staticmethod
    def _rule_row(kind: str, rule: dict) -> dict:
        serve = rule.get("serve") or {}
        mode, arg = ("on", "") if serve.get("enabled", True) else ("off", "")
        if "variant" in serve:
            mode, arg = "variant", serve["variant"]
        elif "value" in serve:
            mode, arg = "value", typed_text(kind, serve["value"])
        return {
            "segment": rule.get("segment") or "",
            "percent": str(rule.get("percent", 100)),
            "bucket_by": rule.get("bucket_by", "subject"),
            "serve": mode,
            "serve_arg": arg,
        }

    @property
    def kind_value(self) -> str:
        if self.instance.pk:
            return self.instance.kind
        return self.cleaned_data.get("kind") or "boolean"

    # -- parsing: every row's problems at once, each naming its row -----------------------------
    def _parse_default_value(self, kind: str):
        text = self.cleaned_data.get("default_value", "")
        if kind == "boolean":
            if text.strip():
                self.add_error("default_value", "A boolean flag has no default value: tick “On by default” instead.")
            return None
        if kind != "string" and not text.strip():
            return None
        try:
            return typed_value(kind, text if kind == "string" else text.strip())
        except ValidationError as exc:
            self.add_error("default_value", exc.messages[0])
            return None

    def _parse_variants(self, kind: str) -> list | None:
        rows, problems, variants = self.cleaned_data.get("variants") or [], [], []
        for index, row in enumerate(rows, start=1):
            variant = {"key": row["key"], "weight": 0}
            try:
                variant["value"] = typed_value(kind, row["value"]) if kind != "boolean" else row["value"]
            except ValidationError as exc:
                problems.append(f"Row {index}, value: {exc.messages[0]}")
            if row["weight"]:
                try:
                    variant["weight"] = int(row["weight"])
                except ValueError:
                    problems.append(f"Row {index}, weight: {row['weight']!r} is not a whole number.")
            variants.append(variant)
        if problems:
            self.add_error("variants", problems)
            return None
        return variants

    def _parse_rules(self, kind: str) -> list | None:
        rows, problems, rules = self.cleaned_data.get("rules") or [], [], []
        for index, row in enumerate(rows, start=1):
            rule = {"segment": row["segment"] or None, "percent": 100, "bucket_by": row["bucket_by"]}
            if row["percent"]:
                try:
                    rule["percent"] = int(row["percent"])
                except ValueError:
                    problems.append(f"Row {index}, percent: {row['percent']!r} is not a whole number.")
            serve, arg = row["serve"], row["serve_arg"]
            if serve == "off":
                rule["serve"] = {"enabled": False}
            elif serve == "variant":
                rule["serve"] = {"enabled": True, "variant": arg}
            elif serve == "value":
                try:
                    rule["serve"] = {"enabled": True, "value": typed_value(kind, arg)}
                except ValidationError as exc:
                    problems.append(f"Row {index}, value: {exc.messages[0]}")
            else:
                rule["serve"] = {"enabled": True}
            if serve in ("on", "off") and arg:
                problems.append(f"Row {index}: “{serve}” serves no variant or value; empty the last box.")
            rules.append(rule)
        if problems:
            self.add_error("rules", problems)
            return None
        return rules

    def _parse_schema(self):
        text = self.cleaned_data.get("schema", "").strip()
        if not text:
            return None
        try:
            return bounded_json(text)
        except ValidationError as exc:
            self.add_error("schema", exc.messages[0])
            return None

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns; its stub says it may be None
        if self.errors.get("kind"):
            return cleaned
        kind = self.kind_value
        parsed = {}
        if "default_value" in self.fields:
            parsed["default_value"] = self._parse_default_value(kind)
        if "variants" in self.fields:
            parsed["variants"] = self._parse_variants(kind)
        if "schema" in self.fields:
            parsed["schema"] = self._parse_schema()
        if "rules" in self.fields:
            parsed["rules"] = self._parse_rules(kind)
        if "rules" not in self.fields:
            return cleaned  # a view-only form: nothing is saved
        # A section that did not parse is checked as it is stored; its own errors are already shown.
        unparsed = {name for name in parsed if name in self.errors}
        definition = {name: value for name, value in parsed.items() if name not in unparsed}
        if not self.instance.pk:
            definition["kind"] = kind
            definition = {"variants": [], "rules": [], "schema": None, **definition}
        errors = flag_definition_errors(flag=self.instance if self.instance.pk else None, **definition)
        add_service_errors(self, [e for e in errors if (e.field or "").split("[")[0].split(".")[0] not in unparsed])
        cleaned["definition"] = definition
        return cleaned


@admin.register(Flag)
class FlagAdmin(ApprovalRedirectMixin, FlagViewsMixin, AuditHistoryMixin, GuardedModelAdmin):
    form = FlagForm
    list_display = [
        "key",
        "kind",
        "default",
        "variant_keys",
        "rule_count",
        "tenant_editable",
        "risky",
        "requires_approval",
        "archived",
    ]
    list_filter = ["kind", "archived", "tenant_editable", "risky", "default", "requires_approval"]
    search_fields = ["key", "description"]

    class Media:
        js = ["tenants/flags.js"]

    def get_fieldsets(self, request, obj=None):
        values = ["default", "default_value", "variants"]
        if obj is None or obj.kind == Flag.Kind.JSON:
            values.append("schema")
        if obj is not None and obj.kind == Flag.Kind.BOOLEAN:
            values = ["default"]
        return [
            (None, {"fields": ["key", "description", "kind"]}),
            ("Values", {"fields": values}),
            ("Rules", {"fields": ["rules"], "description": self._segments_link()}),
            ("Controls", {"fields": ["requires_approval", "tenant_editable", "risky", "archived"]}),
        ]

    @staticmethod
    def _segments_link():
        return format_html(
            'Audiences are <a href="{}">segments</a>. Try the result with the <a href="{}">evaluate tool</a>.',
            reverse("admin:tenants_segment_changelist"),
            reverse("admin:tenants_flag_evaluate"),
        )

    def get_readonly_fields(self, request, obj=None):
        return ["key", "kind"] if obj else ["archived"]

    @admin.display(description="variants")
    def variant_keys(self, obj):
        return ", ".join(v["key"] for v in obj.variants) or "—"

    @admin.display(description="rules")
    def rule_count(self, obj):
        return len(obj.rules) or "—"

    def save_model(self, request, obj, form, change):
        ip = client_ip(request)
        definition = form.cleaned_data.get("definition", {})
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data if name in FlagForm.Meta.fields[1:]}
            data.update({name: value for name, value in definition.items() if getattr(obj, name) != value})
            if data:
                try:
                    flag_update(flag=obj, actor=request.user, ip=ip, **data)
                except ApprovalRequired as refusal:
                    # Nothing changes: the save becomes a change request, and the page redirects to it.
                    approval_requested(self, request, refusal, ip)
        else:
            created = flag_create(
                key=form.cleaned_data["key"],
                description=form.cleaned_data["description"],
                default=form.cleaned_data["default"],
                tenant_editable=form.cleaned_data["tenant_editable"],
                risky=form.cleaned_data["risky"],
                requires_approval=form.cleaned_data["requires_approval"],
                actor=request.user,
                ip=ip,
                **definition,
            )
            adopt_created(obj, created)

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead: clients see reason "archived"

    # -- the evaluate tool -----------------------------------------------------------------------
    def get_urls(self):
        evaluate = self.admin_site.admin_view(require_GET(self.evaluate_view))
        return [path("evaluate/", evaluate, name="tenants_flag_evaluate"), *super().get_urls()]

    def evaluate_view(self, request):
        """Evaluate every flag for a tenant, subject and context (read-only; staff who may view flags)."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = AdminEvaluateForm(request.GET if "tenant" in request.GET else None)
        rows, tenant, subject, context, environment = None, None, None, dict[str, object](), PRODUCTION
        if form.is_valid():
            tenant = form.cleaned_data["tenant"]
            subject, context = form.evaluation_input()
            environment = form.cleaned_data["environment"]
            rows = flags_evaluate_explained(tenant, subject, context, environment=environment)
        return TemplateResponse(
            request,
            "admin/tenants/flag/evaluate.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Evaluate flags",
                "form": form,
                "rows": rows,
                "tenant": tenant,
                "environment": environment,
                "subject": subject or (str(tenant.pk) if tenant else ""),
                "context_json": json.dumps(context, sort_keys=True),
                "media": self.media + form.media,
            },
        )


class AdminEvaluateForm(EvaluateForm):
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.order_by("slug"),
        to_field_name="slug",
        error_messages={"invalid_choice": "No such tenant.", "required": "Choose a tenant."},
    )
    environment = forms.ChoiceField(
        required=False,
        initial=PRODUCTION,
        help_text="Whose overrides and owner toggles apply; one of the tenant's environments.",
    )
    field_order = ["tenant", "environment", "subject", "context", "context_json"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["environment"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(key, key) for key in environment_keys()]
        if self.is_bound and self.data.get("environment") not in (None, "", *dict(field.choices)):
            # Not a key any tenant has: say whose environments there are rather than "not one of the choices".
            field.choices = [*field.choices, (self.data["environment"][:32], self.data["environment"][:32])]

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data  # what Form.clean() returns; its stub says it may be None
        clean_tenant_environment(self)
        return cleaned


# ------------------------------------------------------------------------------------- segments
class SegmentForm(forms.ModelForm):
    conditions = RowsField(
        [
            Column(
                "attribute",
                "Attribute",
                size=26,
                suggestions=(
                    "subject",
                    *flagrules.TENANT_ATTRIBUTES,
                    flagrules.TENANT_SETTINGS_PREFIX,
                    flagrules.CONTEXT_PREFIX,
                ),
            ),
            Column("op", "Operator", kind="select", choices=tuple((op, op) for op in flagrules.OPS)),
            Column("values", "Values (one per line)", kind="lines", size=30),
        ],
        help_text="All must hold. Attributes: subject, context.<name> (sent by the caller), "
        + ", ".join(flagrules.TENANT_ATTRIBUTES)
        + ", tenant.settings.<name>. lt/gt, semver_* and before/after compare with one value.",
    )

    class Meta:
        model = Segment
        fields = ["key", "name", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["conditions"] = [
                {"attribute": c["attribute"], "op": c["op"], "values": "\n".join(str(v) for v in c["values"])}
                for c in self.instance.conditions
            ]

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns; its stub says it may be None
        if "conditions" not in self.fields:
            return cleaned
        conditions = [
            {
                "attribute": row["attribute"],
                "op": row["op"],
                "values": [line.strip() for line in row["values"].splitlines() if line.strip()],
            }
            for row in cleaned.get("conditions") or []
        ]
        key = None if self.instance.pk else cleaned.get("key")
        if key is None and not self.instance.pk:
            return cleaned  # the key field has its own error
        add_service_errors(self, segment_definition_errors(conditions=conditions, key=key), fallback="conditions")
        cleaned["conditions"] = conditions
        return cleaned


@admin.register(Segment)
class SegmentAdmin(AuditHistoryMixin, GuardedModelAdmin):
    form = SegmentForm
    list_display = ["key", "name", "condition_summary", "used_by_list"]
    search_fields = ["key", "name", "description"]
    # Deleting goes through segment_delete one at a time, refused while a flag uses the segment.
    actions = None

    class Media:
        js = ["tenants/flags.js"]

    def get_fields(self, request, obj=None):
        return ["key", "name", "description", "conditions", *(["used_by"] if obj else [])]

    def get_readonly_fields(self, request, obj=None):
        return ["key", "used_by"] if obj else []

    @admin.display(description="conditions")
    def condition_summary(self, obj):
        return (
            "; ".join(f"{c['attribute']} {c['op']} {', '.join(map(str, c['values']))}" for c in obj.conditions)
            or "always (no conditions)"
        )

    @admin.display(description="used by")
    def used_by_list(self, obj):
        return ", ".join(segment_users(obj)) or "—"

    @admin.display(description="used by the rules of")
    def used_by(self, obj):
        users = segment_users(obj)
        if not users:
            return "no flag: it can be deleted"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:tenants_flag_change", args=[pk]), key) for pk, key in _flags_by_key(users)),
        )

    def save_model(self, request, obj, form, change):
        ip, data = client_ip(request), form.cleaned_data
        if change:
            fields = {name: data[name] for name in ("name", "description") if name in form.changed_data}
            if data["conditions"] != obj.conditions:
                fields["conditions"] = data["conditions"]
            if fields:
                segment_update(segment=obj, actor=request.user, ip=ip, **fields)
        else:
            created = segment_create(
                key=data["key"],
                name=data["name"],
                description=data["description"],
                conditions=data["conditions"],
                actor=request.user,
                ip=ip,
            )
            adopt_created(obj, created)

    def delete_model(self, request, obj):
        segment_delete(segment=obj, actor=request.user, ip=client_ip(request))

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except TenantsError as exc:  # in use: the service names the flags
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:tenants_segment_change", args=[object_id]))


def _flags_by_key(keys: list[str]) -> list[tuple[int, str]]:
    return list(Flag.objects.filter(key__in=keys).order_by("key").values_list("pk", "key"))
